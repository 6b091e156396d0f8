"""Life histories of simulated residents, written as the four departments' events (CONTRACT §2 and §4).

The simulation follows households of the seed cities through a window of ``years`` years ending on ``end``:
native families (with births, schooling, careers, retirement and deaths), young natives who marry and found a
household, elderly couples, migrant workers (residence registration, permits, settlement or departure, insurance
transfers), migrant families with children at school, and students who come for university.

How the window is handled: what was true on its first day (a hukou, a job, a school place, a scheme, a permit)
is loaded into the backbone as events of that day, written in its first hours before anything else happens,
with the real dates (``started_on``, ``enrolled_on``, ``since``) in the payload — the way a department's
existing register is migrated into a new system. Older people's earlier lives are summarised that way (a
``hukou.registered`` with ``legacy_nature``). Everything else is an event on the day it happens; only public
security's deregistration of the dead is recorded weeks after the death it dates.

The code is split by department: ``core`` (people, homes, ``emit``), ``public_security``, ``education``,
``social_security``, ``health``, and ``households`` which tells the life stories; ``cities`` holds the data.

Invariants the tests check, and why the code is shaped the way it is:

* every event passes ``events.parse_event`` (the generator itself never validates: that would cost more than
  generating);
* no event about a person after their death, except the health department's death certificate and public
  security's later cancellation of the hukou — every emission goes through ``Core.emit``, which enforces a
  person's presence interval (and absences such as study elsewhere or military service);
* determinism: all randomness comes from two ``random.Random`` instances seeded from ``seed`` (string seeds are
  hashed with SHA-512 by ``random``, so ``PYTHONHASHSEED`` plays no part), no set is ever iterated, and no clock
  is read (citizen IDs are checked against the window's end, not against today);
* output order: the events of one household are sorted by ``occurred_at`` (all timestamps share the +08:00
  offset, so the text sorts chronologically), which keeps each citizen's events of each department in order.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from json import encoder as _json_encoder
from typing import Any, Final

from services.simulator.cities import CITIES, City
from services.simulator.core import EVENT_TYPES, Event
from services.simulator.households import Simulation

__all__ = ["DEFAULT_END", "EVENT_TYPES", "simulate", "simulate_bytes", "summary"]

DEFAULT_END: Final = date(2026, 6, 30)
"""The default last day of the simulated window."""

_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _no_default(value: object) -> object:
    raise TypeError(f"a value of type {type(value).__name__} has no JSON form")


def _compact_json() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``, about four times faster.

    ``JSONEncoder.encode`` builds a new C encoder on every call, which costs more than encoding a small payload;
    without circular-reference checks one C encoder can be kept and reused. Falls back to the public API where
    the C accelerator is missing.
    """
    make = getattr(_json_encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    iterencode = make(None, _no_default, _json_encoder.encode_basestring, None, ":", ",", False, False, False)
    join = "".join
    return lambda value: join(iterencode(value, 0))


def simulate(
    residents: int,
    years: int = 20,
    seed: int = 0,
    *,
    end: date = DEFAULT_END,
    cities: Sequence[City] = CITIES,
) -> Iterator[Event]:
    """Yield the events of ``residents`` simulated people over ``years`` years ending on ``end``.

    Each event is an envelope dict exactly as CONTRACT §2 describes it (``event_id`` a UUID from the seeded
    generator, timestamps RFC 3339 with ``+08:00``, payload as CONTRACT §4), accepted by ``events.parse_event``
    on any day (validation reads no clock; nothing is recorded after ``end``, nobody is born after it). Events
    come household by household; within a household in ``occurred_at`` order, so each citizen's events of each
    department are chronological. On average a resident yields roughly fifty events over twenty years.

    ``residents`` counts everyone simulated, children born in the window included. Deterministic: the same
    arguments give the same events, whatever the machine, ``PYTHONHASHSEED`` or date. The yielded dicts are
    fresh and may be modified by the caller. Raises ``ValueError`` at once for arguments out of range.
    """
    if residents < 0:
        raise ValueError(f"residents must be ≥ 0, got {residents}")
    if years < 1:
        raise ValueError(f"years must be ≥ 1, got {years}")
    if end.year - years < 1900:
        raise ValueError(f"the window must start after 1900, got {years} years before {end.isoformat()}")
    return _events(Simulation(seed, years, end, cities), residents)


def _events(simulation: Simulation, residents: int) -> Iterator[Event]:
    for household in simulation.households(residents):
        yield from household


def simulate_bytes(
    residents: int,
    years: int = 20,
    seed: int = 0,
    *,
    end: date = DEFAULT_END,
    cities: Sequence[City] = CITIES,
) -> Iterator[tuple[str, bytes, bytes]]:
    """The events of ``simulate`` ready for Kafka: ``(department, key, value)``.

    ``key`` is the citizen ID, ``value`` the event as compact UTF-8 JSON, byte for byte
    ``json.dumps(event, ensure_ascii=False, separators=(",", ":"))``. The order is that of ``simulate``, so
    publishing in this order keeps every citizen's per-department events in order within their partition.
    ``department`` names the topic (``events.topic_for``). Raises ``ValueError`` like ``simulate``.
    """
    return _records(simulate(residents, years, seed, end=end, cities=cities))


def _records(events: Iterator[Event]) -> Iterator[tuple[str, bytes, bytes]]:
    encode = _compact_json()
    sources: dict[tuple[str, str, str], str] = {}
    for event in events:
        # The envelope's own values are UUIDs, type names, digits and timestamps, which JSON needs no escaping
        # for, in the key order ``Core.emit`` writes them: only the source (cached) and the payload go through
        # the encoder. The unit tests compare the result with ``json.dumps``.
        source = event["source"]
        department = source["department"]
        source_key = (department, source["system"], source["region_code"])
        source_json = sources.get(source_key)
        if source_json is None:
            source_json = sources[source_key] = encode(source)
        tracing = ""
        if "correlation_id" in event:
            tracing = f',"correlation_id":"{event["correlation_id"]}"'
        if "causation_id" in event:
            tracing += f',"causation_id":"{event["causation_id"]}"'
        citizen_id = event["citizen_id"]
        value = (
            f'{{"event_id":"{event["event_id"]}","event_type":"{event["event_type"]}",'
            f'"schema_version":{event["schema_version"]},"citizen_id":"{citizen_id}",'
            f'"occurred_at":"{event["occurred_at"]}","recorded_at":"{event["recorded_at"]}",'
            f'"source":{source_json}{tracing},"payload":{encode(event["payload"])}}}'
        )
        yield department, citizen_id.encode(), value.encode()


def summary(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Count ``events`` (envelope dicts): total, distinct citizens, per department and per event type.

    Returns ``{"events": n, "citizens": m, "by_department": {...}, "by_type": {...}}`` with the mappings sorted
    by name, for progress output and reports.
    """
    by_type: Counter[str] = Counter()
    by_department: Counter[str] = Counter()
    citizens: set[str] = set()
    total = 0
    for event in events:
        total += 1
        by_type[event["event_type"]] += 1
        by_department[event["source"]["department"]] += 1
        citizens.add(event["citizen_id"])
    return {
        "events": total,
        "citizens": len(citizens),
        "by_department": dict(sorted(by_department.items())),
        "by_type": dict(sorted(by_type.items())),
    }

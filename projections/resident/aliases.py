"""One person, several numbers (CONTRACT §12): the alias projection and the rule that combines a person's numbers.

Public security changes a person's citizen ID (``identity.number_changed``: a number issued with a wrong birth
date or twice) and cancels duplicate registrations into the one that survives (``identity.duplicate_merged``).
Each is a *link* from a superseded number to the number it leads to. Every number keeps its own sections, folded
from its own events exactly as before (one source per data item, order inside a partition); a person's view
combines the sections of all their numbers **at read time**:

- ``People`` resolves a number to the person's current number (following links to the end of the chain) and
  lists every number of that person: the current one first, then the others, most recently linked first. Where
  one number was linked twice, the later link (by date, then event ID) wins — in the store as here — so the
  arrival order of the events across partitions cannot change who is whom.
- ``combine_states`` merges one department's states of those numbers, in that order: a field takes the first
  value that is not the field's default (a sub-record is taken whole, never mixed — but for the identity, whose
  fields are separate facts, field by field), and a list is the union of the numbers' lists, the older
  numbers' items first. It reads only the states and the order of the numbers,
  so the combined view is the same whatever order the events arrived in, and a rebuild gives the same.

Everything here is pure: the store reads the links and the sections, this module decides.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any, Final

from events import Event, Payload
from events.public_security import DuplicateMerged, NumberChanged
from projections.resident.state import initial_state, state_to_json_text

__all__ = ["NumberLink", "People", "combine_sections", "combine_states", "number_link", "standing"]


@dataclass(frozen=True, slots=True)
class NumberLink:
    """``old`` is the same person as ``new`` from ``linked_on``; ``old`` is superseded by it."""

    old: str
    new: str
    linked_on: date
    event_id: str
    kind: str  # the event type that made the link
    reason: str | None = None  # a number change's reason

    def rank(self) -> tuple[date, str]:
        """Which of two links of one ``old`` number stands: the later, then the greater event ID."""
        return (self.linked_on, self.event_id)


def standing(known: NumberLink | None, link: NumberLink) -> NumberLink:
    """Of two links of one superseded number, the one that stands: the later, then the greater event ID."""
    return link if known is None or link.rank() > known.rank() else known


def number_link(event: Event[Payload]) -> NumberLink | None:
    """The link ``event`` makes, if it is a number change or a merge."""
    payload = event.payload
    if isinstance(payload, NumberChanged):
        return NumberLink(
            payload.previous_citizen_id,
            event.citizen_id,
            payload.changed_on,
            str(event.event_id),
            event.event_type,
            payload.reason,
        )
    if isinstance(payload, DuplicateMerged):
        return NumberLink(
            payload.duplicate_citizen_id, event.citizen_id, payload.merged_on, str(event.event_id), event.event_type
        )
    return None


class People:
    """The links known, resolved: whose number is which person's."""

    def __init__(self, links: Iterable[NumberLink]) -> None:
        chosen: dict[str, NumberLink] = {}
        for link in links:
            chosen[link.old] = standing(chosen.get(link.old), link)
        self.links = chosen
        self._current: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.links)

    def current(self, number: str) -> str:
        """The person's current number: the end of the chain of links from ``number`` (in a cycle, which only
        contradictory records can make, the greatest number of the cycle)."""
        found = self._current.get(number)
        if found is not None:
            return found
        path = [number]
        at = number
        while at in self.links:
            at = self.links[at].new
            if at in path:
                at = max(path[path.index(at) :])
                break
            path.append(at)
        for step in path:
            self._current[step] = at
        return at

    def numbers(self, number: str) -> tuple[str, ...]:
        """Every number of ``number``'s person: the current one first, then the others, most recently linked first
        (ties by number)."""
        current = self.current(number)
        known = {n for link in self.links.values() for n in (link.old, link.new)} | {number}
        others = [n for n in known if n != current and self.current(n) == current]
        others.sort(key=lambda n: (self._linked_on(n), n), reverse=True)
        return (current, *others)

    def _linked_on(self, number: str) -> date:
        link = self.links.get(number)
        return link.linked_on if link is not None else date.min


def combine_sections(numbers: Sequence[str], states: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """A person's department states (JSON) from ``states`` (number → department → JSON state) of their
    ``numbers`` (current first, as ``People.numbers`` orders them): ``combine_states`` per department."""
    departments = sorted({d for n in numbers for d in states.get(n, {})})
    return {d: combine_states(d, [states[n][d] for n in numbers if d in states.get(n, {})]) for d in departments}


FIELD_BY_FIELD: Final = frozenset({"identity"})
"""Sub-records whose fields are independent facts (a name, a sex, a birth date, an ethnicity), combined field by
field; every other sub-record (a hukou, a registration) is one fact and is taken whole from one number."""


@cache
def _defaults(department: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(state_to_json_text(initial_state(department)))
    return loaded


def combine_states(department: str, states: Sequence[str]) -> str:
    """One department's state of a person from the JSON states of their numbers (current number first)."""
    if len(states) == 1:
        return states[0]
    defaults = _defaults(department)
    combined: dict[str, Any] = json.loads(states[0])
    older = [json.loads(text) for text in states[1:]]
    for name, default in defaults.items():
        values = [combined.get(name, default), *(state.get(name, default) for state in older)]
        if isinstance(default, list):
            union: list[Any] = []
            for value in reversed(values):  # the older numbers' items first
                union += [item for item in value if item not in union]
            combined[name] = union
        elif name in FIELD_BY_FIELD and isinstance(default, dict):
            combined[name] = {
                field: next((v[field] for v in values if v.get(field, fallback) != fallback), fallback)
                for field, fallback in default.items()
            }
        else:
            combined[name] = next((value for value in values if value != default), default)
    return json.dumps(combined, ensure_ascii=False, sort_keys=True)

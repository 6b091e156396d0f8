"""One person, several numbers (CONTRACT §12): number changes and duplicate registrations in the simulated city.

Public security re-issues a number that was issued twice (重号) or wrongly, and the national clean-up campaigns
cancel duplicate registrations of one person (一人多户). Both leave a person's history spread over two numbers,
which is what the backbone must join again. After a household's story is told, ``SeveralNumbers.renumber``
turns a few of its people into such cases, at rates of the order the clean-up campaigns reported (a few per
thousand):

* **a number change**: from a day in the person's history on, their events carry a new number (same division
  and birth date, a new sequence); ``identity.number_changed`` records it that day. Departments other than public
  security keep using the old number for a while (up to ``LAGGING_DAYS``), as real systems do: those events
  still belong to the person.
* **a duplicate registration**: a second number registered for the person (a copy of their registration), under
  which some of their other departments' events are recorded for a while; then ``identity.duplicate_merged``
  (under the surviving number) and the duplicate's cancellation (``hukou.cancelled`` with reason ``duplicate``,
  or the end of its residence registration).

It draws from a random source of its own, so that the life stories (and every other event) stay exactly what
they were without it; its events get event IDs from that source too.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any, Final

from events.citizen_id import birth_date_of, division_of, make_citizen_id, sex_of
from events.registry import REGISTRY
from services.simulator.core import Core, Event

__all__ = ["DUPLICATE_RATE", "LAGGING_DAYS", "RENUMBER_RATE", "SeveralNumbers"]

RENUMBER_RATE: Final = 0.004
"""The share of people whose number changes during the window."""
DUPLICATE_RATE: Final = 0.003
"""The share of people registered twice, the duplicate cancelled during the window."""
LAGGING_DAYS: Final = 90
"""How long after a number change another department may still record events under the old number."""

_UUID_VARIANT: Final = "89ab"


class SeveralNumbers(Core):
    """The post-processing of one household's events that gives a few people a second number."""

    def __init__(self, seed: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(seed, *args, **kwargs)
        self.numbers_rng = random.Random(f"renkou-simulator/numbers/{seed}")

    def renumber(self) -> None:
        """Turn a few people of the current household into number changes or duplicate registrations."""
        rng = self.numbers_rng
        by_citizen: dict[str, list[int]] = {}
        for index, (_, _, event) in enumerate(self.buffer):
            by_citizen.setdefault(event["citizen_id"], []).append(index)
        for citizen, indexes in by_citizen.items():  # first-seen order: deterministic
            draw = rng.random()
            if len(indexes) < 3:
                continue
            indexes.sort(key=lambda i: self.buffer[i][:2])
            registrations = [i for i in indexes if self.buffer[i][2]["source"]["department"] == "public_security"]
            if not registrations:
                continue
            if draw < RENUMBER_RATE:
                self._change_number(citizen, indexes, registrations[0])
            elif draw < RENUMBER_RATE + DUPLICATE_RATE:
                self._register_twice(citizen, indexes, registrations[0])

    def _fresh_number(self, citizen: str) -> str:
        """Another number of the same division, birth date and sex, never handed out before in this run."""
        division, born = division_of(citizen), birth_date_of(citizen)
        parity = 1 if sex_of(citizen) == "male" else 0
        candidates = [self.numbers_rng.randrange(500) * 2 + parity for _ in range(20)] + list(range(parity, 1000, 2))
        for seq in candidates:
            key = (division, born.toordinal(), seq)
            if key not in self.used_ids:
                self.used_ids.add(key)
                return make_citizen_id(division, born, seq, today=self.end_date)
        raise RuntimeError(f"no free sequence number of {division} {born.isoformat()}")

    def _event_id(self) -> str:
        h = f"{self.numbers_rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def _add(self, like: Event, event_type: str, citizen: str, payload: dict[str, Any]) -> None:
        """A public-security event at the time and from the system of ``like``."""
        event: Event = {
            "event_id": self._event_id(),
            "event_type": event_type,
            "schema_version": REGISTRY.latest_version(event_type),
            "citizen_id": citizen,
            "occurred_at": like["occurred_at"],
            "recorded_at": like["recorded_at"],
            "source": dict(like["source"]),
            "payload": payload,
        }
        self.count += 1
        self.buffer.append((like["occurred_at"], self.count, event))

    def _change_number(self, citizen: str, indexes: list[int], registration: int) -> None:
        rng = self.numbers_rng
        after = indexes.index(registration) + 1  # the person is registered before their number changes
        if after >= len(indexes):
            return
        split = rng.randrange(after, len(indexes))
        first_new = self.buffer[indexes[split]][2]
        changed_on = first_new["occurred_at"][:10]
        new = self._fresh_number(citizen)
        lag_until = _day(changed_on) + LAGGING_DAYS
        for index in indexes[split:]:
            event = self.buffer[index][2]
            late = event["source"]["department"] != "public_security" and _day(event["occurred_at"]) <= lag_until
            if not (late and rng.random() < 0.3):
                event["citizen_id"] = new
        source = self.buffer[registration][2]
        like = {**first_new, "source": source["source"]}
        reason = "duplicate_number" if rng.random() < 0.7 else "other"
        self._add(
            like,
            "identity.number_changed",
            new,
            {"previous_citizen_id": citizen, "reason": reason, "changed_on": changed_on},
        )

    def _register_twice(self, citizen: str, indexes: list[int], registration: int) -> None:
        rng = self.numbers_rng
        first = self.buffer[registration][2]
        if first["event_type"] not in ("hukou.registered", "residence.registered"):
            return
        later = [i for i in indexes if self.buffer[i][:2] > self.buffer[registration][:2]]
        if len(later) < 2:
            return
        merged_at = rng.randrange(1, len(later))
        merged = self.buffer[later[merged_at]][2]
        duplicate = self._fresh_number(citizen)
        opened = self.buffer[later[0]][2]
        self._add({**opened, "source": first["source"]}, first["event_type"], duplicate, dict(first["payload"]))
        for index in later[:merged_at]:
            event = self.buffer[index][2]
            if event["source"]["department"] != "public_security" and rng.random() < 0.5:
                event["citizen_id"] = duplicate
        like = {**merged, "source": first["source"]}
        merged_on = merged["occurred_at"][:10]
        self._add(
            like, "identity.duplicate_merged", citizen, {"duplicate_citizen_id": duplicate, "merged_on": merged_on}
        )
        if first["event_type"] == "hukou.registered":
            self._add(like, "hukou.cancelled", duplicate, {"reason": "duplicate"})
        else:
            self._add(like, "residence.ended", duplicate, {"ended_on": merged_on})


def _day(timestamp: str) -> int:
    """The ordinal of the date a timestamp (or a date) starts with."""
    return date.fromisoformat(timestamp[:10]).toordinal()

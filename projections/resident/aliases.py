"""One person, several numbers (CONTRACT §12): the alias projection and the rule that combines a person's numbers.

Public security changes a person's citizen ID (``identity.number_changed``: a number issued with a wrong birth
date or twice) and cancels duplicate registrations into the one that survives (``identity.duplicate_merged``).
Each is a *link* from a superseded number to the number it leads to. Every number keeps its own sections, folded
from its own events exactly as before (one source per data item, order inside a partition); a person with
several numbers is folded **at read time** from the events of all of them:

- ``People`` resolves a number to the person's current number (following links to the end of the chain) and
  lists every number of that person: the current one first, then the others, most recently linked first. Where
  one number was linked twice, the later link (by date, then event ID) wins — in the store as here — so the
  arrival order of the events across partitions cannot change who is whom.
- ``fold_person`` folds a person's state from the events of all their numbers: each department's events of each
  number keep their log order (the order they were applied in), and the numbers' streams are interleaved by
  business time (``occurred_at``, then ``recorded_at``, then event ID; ties by the number's place). A graduation
  recorded under the new number ends an enrolment recorded under the old one; months of insurance add up. It
  reads only the events and the links, so the arrival order across partitions cannot change it, and a rebuild
  gives the same. A duplicate registration is void once merged: public security's events under the duplicate
  number are left out (the registration it made and its cancellation), every other department's count.

Everything here is pure: the store reads the links, the read paths the archived events; this module decides.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from events import Event, Payload
from events.public_security import DuplicateMerged, NumberChanged
from projections.resident.apply import apply
from projections.resident.state import DepartmentState, initial_state

__all__ = ["NumberLink", "People", "fold_person", "number_link", "person_order", "standing"]


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
        self._members: dict[str, list[str]] | None = None  # current number -> the person's other numbers

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
        if self._members is None:  # once: every known number under its person, O(links) in all
            members: dict[str, list[str]] = {}
            for n in sorted({n for link in self.links.values() for n in (link.old, link.new)}):
                if self.current(n) != n:
                    members.setdefault(self.current(n), []).append(n)
            for others in members.values():
                others.sort(key=lambda n: (self._linked_on(n), n), reverse=True)
            self._members = members
        return (current, *self._members.get(current, ()))

    def duplicates(self, number: str) -> frozenset[str]:
        """Those of ``number``'s person's numbers that were cancelled as duplicate registrations: their public
        security events (the duplicate registration itself) are void, their other departments' are the person's."""
        return frozenset(
            n for n in self.numbers(number) if n in self.links and self.links[n].kind == "identity.duplicate_merged"
        )

    def _linked_on(self, number: str) -> date:
        link = self.links.get(number)
        return link.linked_on if link is not None else date.min


def person_order(
    numbers: Sequence[str], events: Iterable[Event[Payload]], duplicates: Collection[str] = ()
) -> list[Event[Payload]]:
    """The events of a person's ``numbers`` in the order ``fold_person`` applies them: per department, each
    number's events in the order given (their log order), the numbers' streams merged by business time; public
    security's events under a cancelled duplicate registration (``duplicates``) left out."""
    place = {number: index for index, number in enumerate(numbers)}
    streams: dict[tuple[str, int], list[Event[Payload]]] = {}
    for event in events:
        if event.citizen_id in duplicates and event.source.department == "public_security":
            continue
        streams.setdefault((event.source.department, place.get(event.citizen_id, len(place))), []).append(event)
    ordered: list[Event[Payload]] = []
    for department in sorted({d for d, _ in streams}):
        ordered += heapq.merge(*(streams[key] for key in sorted(k for k in streams if k[0] == department)), key=_when)
    return ordered


def fold_person(
    numbers: Sequence[str], events: Iterable[Event[Payload]], duplicates: Collection[str] = ()
) -> dict[str, DepartmentState]:
    """A person's department states from the events of all their ``numbers`` (current first; ``duplicates``:
    ``People.duplicates``)."""
    states: dict[str, DepartmentState] = {}
    for event in person_order(numbers, events, duplicates):
        department = event.source.department
        states[department] = apply(states.get(department) or initial_state(department), event)
    return states


def _when(event: Event[Payload]) -> tuple[datetime, datetime, str]:
    return (event.occurred_at.astimezone(UTC), event.recorded_at.astimezone(UTC), str(event.event_id))

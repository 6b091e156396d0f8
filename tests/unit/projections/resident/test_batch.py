"""The batch fold (``projections.resident.batch.fold_batch``) and the in-memory store: where a log is cut into
batches never changes what it writes — states, hash chains, family rows, households, certificates, number links.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from events import Event, Payload, topic_for
from events.examples import CITIZENS
from projections.resident import fold_by_citizen, state_from_json
from projections.resident.batch import Accepted, fold_batch, section_keys
from projections.resident.memory import MemoryDatabase, MemoryProjectionStore, Tables
from tests.support.projection import ev
from tests.support.projection_strategies import histories


def accepted(events: Sequence[Event[Payload]], first: int = 0) -> list[Accepted]:
    return [Accepted(e, e.canonical_bytes(), topic_for(e.department), 0, first + n, None) for n, e in enumerate(events)]


async def folded(events: Sequence[Event[Payload]], cuts: Sequence[int]) -> Tables:
    """``events`` folded and written batch by batch, cut before each position in ``cuts``."""
    db, store = MemoryDatabase(), MemoryProjectionStore()
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(events)}), len(events)]
    for start, end in itertools.pairwise(bounds):
        batch = accepted(events[start:end], start)
        async with db.transaction():
            await store.write(db, fold_batch(batch, await store.load_sections(db, section_keys(batch))))
    return db.tables


@settings(max_examples=150)
@given(events=histories(), cuts=st.lists(st.integers(1, 39), max_size=5))
async def test_where_the_log_is_cut_into_batches_never_changes_what_is_written(
    events: list[Event[Payload]], cuts: list[int]
) -> None:
    whole, cut = await folded(events, []), await folded(events, cuts)
    assert cut == whole
    states = {(c, d): state_from_json(d, json.loads(s.state)) for (c, d), s in whole.sections.items()}
    assert states == {(c, d): s for c, by in fold_by_citizen(events).items() for d, s in by.items()}
    assert {r.event_id for r in whole.archive.values()} == {e.event_id for e in events}


async def test_a_birth_told_by_both_departments_in_either_order_and_batch_is_one_certificate() -> None:
    mother, father, child = CITIZENS["mother"], CITIZENS["father"], CITIZENS["child"]
    registered = ev("birth.registered", citizen=child)
    certified = ev("birth.certified", citizen=mother)
    for order in ([registered, certified], [certified, registered]):
        for cuts in ([], [1]):
            tables = await folded(order, cuts)
            [record] = tables.certificates.values()
            assert (record.registration is not None, record.certification is not None) == (True, True)
            assert (record.mother_citizen_id, record.child_citizen_id) == (mother, child)
            assert record.father_citizen_id == father
            assert {(k[1], link.parent_citizen_id) for k, link in tables.parent_links.items()} == {
                ("mother", mother),
                ("father", father),
            }


async def test_the_later_link_of_a_number_stands_whichever_arrives_first() -> None:
    old, new = CITIZENS["renumbered_before"], CITIZENS["renumbered"]
    earlier = ev(
        "identity.number_changed",
        {"previous_citizen_id": old, "changed_on": date(2020, 1, 1).isoformat()},
        citizen=new,
    )
    later = ev(
        "identity.number_changed",
        {"previous_citizen_id": old, "changed_on": date(2021, 1, 1).isoformat()},
        citizen=new,
    )
    for order in ([earlier, later], [later, earlier]):
        for cuts in ([], [1]):
            tables = await folded(order, cuts)
            assert tables.number_links[old].event_id == str(later.event_id)
            assert tables.view_outbox == {old, new}

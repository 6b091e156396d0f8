"""Properties of the fold: departments may interleave freely; states survive their JSON form.

Histories are generated from the catalogue's examples with varied regions, dates, schemes, employers, permit
numbers and months, for one to three citizens, and parsed with ``events.parse_event`` like any other record.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events import Event, Payload
from events.examples import CITIZENS
from projections.resident import (
    fold,
    fold_by_citizen,
    render_view,
    state_from_json,
    state_to_json,
)
from projections.resident.aliases import People, fold_person, number_link
from projections.resident.render import restrict_view
from tests.support.projection import EMPLOYER_A, EMPLOYER_B, ev
from tests.support.projection_strategies import EVENT_TYPES, days, histories, iso, payload_changes, reinterleaved


def rendered(events: list[Event[Payload]], as_of: date) -> dict[str, dict[str, Any]]:
    return {cid: render_view(cid, states, as_of=as_of) for cid, states in fold_by_citizen(events).items()}


@settings(max_examples=150)
@given(data=st.data(), as_of=days)
def test_interleaving_departments_never_changes_states_or_view(data: st.DataObject, as_of: date) -> None:
    events = data.draw(histories())
    other = data.draw(reinterleaved(events))
    assert fold_by_citizen(other) == fold_by_citizen(events)
    assert rendered(other, as_of) == rendered(events, as_of)
    # Grouped by department (one topic consumed after another) is one more valid arrival order.
    grouped = sorted(events, key=lambda e: (e.citizen_id, e.payload.department))
    assert rendered(grouped, as_of) == rendered(events, as_of)


@settings(max_examples=100)
@given(events=histories())
def test_states_survive_their_json_form(events: list[Event[Payload]]) -> None:
    for states in fold_by_citizen(events).values():
        for department, state in states.items():
            data = state_to_json(state)
            assert state_from_json(department, data) == state
            assert state_to_json(state_from_json(department, data)) == data


def test_every_example_state_survives_its_json_form() -> None:
    for event in (ev(event_type) for event_type in EVENT_TYPES):
        for department, state in fold([event]).items():
            assert state_from_json(department, state_to_json(state)) == state


# --- one person, several numbers (CONTRACT §12) -----------------------------------------------------------------

OLD, NEW, DUPLICATE = CITIZENS["renumbered_before"], CITIZENS["renumbered"], CITIZENS["duplicate"]


@st.composite
def person_histories(draw: st.DrawFn) -> list[Event[Payload]]:
    """One person's events spread over two or three numbers, with the links that join them — sometimes a number
    linked twice (a correction of the correction), which the later link must win whatever arrives first."""
    numbers = draw(st.sampled_from([(OLD, NEW), (OLD, NEW, DUPLICATE)]))
    events: list[Event[Payload]] = []
    for _ in range(draw(st.integers(1, 30))):
        event_type = draw(st.sampled_from(EVENT_TYPES))
        number = draw(st.sampled_from(numbers))
        events.append(ev(event_type, draw(payload_changes(event_type)), citizen=number, on=draw(days)))
    changed = {"previous_citizen_id": OLD, "reason": "correction", "changed_on": iso(draw(days))}
    events.insert(draw(st.integers(0, len(events))), ev("identity.number_changed", changed, citizen=NEW))
    if DUPLICATE in numbers:
        merged = {"duplicate_citizen_id": DUPLICATE, "merged_on": iso(draw(days))}
        events.insert(draw(st.integers(0, len(events))), ev("identity.duplicate_merged", merged, citizen=NEW))
    if draw(st.booleans()):  # the same number linked again, on another day: one of the two stands
        again = {"previous_citizen_id": OLD, "reason": "other", "changed_on": iso(draw(days))}
        events.insert(draw(st.integers(0, len(events))), ev("identity.number_changed", again, citizen=NEW))
    return events


def person_view(events: list[Event[Payload]], as_of: date) -> dict[str, Any]:
    """The person's view, by the read-time rule: all their numbers' events folded together (aliases.fold_person)."""
    people = People(link for link in map(number_link, events) if link is not None)
    numbers = people.numbers(OLD)
    states = fold_person(numbers, events, people.duplicates(OLD))
    return render_view(numbers[0], states, as_of=as_of, aliases=numbers[1:])


@settings(max_examples=150)
@given(data=st.data(), as_of=days)
def test_a_persons_view_is_the_same_whatever_order_their_numbers_events_arrive_in(
    data: st.DataObject, as_of: date
) -> None:
    events = data.draw(person_histories())
    view = person_view(events, as_of)
    assert view["citizen_id"] == NEW and set(view["aliases"]) <= {OLD, DUPLICATE} and OLD in view["aliases"]
    assert person_view(data.draw(reinterleaved(events)), as_of) == view
    # Every number's events consumed one after the other (partition by partition) is one more arrival order.
    by_number = sorted(events, key=lambda e: (e.citizen_id != NEW, e.citizen_id, e.payload.department))
    assert person_view(by_number, as_of) == view


def test_a_person_combines_what_each_number_holds() -> None:
    # Born and registered under the old number, working under the new one: one person with both.
    events = [
        ev("birth.registered", citizen=OLD, on=date(2024, 5, 20)),
        ev("identity.number_changed", {"previous_citizen_id": OLD, "changed_on": "2025-01-02"}, citizen=NEW),
        ev("employment.registered", citizen=NEW, on=date(2025, 3, 1)),
        ev("employment.registered", {"employer_code": EMPLOYER_B}, citizen=OLD, on=date(2025, 2, 1)),
    ]
    view = person_view(events, date(2025, 6, 1))
    assert view["citizen_id"] == NEW and view["aliases"] == [OLD]
    assert view["identity"]["name"] == "李沐阳" and view["hukou"]["status"] == "registered"
    # The later registration under the old number (a department that had not heard of the change) still counts.
    assert {e["employer_code"] for e in view["employment"]["employers"]} == {EMPLOYER_A, EMPLOYER_B}


def test_what_one_number_ends_stays_ended_and_what_both_hold_adds_up() -> None:
    enrolled = ev("student.enrolled", citizen=OLD, on=date(2016, 9, 1))
    graduated = ev(
        "student.graduated", {"stage": "primary", "graduated_on": "2022-06-30"}, citizen=NEW, on=date(2022, 6, 30)
    )
    changed = ev("identity.number_changed", {"previous_citizen_id": OLD, "changed_on": "2021-01-02"}, citizen=NEW)
    enrol = {"region_code": "630100", "started_on": "2015-01-01"}
    paid = [
        ev("insurance.enrolled", enrol, citizen=OLD, on=date(2015, 1, 1)),
        ev("insurance.contributed", {"months": 12, "period": "2015-12"}, citizen=OLD, on=date(2016, 1, 5)),
        ev("insurance.contributed", {"months": 3, "period": "2021-03"}, citizen=NEW, on=date(2021, 4, 5)),
    ]
    view = person_view([graduated, changed, *paid, enrolled], date(2023, 1, 1))
    assert view["education"]["current"] is None  # the graduation under the new number ends the old enrolment
    pension = view["social_insurance"]["schemes"]["pension_employee"]
    assert sum(pension["months_by_region"].values()) == 15  # months under both numbers add up


def test_other_numbers_are_shown_only_to_a_reader_of_the_identity() -> None:
    states = fold([ev("student.enrolled", citizen=NEW)])
    whole = render_view(NEW, states, as_of=date(2025, 1, 1), aliases=[OLD])
    assert whole["aliases"] == [OLD]
    assert "aliases" not in render_view(NEW, states, as_of=date(2025, 1, 1), sections=["education"], aliases=[OLD])
    assert restrict_view(whole, ["identity"])["aliases"] == [OLD]
    assert "aliases" not in restrict_view(whole, ["education", "flags"])

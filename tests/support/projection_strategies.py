"""Hypothesis strategies for histories of the fold: valid variations of each catalogue example (regions, dates,
schemes, employers, permit numbers, months)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from events import Event, Payload
from events.examples import CITIZENS, example_events
from tests.support.projection import EMPLOYER_A, EMPLOYER_B, ev

REGIONS = ("510107", "510104", "510112", "630102")
SCHEMES = ("pension_employee", "medical_employee", "unemployment")
# The number links (§12) change no section: their property is the alias projection's (test_aliases).
EVENT_TYPES = tuple(t for t in example_events() if t not in {"identity.number_changed", "identity.duplicate_merged"})

days = st.dates(min_value=date(2010, 1, 1), max_value=date(2024, 12, 31))
regions = st.sampled_from(REGIONS)


def iso(day: date) -> str:
    return day.isoformat()


@st.composite
def payload_changes(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    """Variations of the example payload of ``event_type`` that stay valid."""
    if event_type in {"birth.registered", "hukou.registered"}:
        return {"region_code": draw(regions), "household_id": draw(st.sampled_from(["H1", "H2"]))}
    if event_type == "hukou.moved_out":
        return {"to_region_code": draw(regions)}
    if event_type == "hukou.cancelled":
        return {"reason": draw(st.sampled_from(["death", "emigration", "duplicate"]))}
    if event_type == "identity.corrected":
        return {"name": draw(st.sampled_from(["王晓雯", "王小文"]))}
    if event_type == "residence.registered":
        return {"region_code": draw(regions), "since": iso(draw(days))}
    if event_type == "residence.ended":
        return {"ended_on": iso(draw(days))}
    permit_no = draw(st.sampled_from(["P1", "P2"]))
    if event_type == "residence_permit.issued":
        issued = draw(days)
        valid_until = issued + timedelta(days=draw(st.integers(0, 800)))
        return {"permit_no": permit_no, "issued_on": iso(issued), "valid_until": iso(valid_until)}
    if event_type in {"residence_permit.renewed", "residence_permit.revoked"}:
        return {"permit_no": permit_no} | ({"valid_until": iso(draw(days))} if "renewed" in event_type else {})
    if event_type == "student.enrolled":
        return {"region_code": draw(regions), "enrolled_on": iso(draw(days))}
    if event_type == "student.transferred":
        return {"region_code": draw(regions), "transferred_on": iso(draw(days))}
    employer = draw(st.sampled_from([EMPLOYER_A, EMPLOYER_B]))
    if event_type == "employment.registered":
        return {"employer_code": employer, "region_code": draw(regions), "started_on": iso(draw(days))}
    if event_type == "employment.ended":
        return {"employer_code": employer}
    scheme = draw(st.sampled_from(SCHEMES))
    if event_type == "insurance.enrolled":
        return {"scheme": scheme, "region_code": draw(regions)}
    if event_type == "insurance.contributed":
        month = draw(days)
        return {"scheme": scheme, "months": draw(st.integers(1, 12)), "period": f"{month:%Y-%m}"}
    if event_type == "insurance.transferred":
        source, target = draw(st.lists(regions, min_size=2, max_size=2, unique=True))
        carried = draw(st.integers(0, 60))
        return {
            "scheme": scheme,
            "from_region_code": source,
            "to_region_code": target,
            "months_carried": carried,
        }
    if event_type == "insurance.stopped":
        return {"scheme": scheme}
    if event_type == "death.certified":
        return {"died_on": iso(draw(days))}
    if event_type == "birth.certified":
        return {"certificate_no": draw(st.sampled_from(["Q1", "Q2"]))}
    if event_type == "family_doctor.contracted":
        start = draw(days)
        return {"started_on": iso(start), "ends_on": iso(start + timedelta(days=draw(st.integers(0, 730))))}
    if event_type == "vaccination.recorded":
        return {"dose": draw(st.integers(1, 4))}
    return {}


@st.composite
def histories(draw: st.DrawFn) -> list[Event[Payload]]:
    """The events of one to three citizens, in the order each department recorded them."""
    citizens = draw(st.lists(st.sampled_from(sorted(CITIZENS.values())), min_size=1, max_size=3, unique=True))
    events: list[Event[Payload]] = []
    for _ in range(draw(st.integers(1, 40))):
        event_type = draw(st.sampled_from(EVENT_TYPES))
        citizen = draw(st.sampled_from(citizens))
        events.append(ev(event_type, draw(payload_changes(event_type)), citizen=citizen, on=draw(days)))
    return events


@st.composite
def reinterleaved(draw: st.DrawFn, events: list[Event[Payload]]) -> list[Event[Payload]]:
    """Another arrival order of ``events`` that keeps the order within each (citizen, department) stream.

    That is exactly what Kafka guarantees: one partition per citizen key and topic, no order across topics.
    """
    streams: defaultdict[tuple[str, str], list[Event[Payload]]] = defaultdict(list)
    for event in events:
        streams[(event.citizen_id, event.payload.department)].append(event)
    keys = [key for key, stream in streams.items() for _ in stream]
    order = draw(st.permutations(keys))
    positions = dict.fromkeys(streams, 0)
    result = []
    for key in order:
        result.append(streams[key][positions[key]])
        positions[key] += 1
    return result

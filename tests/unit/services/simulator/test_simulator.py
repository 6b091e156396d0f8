"""The simulated city generator: valid events, determinism, ordering, linkage, and the data it is built from."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from stdnum.cn import uscc

from events import EVENT_TYPES, department_of, parse_event
from events.citizen_id import lookup_division, normalize_citizen_id
from services.settings import project_root
from services.simulator import CITIES, DEFAULT_END, city_by_key, simulate, simulate_bytes, summary
from services.simulator.households import Simulation

ROOT = project_root()
Event = dict[str, Any]


@pytest.fixture(scope="module")
def small() -> list[Event]:
    """300 residents over the default 20 years."""
    return list(simulate(300, seed=7))


@pytest.fixture(scope="module")
def city() -> list[Event]:
    """2,000 residents: enough for every event type and the rarer stories."""
    return list(simulate(2000, seed=42))


def _by_citizen(events: list[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        grouped[event["citizen_id"]].append(event)
    return grouped


def _by_person(events: list[Event]) -> dict[str, list[Event]]:
    """Events grouped by person (§12: a person's numbers joined through the number changes and merges)."""
    superseded: dict[str, str] = {}
    for event in events:
        payload = event["payload"]
        other = payload.get("previous_citizen_id") or payload.get("duplicate_citizen_id")
        if event["event_type"].startswith("identity.") and other:
            superseded[other] = event["citizen_id"]

    def person(number: str) -> str:
        while number in superseded:
            number = superseded[number]
        return number

    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e["occurred_at"]):
        grouped[person(event["citizen_id"])].append(event)
    return grouped


def _region_codes(event: Event) -> Iterator[str]:
    yield event["source"]["region_code"]
    yield event["citizen_id"][:6]
    payload = event["payload"]
    for field in ("region_code", "from_region_code", "to_region_code"):
        if field in payload:
            yield payload[field]


# -------------------------------------------------------------------------------------------------------------
# Validity
# -------------------------------------------------------------------------------------------------------------


def test_every_event_of_a_small_city_is_valid(small: list[Event]) -> None:
    assert len(small) > 300 * 30
    for event in small:
        parsed = parse_event(event)  # raises InvalidEvent naming every failed rule
        assert parsed.department == department_of(event["event_type"])
    # The JSON form is what Kafka carries: it must be accepted as well.
    for _, _, value in simulate_bytes(50, seed=7):
        parse_event(value)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_small_city_never_produces_an_event_its_own_city_would_reject(seed: int) -> None:
    """Every record of several seeds passes parse_event as Kafka carries it (no clock involved: validation bounds
    a birth by the event's recorded_at, and the simulator never records anything after the window's end)."""
    count = 0
    for _, _, value in simulate_bytes(150, seed=seed):
        parse_event(value)
        count += 1
    assert count > 150 * 30


def test_no_child_is_planned_after_the_window() -> None:
    """``renkou simulate --residents 5000 --seed 3`` once planned a child for 2027-02-02 (a mother who dies after
    the window's end); a birth after the window cannot be recorded inside it."""
    simulation = Simulation(3, 20, DEFAULT_END, CITIES)
    end = DEFAULT_END.toordinal()
    for k in range(2000):
        mother_born = date(1990 + k % 15, 1 + k % 12, 1)
        planned = simulation.kids_plan(mother_born, end - 400 - k % 300, end + 400)
        assert all(day <= DEFAULT_END for day in planned), planned


def test_every_event_type_occurs(city: list[Event]) -> None:
    counts = summary(city)["by_type"]
    assert set(counts) == set(EVENT_TYPES), sorted(set(EVENT_TYPES) - set(counts))


def test_events_per_resident_and_residents(city: list[Event]) -> None:
    stats = summary(city)
    assert 40 <= stats["events"] / 2000 <= 60
    # Every simulated person is the subject of at least one event (a few may be lost to edge cases only); a few
    # hold a second number (§12), at the rates of services.simulator.numbers.
    people = len(_by_person(city))
    assert 0.995 * 2000 <= people <= 2000
    assert 0 < stats["citizens"] - people <= 0.02 * 2000


def test_event_ids_are_unique_uuids(city: list[Event]) -> None:
    ids = [event["event_id"] for event in city]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 and i[14] == "4" and i[19] in "89ab" for i in ids)


def test_citizen_ids_and_region_codes_are_known_divisions(city: list[Event]) -> None:
    codes: set[str] = set()
    for event in city:
        codes.update(_region_codes(event))
        for field in ("mother_citizen_id", "father_citizen_id"):
            if field in event["payload"]:
                normalize_citizen_id(event["payload"][field], today=DEFAULT_END)
    for citizen_id in {event["citizen_id"] for event in city}:
        # The birth date is in range and the division was not abolished before the birth year (CONTRACT §5).
        assert normalize_citizen_id(citizen_id, today=DEFAULT_END) == citizen_id
    unknown = sorted(code for code in codes if lookup_division(code) is None)
    assert not unknown


def test_summary_counts(small: list[Event]) -> None:
    stats = summary(small)
    assert stats["events"] == len(small) == sum(stats["by_type"].values()) == sum(stats["by_department"].values())
    assert stats["citizens"] == len({event["citizen_id"] for event in small})
    assert list(stats["by_type"]) == sorted(stats["by_type"])


# -------------------------------------------------------------------------------------------------------------
# Determinism and the byte form
# -------------------------------------------------------------------------------------------------------------


def _digest(residents: int, seed: int) -> str:
    digest = hashlib.sha256()
    for department, key, value in simulate_bytes(residents, seed=seed):
        digest.update(department.encode() + b"\0" + key + b"\0" + value + b"\n")
    return digest.hexdigest()


def test_same_arguments_same_bytes_and_another_seed_differs() -> None:
    assert _digest(150, 3) == _digest(150, 3)
    assert _digest(150, 3) != _digest(150, 4)


def test_output_does_not_depend_on_the_hash_seed() -> None:
    script = (
        "import hashlib\n"
        "from services.simulator import simulate_bytes\n"
        "d = hashlib.sha256()\n"
        "for t, k, v in simulate_bytes(60, seed=9): d.update(t.encode() + k + v)\n"
        "print(d.hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1


def test_bytes_are_compact_json_of_the_events_keyed_by_citizen() -> None:
    events = list(simulate(120, seed=5))
    records = list(simulate_bytes(120, seed=5))
    assert len(events) == len(records)
    for event, (department, key, value) in zip(events, records, strict=True):
        assert department == event["source"]["department"]
        assert key == event["citizen_id"].encode()
        assert value == json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_larger_run_starts_with_the_households_of_a_smaller_one() -> None:
    # Households are generated one after the other: more residents only add households at the end.
    smaller = list(simulate(100, seed=8))
    larger = list(simulate(200, seed=8))
    half = len(smaller) // 2  # the last household of the smaller run may have been cut short
    assert larger[:half] == smaller[:half]


# -------------------------------------------------------------------------------------------------------------
# Time
# -------------------------------------------------------------------------------------------------------------


def test_each_citizens_events_per_department_are_chronological(city: list[Event]) -> None:
    last: dict[tuple[str, str], str] = {}
    for event in city:
        key = (event["citizen_id"], event["source"]["department"])
        assert last.get(key, "") <= event["occurred_at"], key
        last[key] = event["occurred_at"]


def test_timestamps_are_china_time_within_the_window(city: list[Event]) -> None:
    start, end = "2006-07-01", DEFAULT_END.isoformat()
    for event in city:
        occurred, recorded = event["occurred_at"], event["recorded_at"]
        assert occurred.endswith("+08:00") and recorded.endswith("+08:00")
        assert start <= occurred[:10] <= recorded[:10] <= end
        assert occurred < recorded
        if event["event_type"] != "hukou.cancelled":
            assert recorded[:10] == occurred[:10]  # recorded within hours; only deregistrations lag


def test_a_short_window_in_the_past() -> None:
    end = date(2016, 12, 31)
    events = list(simulate(150, years=5, seed=1, end=end))
    assert events
    for event in events:
        assert "2012-01-01" <= event["occurred_at"][:10] <= "2016-12-31"
        parse_event(event)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="residents"):
        simulate(-1)
    with pytest.raises(ValueError, match="years"):
        simulate_bytes(10, years=0)
    with pytest.raises(ValueError, match="1900"):
        simulate(10, years=200)
    with pytest.raises(ValueError, match="city"):
        simulate(10, cities=())
    assert list(simulate(0)) == []


# -------------------------------------------------------------------------------------------------------------
# Life stories
# -------------------------------------------------------------------------------------------------------------


def test_births_link_the_health_certificate_to_the_registration(city: list[Event]) -> None:
    certified = {
        event["payload"]["certificate_no"]: event for event in city if event["event_type"] == "birth.certified"
    }
    registered = [event for event in city if event["event_type"] == "birth.registered"]
    assert registered
    linked = 0
    for event in registered:
        payload = event["payload"]
        number = payload.get("birth_certificate_no")
        if number is None:
            continue
        certificate = certified[number]
        assert certificate["citizen_id"] == payload["mother_citizen_id"]
        assert certificate["payload"]["birth_date"] == payload["birth_date"]
        assert certificate["payload"]["child_name"] == payload["name"]
        assert certificate["payload"]["child_sex"] == payload["sex"]
        assert certificate["payload"].get("father_citizen_id") == payload.get("father_citizen_id")
        assert certificate["occurred_at"] <= event["occurred_at"]
        assert certificate.get("correlation_id") == event.get("correlation_id")
        linked += 1
    assert linked >= 0.9 * len(registered)


def test_nothing_happens_to_the_dead_but_certification_and_cancellation(city: list[Event]) -> None:
    deaths = 0
    for events in _by_citizen(city).values():
        died = [e["payload"]["died_on"] for e in events if e["event_type"] == "death.certified"]
        if not died:
            continue
        deaths += 1
        assert len(died) == 1
        for event in events:
            if event["occurred_at"][:10] < died[0]:
                continue
            assert event["event_type"] in {"death.certified", "hukou.cancelled"}, event
            if event["event_type"] == "hukou.cancelled":
                assert event["payload"]["reason"] == "death"
    assert deaths > 20


def test_deaths_are_deregistered_weeks_later_or_never(city: list[Event]) -> None:
    died_on = {e["citizen_id"]: e["payload"]["died_on"] for e in city if e["event_type"] == "death.certified"}
    cancellations = [e for e in city if e["event_type"] == "hukou.cancelled" and e["payload"]["reason"] == "death"]
    # Public security's record of the death: valid from the day of death (the date its view shows), recorded
    # when the family deregisters, weeks later.
    agreeing = 0
    for event in cancellations:
        assert event["citizen_id"] in died_on
        assert event["causation_id"] and event["correlation_id"]
        recorded = date.fromisoformat(event["recorded_at"][:10])
        assert (recorded - date.fromisoformat(died_on[event["citizen_id"]])).days >= 7
        agreeing += event["occurred_at"][:10] == died_on[event["citizen_id"]]
    assert agreeing >= 0.9 * len(cancellations)
    # The resident view flags death_not_deregistered: the simulation must produce the case.
    cancelled = {e["citizen_id"] for e in cancellations}
    assert set(died_on) & cancelled
    assert set(died_on) - cancelled


def test_migrants_get_permits_after_six_months_and_renew_them(city: list[Event]) -> None:
    for events in _by_citizen(city).values():
        since = [e["payload"]["since"] for e in events if e["event_type"] == "residence.registered"]
        permits = {e["payload"]["permit_no"]: e for e in events if e["event_type"] == "residence_permit.issued"}
        for permit in permits.values():
            assert since, "a permit without a residence registration"
            issued = date.fromisoformat(permit["payload"]["issued_on"])
            assert (issued - date.fromisoformat(since[0])).days >= 183
        for event in events:
            if event["event_type"] in {"residence_permit.renewed", "residence_permit.revoked"}:
                assert event["payload"]["permit_no"] in permits


def test_settlers_and_reasons(city: list[Event]) -> None:
    reasons = {e["payload"]["reason"] for e in city if e["event_type"] == "hukou.registered"}
    assert {"birth", "stable_employment", "family_reunion", "graduate", "collective", "return"} <= reasons
    natures = {e["payload"].get("legacy_nature") for e in city if e["event_type"] == "hukou.registered"}
    assert {"agricultural", "non_agricultural"} <= natures
    migrant_children = [e for e in city if e["event_type"] == "student.enrolled" and e["payload"]["migrant_child"]]
    assert migrant_children


def test_employment_and_insurance_use_the_citys_employers(city: list[Event]) -> None:
    employers = {employer.code for c in CITIES for employer in c.employers}
    for event in city:
        code = event["payload"].get("employer_code")
        if code is not None:
            assert code in employers
        if event["event_type"] == "insurance.contributed":
            assert 1 <= event["payload"]["months"] <= 12
            assert float(event["payload"]["amount"]) > 0
        if event["event_type"] == "insurance.transferred":
            payload = event["payload"]
            assert payload["from_region_code"] != payload["to_region_code"]


def test_working_lives_are_consistent(city: list[Event]) -> None:
    for events in _by_person(city).values():
        jobs: set[str] = set()
        schemes: set[str] = set()
        for event in events:
            kind, payload = event["event_type"], event["payload"]
            if kind == "employment.registered":
                assert not jobs, "one job at a time"
                jobs.add(payload["employer_code"])
            elif kind == "employment.ended":
                assert payload["employer_code"] in jobs
                jobs.discard(payload["employer_code"])
            elif kind == "insurance.enrolled":
                assert payload.get("employer_code", next(iter(jobs), None)) in jobs | {None}
                schemes.add(payload["scheme"])
            elif kind == "insurance.contributed":
                assert payload["scheme"] in schemes, "contributions only to a scheme one has joined"


def test_a_single_city() -> None:
    xining = city_by_key("xining")
    events = list(simulate(150, seed=2, cities=[xining]))
    systems = set(xining.systems.values()) | {"hukou-national"}
    assert {e["source"]["system"] for e in events} <= systems
    assert {e["source"]["region_code"] for e in events if e["source"]["system"] != "hukou-national"} == {"630100"}


# -------------------------------------------------------------------------------------------------------------
# The seed cities' data
# -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed_city", CITIES, ids=lambda c: c.key)
def test_city_data_uses_real_codes(seed_city: Any) -> None:
    assert lookup_division(seed_city.region_code) is not None
    for district in seed_city.districts:
        for _, code, _ in district.codes:
            assert lookup_division(code) is not None, code
        assert district.places
        # The code in force in a year was not abolished before it: IDs assigned then are valid.
        for year in range(1900, DEFAULT_END.year + 1):
            division = lookup_division(district.code_in(year))
            assert division is not None
            assert division.abolished_in is None or division.abolished_in >= year, (district.name, year)
    for origin in seed_city.origins:
        division = lookup_division(origin)
        assert division is not None and division.abolished_in is None, origin
    prefecture = seed_city.region_code[:4]
    for employer in seed_city.employers:
        assert uscc.validate(employer.code) == employer.code
        assert employer.code[2:6] == prefecture, employer
    assert seed_city.employers and seed_city.surnames and seed_city.ethnicities
    assert seed_city.ethnicities[0][0] == "汉族"


def test_nearly_everyone_simulated_has_a_name_in_the_view() -> None:
    # §12 (identity for everyone): registrations carry the identity, so those born elsewhere are named too;
    # only people public security never registered (commuters, students without a residence registration) are not.
    from projections.resident import PublicSecurityState, fold_by_citizen

    everything = list(simulate(2000, seed=3))
    residents = {e["citizen_id"] for e in everything}
    registered = [parse_event(e) for e in everything if department_of(e["event_type"]) == "public_security"]
    named = 0
    for states in fold_by_citizen(registered).values():
        ps = states["public_security"]
        named += isinstance(ps, PublicSecurityState) and ps.identity.name is not None
    assert named / len(residents) >= 0.99, (named, len(residents))

"""Facts and their provenance: which events stand behind each fact, what ``as_of`` cuts, and that nothing in
the eligibility package reads the clock."""

from __future__ import annotations

import ast
from datetime import date

from events.citizen_id import make_citizen_id
from projections.eligibility import CityScope, RelativeInput, decide, derive_facts, load_policy
from projections.eligibility.facts import household_relation
from projections.resident.aliases import person_order
from services.settings import project_root
from tests.support.eligibility import MIGRANT, History

CHENGDU = CityScope("成都市", ("5101",))
AS_OF = date(2024, 6, 30)
PACKAGE = project_root() / "projections" / "eligibility"


def test_each_fact_names_the_events_behind_it() -> None:
    h = History(MIGRANT).hukou("130102", date(2008, 9, 1))
    hukou_id = h.last_id
    h.residence("510104", date(2021, 3, 1))
    first_home = h.last_id
    h.residence("510107", date(2022, 5, 1), tenure="owned")  # a move inside Chengdu
    second_home = h.last_id
    h.permit("510107", date(2022, 11, 1), date(2023, 10, 31), permit_no="CD1")
    issued = h.last_id
    h.add("residence_permit.renewed", {"permit_no": "CD1", "valid_until": "2025-10-31"}, date(2023, 10, 20))
    renewed = h.last_id
    h.job("510107", date(2021, 3, 1))
    job = h.last_id
    h.insured("pension_employee", "510107", date(2021, 3, 1))
    enrolled = h.last_id
    h.paid("pension_employee", date(2021, 3, 1), 24)
    paid = [str(e.event_id) for e in h.events[-2:]]
    h.graduated("vocational", date(2010, 6, 30))
    graduated = h.last_id

    facts = derive_facts(MIGRANT, h.events, AS_OF, CHENGDU)

    assert facts.hukou.event_ids == (hukou_id,) and not facts.hukou.in_city
    assert facts.residence.event_ids == (first_home, second_home)
    assert facts.residence.continuous_since == date(2021, 3, 1) and facts.residence.continuous_months == 39
    assert facts.residence.months_at_address == 25 and facts.residence.tenure == "owned"
    assert facts.permit.event_ids == (issued, renewed) and facts.permit.valid_in_city
    assert facts.employment.event_ids == (job,) and facts.employment.months_in_city == 39
    pension = facts.insurance.get("pension_employee")
    assert pension is not None and pension.event_ids == (enrolled, *paid) and pension.months_in_city == 24
    assert facts.education.event_ids == (graduated,)
    assert facts.age.source == "citizen_id" and facts.age.age == 34


def test_events_after_as_of_are_not_facts_yet() -> None:
    h = History(MIGRANT).residence("510107", date(2020, 1, 1)).permit("510107", date(2024, 7, 1))
    h.graduated("higher", date(2024, 7, 5))
    before = derive_facts(MIGRANT, h.events, AS_OF, CHENGDU)
    after = derive_facts(MIGRANT, h.events, date(2024, 7, 10), CHENGDU)
    assert not before.permit.held and not before.education.graduations and before.events_used == 1
    assert after.permit.valid_in_city and after.education.highest is not None and after.events_used == 3


def test_a_registration_recorded_ahead_of_its_start_leaves_the_earlier_one_in_force() -> None:
    h = History(MIGRANT).residence("510107", date(2020, 1, 1))
    h.residence("440106", date(2024, 8, 1), on=date(2024, 6, 1))  # recorded in June, moving in August
    facts = derive_facts(MIGRANT, h.events, AS_OF, CHENGDU)
    assert facts.residence.region_code == "510107" and facts.residence.continuous_months == 53


def test_months_transferred_into_the_city_count_as_the_citys() -> None:
    h = History(MIGRANT).insured("pension_employee", "440106", date(2015, 1, 1))
    h.paid("pension_employee", date(2015, 1, 1), 30)
    h.add(
        "insurance.transferred",
        {"scheme": "pension_employee", "from_region_code": "440106", "to_region_code": "510107", "months_carried": 30},
        date(2018, 1, 10),
    )
    transfer = h.last_id
    facts = derive_facts(MIGRANT, h.events, AS_OF, CHENGDU)
    pension = facts.insurance.get("pension_employee")
    assert pension is not None and pension.months_in_city == 30 and pension.in_city and pension.active
    assert transfer in pension.event_ids


def test_a_death_certified_by_health_alone_ends_eligibility() -> None:
    h = History(MIGRANT).residence("510107", date(2020, 1, 1)).death_certified(date(2024, 3, 1), "510107")
    facts = derive_facts(MIGRANT, h.events, AS_OF, CHENGDU)
    assert not facts.life.alive and facts.life.event_ids == (h.last_id,)
    assert derive_facts(MIGRANT, h.events, date(2024, 2, 29), CHENGDU).life.alive


def test_other_citizens_events_are_ignored() -> None:
    mine = History(MIGRANT).residence("510107", date(2020, 1, 1))
    other = History("11010519491231002X").residence("510104", date(2023, 1, 1))
    facts = derive_facts(MIGRANT, [*other.events, *mine.events], AS_OF, CHENGDU)
    assert facts.residence.event_ids == (mine.last_id,)


def test_a_persons_facts_come_from_every_number_they_held() -> None:
    before = make_citizen_id("130102", date(1990, 5, 16), 123)  # the number issued with a wrong birth day
    old = History(before).hukou("130102", date(2008, 9, 1)).residence("510107", date(2020, 1, 1))
    new = History(MIGRANT).job("510107", date(2021, 3, 1))
    events = person_order((MIGRANT, before), [*new.events, *old.events])
    facts = derive_facts(MIGRANT, events, AS_OF, CHENGDU, aliases=(before,))
    assert facts.hukou.event_ids == (str(old.events[0].event_id),)
    assert facts.residence.event_ids == (old.last_id,) and facts.employment.event_ids == (new.last_id,)
    assert facts.age.birth_date == date(1990, 5, 17)  # from the current number, the corrected one
    alone = derive_facts(MIGRANT, events, AS_OF, CHENGDU)  # without the link, the old number's are someone else's
    assert not alone.residence.event_ids and not alone.hukou.event_ids


def test_decisions_depend_on_as_of_only() -> None:
    h = History(MIGRANT).hukou("130102", date(2008, 9, 1)).residence("510107", date(2023, 12, 31))
    policy = load_policy("chengdu-2017").model_copy(update={"in_force": None})  # its clauses, past its expiry
    first = decide(policy, MIGRANT, h.events, AS_OF)
    again = decide(policy, MIGRANT, list(h.events), AS_OF)
    assert first == again
    earlier = decide(policy, MIGRANT, h.events, date(2024, 6, 29))
    assert first["decisions"][0]["eligible"] and not earlier["decisions"][0]["eligible"]


_CLOCK_CALLS = {"now", "today", "utcnow", "time", "monotonic", "perf_counter", "localtime", "gmtime"}


def test_nothing_in_the_eligibility_package_reads_the_clock() -> None:
    sources = sorted(PACKAGE.glob("*.py"))
    assert {p.name for p in sources} >= {"facts.py", "evaluator.py", "policy.py"}
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = {a.name for a in node.names} | {getattr(node, "module", None) or ""}
                assert not names & {"time", "datetime.datetime"}, (path.name, ast.dump(node))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in _CLOCK_CALLS, (path.name, node.lineno, node.func.attr)


def test_a_household_link_holds_only_while_both_are_in_the_household() -> None:
    """The family tables say who is linked now; on an earlier (or later) day the events decide."""
    partner = make_citizen_id("130102", date(1989, 4, 12), 57)
    me = History(MIGRANT).hukou("130102", date(2012, 5, 1), household="H1", relationship="spouse")
    them = History(partner).hukou("130102", date(2008, 9, 1), household="H1")
    them.hukou("130102", date(2023, 1, 1), household="H9")  # moves to a household of their own in 2023
    relative = RelativeInput("spouse", partner, "household", (), them.events)
    then = derive_facts(MIGRANT, me.events, date(2022, 6, 30), CHENGDU, relatives=[relative])
    now = derive_facts(MIGRANT, me.events, AS_OF, CHENGDU, relatives=[relative])
    assert [(r.relation, r.citizen_id) for r in then.relatives] == [("spouse", partner)]
    assert set(then.relatives[0].link_event_ids) == {str(me.events[0].event_id), str(them.events[0].event_id)}
    assert now.relatives == ()
    # Linked as a child, though the household makes them a spouse: not kept either.
    assert (
        derive_facts(
            MIGRANT,
            me.events,
            date(2022, 6, 30),
            CHENGDU,
            relatives=[RelativeInput("child", partner, "household", (), them.events)],
        ).relatives
        == ()
    )


def test_relations_in_a_household_from_each_ones_relation_to_the_head() -> None:
    assert household_relation("head", "spouse") == household_relation("spouse", "head") == "spouse"
    assert household_relation("head", "child") == household_relation("spouse", "child") == "child"
    assert household_relation("child", "head") == household_relation("child", "spouse") == "parent"
    assert household_relation("head", "parent") == "parent" and household_relation("parent", "head") == "child"
    assert household_relation("child", "child") is None  # siblings are not among 配偶、子女、父母
    assert household_relation("spouse", "parent") is None  # a parent-in-law neither


def test_schooling_follows_the_dates_not_the_order_events_were_logged() -> None:
    """A graduation recorded after the next enrolment still closes the earlier school, and the summer between
    the two keeps the schooling in the city unbroken."""
    child = make_citizen_id("130102", date(2009, 8, 1), 19)
    h = History(child).enrolled("510107", "primary", date(2015, 9, 1))
    h.enrolled("510107", "junior_secondary", date(2021, 9, 1))
    h.graduated("primary", date(2021, 6, 30))  # logged late
    facts = derive_facts(child, h.events, AS_OF, CHENGDU)
    assert facts.education.enrolled_stage == "junior_secondary" and facts.education.enrolled_in_city
    assert facts.education.schooling_since == date(2015, 9, 1)
    assert facts.education.school_months_in_city == 105
    elsewhere = derive_facts(child, h.events, AS_OF, CityScope("辽源市", ("2204",)))
    assert not elsewhere.education.enrolled_in_city and elsewhere.education.school_months_in_city == 0

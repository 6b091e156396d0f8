"""The policy files: all five load, every clause is quoted verbatim from its seed plan, every parameter says
where it comes from, and an operator's edited copy replaces a parameter."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from projections.eligibility import POLICY_IDS, PolicyError, decide, load_policy, parse_policy, policy_ids
from projections.eligibility.policy import SettlementRule
from services.settings import project_root
from tests.support.eligibility import MIGRANT, History

SEEDS = Path("/work/shared/seeds")
POLICY_DIR = project_root() / "projections" / "eligibility" / "policies"


def _normalised(text: str) -> str:
    # The seeds wrap and indent freely; a quote is checked against the text with all whitespace removed.
    return re.sub(r"\s+", "", text)


def test_the_five_policies_ship_and_load() -> None:
    assert sorted(POLICY_IDS) == policy_ids()
    for policy_id in POLICY_IDS:
        policy = load_policy(policy_id)
        assert policy.policy == policy_id
        assert (POLICY_DIR / f"{policy_id}.toml").is_file()


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed plans are not on this machine (/work/shared/seeds)")
@pytest.mark.parametrize("policy_id", POLICY_IDS)
def test_every_clause_quotes_its_seed_verbatim(policy_id: str) -> None:
    policy = load_policy(policy_id)
    seed = _normalised((SEEDS / policy.seed).read_text(encoding="utf-8"))
    quoted = 0
    for where, citation in policy.citations():
        assert citation.number, where
        if citation.document is not None:
            continue  # a national text (居住证暂行条例, 国发〔2014〕25号), not in the seeds
        assert citation.seed == policy.seed, where
        assert _normalised(citation.quote) in seed, f"{policy_id} {where}: {citation.quote!r} is not in {policy.seed}"
        quoted += 1
    assert quoted >= 3


@pytest.mark.parametrize("policy_id", POLICY_IDS)
def test_every_parameter_says_where_it_comes_from(policy_id: str) -> None:
    for where, param in load_policy(policy_id).parameters():
        assert param.source or (param.assumed and param.note), where


def test_chengdu_points_weights_are_all_assumed() -> None:
    params = dict(load_policy("chengdu-2017").parameters())
    weights = {k: v for k, v in params.items() if k.startswith("settlement_points.")}
    assert weights and all(p.assumed for p in weights.values())


def test_feicheng_business_owners_are_declared_not_assessable() -> None:
    rule = load_policy("feicheng-2016").benefits["settlement"]
    assert isinstance(rule, SettlementRule)
    business = next(r for r in rule.routes if r.name == "business")
    assert business.kind == "not_assessable" and business.clause.number == "2(1)3"


def test_unknown_policy_names_those_available() -> None:
    with pytest.raises(PolicyError, match=r"unknown policy 'shanghai-2020'; available: chengdu-2017"):
        load_policy("shanghai-2020")
    with pytest.raises(PolicyError, match="unknown policy"):
        load_policy("../../etc/passwd")


def test_an_operator_copy_replaces_an_assumed_parameter(tmp_path: Path) -> None:
    text = (POLICY_DIR / "xining-2015.toml").read_text(encoding="utf-8")
    shipped_line = next(line for line in text.splitlines() if line.startswith("min_residence_months = { value = 36"))
    edited = text.replace(
        shipped_line, 'min_residence_months = { value = 24, source = "西宁市住房保障实施细则 (operator)" }', 1
    )
    assert edited != text
    (tmp_path / "xining-2015.toml").write_text(edited, encoding="utf-8")
    assert policy_ids(tmp_path) == ["xining-2015"]
    policy = load_policy("xining-2015", tmp_path)
    # Xining's plan applied until 2020-07-05 (有效期至2020年7月5日): decided for a day it was in force.
    history = History(MIGRANT).residence("630102", date(2017, 6, 1))
    history.permit("630102", date(2019, 1, 1))
    history.insured("pension_employee", "630102", date(2013, 1, 1))
    history.paid("pension_employee", date(2013, 1, 1), 40)
    as_of = date(2019, 6, 30)
    edited_answer = decide(policy, MIGRANT, history.events, as_of)
    shipped_answer = decide(load_policy("xining-2015"), MIGRANT, history.events, as_of)
    housing = {d["benefit"]: d for d in edited_answer["decisions"]}["housing_security"]
    shipped = {d["benefit"]: d for d in shipped_answer["decisions"]}["housing_security"]
    assert housing["eligible"] and not shipped["eligible"]  # 24 months of residence: enough only after the edit
    assert housing["parameters"]["min_residence_months"] == {
        "value": 24,
        "assumed": False,
        "source": "西宁市住房保障实施细则 (operator)",
    }


def test_a_narrower_basis_fails_the_basis_condition() -> None:
    text = (POLICY_DIR / "nantong-2020.toml").read_text(encoding="utf-8")
    edited = text.replace('bases = { value = ["employment", "residence", "study"]', 'bases = { value = ["employment"]')
    policy = parse_policy(edited, "edited")
    history = History(MIGRANT).residence("320613", date(2023, 1, 1), basis="study")
    answer = decide(policy, MIGRANT, history.events, date(2024, 6, 30))
    permit = answer["decisions"][0]
    assert permit["benefit"] == "residence_permit" and not permit["eligible"]
    basis = next(r for r in permit["reasons"] if r["condition"] == "basis")
    assert basis["met"] is False and "needs one of employment" in basis["text"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('value = 6, source = "居住证暂行条例 第二条「居住半年以上」"', "value = 6"), "needs the source"),
        (("assumed = true, note = ", "assumed = true, nate = "), "Extra inputs are not permitted"),
        (('region_prefixes = ["3206"]', 'region_prefixes = ["32060"]'), "2, 4 or 6 digits"),
        (('rule = "residence_permit"', 'rule = "settlement"'), "benefits.residence_permit"),
        (('kind = "employment"', 'kind = "lottery"'), "does not match any of the expected tags"),
        (("[benefits.compulsory_education]", "[benefits.other_education]"), "compulsory_education"),
        (('policy = "nantong-2020"', 'policy = "nantong 2020"'), "policy: String should match pattern"),
        (("[benefits.settlement.parameters]", "[benefits.settlement.parameters"), "not valid TOML"),
    ],
)
def test_a_malformed_policy_is_refused_naming_the_problem(change: tuple[str, str], message: str) -> None:
    text = (POLICY_DIR / "nantong-2020.toml").read_text(encoding="utf-8")
    edited = text.replace(change[0], change[1], 1)
    assert edited != text
    with pytest.raises(PolicyError, match=re.escape(message)) as info:
        parse_policy(edited, "nantong-edited.toml")
    assert str(info.value).startswith("nantong-edited.toml: ")


def test_a_copy_declaring_another_policy_is_refused(tmp_path: Path) -> None:
    (tmp_path / "liaoyuan-2015.toml").write_text(
        (POLICY_DIR / "nantong-2020.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(PolicyError, match="declares policy 'nantong-2020', expected 'liaoyuan-2015'"):
        load_policy("liaoyuan-2015", tmp_path)


def test_the_urban_scope_admits_the_citys_own_rural_residents() -> None:
    # Nantong ships the urban scope ((5) 「确保本地和外地农业转移人口适用相同的落户条件」); an operator's copy may
    # narrow it to the whole city.
    edited = (POLICY_DIR / "nantong-2020.toml").read_text(encoding="utf-8")
    line = next(line for line in edited.splitlines() if line.startswith("hukou_outside"))
    text = edited.replace(
        line, 'hukou_outside = { value = "city", assumed = true, note = "An operator\'s narrower reading." }'
    )
    assert edited != text
    local = History(MIGRANT).hukou("320623", date(2000, 1, 1), urban=False).residence("320613", date(2024, 1, 1))
    townsman = History(MIGRANT).hukou("320612", date(2000, 1, 1), urban=True).residence("320613", date(2024, 1, 1))
    as_of = date(2024, 6, 30)

    def settlement(policy_text: str, history: History) -> dict[str, Any]:
        answer = decide(parse_policy(policy_text, "nantong"), MIGRANT, history.events, as_of)
        return next(d for d in answer["decisions"] if d["benefit"] == "settlement")

    assert not settlement(text, local)["eligible"]  # the narrow reading: hukou already in Nantong
    urban = settlement(edited, local)
    assert urban["eligible"]
    # After the plan's window in force and that the applicant is alive, the origin condition:
    assert urban["reasons"][2]["condition"] == "hukou_not_urban_in_city" and urban["reasons"][2]["met"] is True
    assert not settlement(edited, townsman)["eligible"]  # already registered at an urban address


def test_every_shipped_plan_states_when_it_applies() -> None:
    for policy_id in POLICY_IDS:
        window = load_policy(policy_id).in_force
        assert window is not None, policy_id
        # A bound the plan does not state is marked assumed, with a note; one it states names its words.
        assert window.start.assumed or window.start.source, policy_id
        assert window.end is not None or window.open_note, policy_id

"""Eligibility (不见面办理): the five cities' settlement and residence-permit rules as data, decided and explained.

* ``policy`` — the policy files (``policies/<policy>.toml``) validated into typed rules, every parameter with
  its source or marked ``assumed``;
* ``facts`` — ``derive_facts``: a resident's facts on ``as_of``, each with the ``event_id``s behind it;
* ``evaluator`` — ``evaluate``: every benefit of a policy decided for those facts, each condition explained and
  each decision naming its clause.

Pure: nothing here reads the clock or a database (loading the policy files is the only I/O).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date
from typing import Any

from events.envelope import Event, Payload
from projections.eligibility.evaluator import Decision, Reason, RouteOutcome, evaluate, evaluate_benefit
from projections.eligibility.facts import CityScope, Facts, ParentInput, RelativeInput, derive_facts, events_until
from projections.eligibility.policy import (
    POLICY_IDS,
    Policy,
    PolicyError,
    UnknownPolicyError,
    load_policy,
    parse_policy,
    policy_ids,
)

__all__ = [
    "POLICY_IDS",
    "CityScope",
    "Decision",
    "Facts",
    "ParentInput",
    "Policy",
    "PolicyError",
    "Reason",
    "RelativeInput",
    "RouteOutcome",
    "UnknownPolicyError",
    "decide",
    "derive_facts",
    "evaluate",
    "evaluate_benefit",
    "events_until",
    "load_policy",
    "parse_policy",
    "policy_ids",
    "scope_of",
]


def scope_of(policy: Policy) -> CityScope:
    """The city a policy speaks of, for ``derive_facts``."""
    return CityScope(name=policy.city, prefixes=policy.region_prefixes)


def decide(
    policy: Policy,
    citizen_id: str,
    events: Iterable[Event[Payload]],
    as_of: date,
    parents: Iterable[ParentInput] = (),
    aliases: Collection[str] = (),
    relatives: Iterable[RelativeInput] = (),
) -> dict[str, Any]:
    """The answer of CONTRACT §7 for one citizen: ``{policy, as_of, citizen_id, decisions: [...]}``.

    ``events`` are the citizen's archived events (any department order, each department's in log order);
    only those that had happened by ``as_of`` count. ``aliases``: the person's other numbers (§12), their
    events in ``events`` in the person's order (``derive_facts``). ``relatives``: the spouse, children and
    parents the register links, for the family routes.
    """
    facts = derive_facts(citizen_id, events, as_of, scope_of(policy), parents, aliases, relatives)
    answer: dict[str, Any] = {
        "policy": policy.policy,
        "as_of": as_of.isoformat(),
        "citizen_id": citizen_id,
        "city": policy.city,
        "document": policy.document,
        "seed": policy.seed,
    }
    if policy.in_force is not None:
        answer["in_force"] = policy.in_force.to_json(policy.policy) | {"on_as_of": policy.in_force.covers(as_of)}
    answer["decisions"] = [d.to_json() for d in evaluate(policy, facts)]
    return answer

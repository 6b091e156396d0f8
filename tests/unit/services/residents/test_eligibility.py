"""Who an eligibility answer shows, for the access log (CONTRACT §11): every relative it names, wherever."""

from __future__ import annotations

from datetime import date

from events.citizen_id import make_citizen_id
from projections.eligibility import RelativeInput
from services.residents.eligibility import consulted
from tests.support.eligibility import MIGRANT

SPOUSE = make_citizen_id("130102", date(1989, 4, 12), 57)
CHILD = make_citizen_id("130102", date(2012, 1, 5), 13)
MOTHER = make_citizen_id("130102", date(1962, 1, 20), 64)


def _relative(citizen_id: str, relation: str = "spouse") -> RelativeInput:
    return RelativeInput(relation, citizen_id, "household", (), ())  # type: ignore[arg-type]


def test_a_relative_named_only_in_a_reason_is_logged() -> None:
    body = {"decisions": [{"reasons": [{"text": f"spouse {SPOUSE} has a hukou in the city"}], "facts": {}}]}
    assert consulted(body, MIGRANT, [MOTHER], [_relative(SPOUSE), _relative(CHILD, "child")]) == (
        MIGRANT,
        MOTHER,
        SPOUSE,
    )


def test_a_relative_the_answer_does_not_show_is_not_logged() -> None:
    body = {"decisions": [{"reasons": [{"text": "no spouse linked"}], "facts": {"relatives": []}}]}
    assert consulted(body, MIGRANT, [], [_relative(SPOUSE)]) == (MIGRANT,)


def test_a_parent_who_is_also_a_relative_is_logged_once() -> None:
    body = {"decisions": [{"facts": {"relatives": [{"citizen_id": MOTHER}]}}]}
    assert consulted(body, MIGRANT, [MOTHER], [_relative(MOTHER, "parent")]) == (MIGRANT, MOTHER)


def test_a_number_inside_a_longer_one_is_not_that_person() -> None:
    legacy = CHILD[:6] + CHILD[8:17]  # a 15-digit number, which stands inside nothing shown here
    longer = "9" + legacy + "12"
    body = {"decisions": [{"reasons": [{"text": f"someone {longer}"}], "facts": {}}]}
    assert consulted(body, MIGRANT, [], [_relative(legacy)]) == (MIGRANT,)

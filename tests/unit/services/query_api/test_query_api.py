"""The query API's pure parts: grant rules, the access-log body, statistics arithmetic, partial rendering, the
authenticator's decisions and the error shape — no database, no network.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from starlette.requests import Request

from events import parse_event
from events.examples import CITIZENS, example_events
from projections.resident import fold, state_to_json
from projections.resident.batch import SectionRow
from projections.resident.dates import CHINA_TZ
from projections.resident.reads import StoredResident
from projections.resident.render import VIEW_SECTIONS, restrict_view
from services.access_log.database import AccessEntry, canonical_body
from services.grants import (
    GRANTABLE_SECTIONS,
    Grant,
    GrantError,
    end_of_day,
    new_token,
    parse_codes,
    parse_purpose_sections,
    per_purpose,
    validate_name,
    validate_purposes,
    validate_sections,
)
from services.query_api.app import create_app
from services.query_api.auth import Authenticator, refuse_grant
from services.query_api.errors import ApiError
from services.query_api.single_read import SECTION_SOURCES, render_sections, sources_of
from services.query_api.statistics import Figures, Measure, validate_region_prefix
from services.residents.views import render_stored
from services.settings import Settings
from services.tokens import token_hash

# --- grants --------------------------------------------------------------------------------------------------------


def test_grantable_sections_are_the_views_and_four_more() -> None:
    assert (*VIEW_SECTIONS, "events", "access_log", "eligibility", "statistics") == GRANTABLE_SECTIONS


def test_codes_are_split_trimmed_and_deduplicated() -> None:
    assert parse_codes(" identity, hukou,,identity ,") == ["identity", "hukou"]
    assert parse_codes("") == []


def test_grant_rules_name_what_is_wrong() -> None:
    assert validate_sections(["hukou", "identity", "hukou"]) == ["hukou", "identity"]
    with pytest.raises(GrantError, match=r"unknown section bogus; grantable sections are identity, hukou"):
        validate_sections(["identity", "bogus"])
    with pytest.raises(GrantError, match="at least one section"):
        validate_sections([])
    assert validate_purposes(["school_enrolment"]) == ["school_enrolment"]
    with pytest.raises(GrantError, match="lower-case snake case"):
        validate_purposes(["School Enrolment"])
    with pytest.raises(GrantError, match="at least one purpose"):
        validate_purposes([])
    assert validate_name("school-bureau.cd_01") == "school-bureau.cd_01"
    for bad in ("", "-x", "a b", "x" * 65, "名字"):
        with pytest.raises(GrantError, match="consumer name"):
            validate_name(bad)


def test_tokens_are_prefixed_random_and_stored_as_sha256() -> None:
    a, b = new_token(), new_token()
    assert a.startswith("rk_c_") and a != b and len(a) > 40
    assert token_hash(a) == hashlib.sha256(a.encode()).digest()


def test_a_date_expiry_lasts_through_that_day_in_china() -> None:
    assert end_of_day(date(2026, 12, 31)) == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)


def _grant(**changes: Any) -> Grant:
    base: dict[str, Any] = {
        "name": "school",
        "purpose_sections": {"school_enrolment": frozenset({"identity", "hukou"})},
        "expires_at": None,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "revoked_at": None,
    }
    return Grant(**{**base, **changes})


def test_grant_status_and_refusals() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert _grant().status(now) == "active" and refuse_grant(_grant(), now) is None
    expired = _grant(expires_at=now)
    assert expired.status(now) == "expired"
    refusal = refuse_grant(expired, now)
    assert refusal is not None and (refusal.status, refusal.code) == (401, "token_expired")
    revoked = _grant(revoked_at=now - timedelta(days=1), expires_at=now - timedelta(days=2))
    assert revoked.status(now) == "revoked"
    refusal = refuse_grant(revoked, now)
    assert refusal is not None and refusal.code == "token_revoked"


# --- the authenticator ---------------------------------------------------------------------------------------------


def _request(hdrs: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in hdrs.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": b""})


class Lookups:
    """The authenticator's ``lookup``: a table of tokens, counting the calls that reached it."""

    def __init__(self, grants: dict[str, Grant]) -> None:
        self.grants = grants
        self.calls = 0

    async def __call__(self, token: str) -> Grant | None:
        self.calls += 1
        return self.grants.get(token)


async def _refusal(auth: Authenticator, hdrs: dict[str, str]) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        await auth.authenticate(_request(hdrs))
    return caught.value.status, caught.value.code


async def test_the_authenticator_decides_in_the_contracts_order() -> None:
    lookups = Lookups({"good": _grant()})
    auth = Authenticator(lookups, ttl=60)
    assert await _refusal(auth, {}) == (401, "missing_token")
    assert await _refusal(auth, {"Authorization": "Basic good"}) == (401, "missing_token")
    assert await _refusal(auth, {"Authorization": "Bearer "}) == (401, "missing_token")
    assert await _refusal(auth, {"Authorization": "Bearer bad", "X-Purpose": "x"}) == (401, "unknown_token")
    assert await _refusal(auth, {"Authorization": "Bearer good"}) == (400, "purpose_required")
    assert await _refusal(auth, {"Authorization": "bearer good", "X-Purpose": "spying"}) == (
        403,
        "purpose_not_granted",
    )
    caller = await auth.authenticate(_request({"Authorization": "Bearer good", "X-Purpose": "school_enrolment"}))
    assert caller.consumer == "school" and caller.purpose == "school_enrolment"
    caller.require("hukou")
    with pytest.raises(ApiError, match="section 'health'"):
        caller.require("health")
    # Known grants are cached, unknown tokens never are: "bad" was looked up once, "good" once for three requests.
    assert lookups.calls == 2
    await _refusal(auth, {"Authorization": "Bearer bad", "X-Purpose": "x"})
    assert lookups.calls == 3


async def test_the_cache_expires_and_forgets() -> None:
    lookups = Lookups({"good": _grant()})
    auth = Authenticator(lookups, ttl=0.0)
    ok = {"Authorization": "Bearer good", "X-Purpose": "school_enrolment"}
    await auth.authenticate(_request(ok))
    await auth.authenticate(_request(ok))
    assert lookups.calls == 2
    lookups.grants["good"] = _grant(revoked_at=datetime.now(UTC))
    assert await _refusal(auth, ok) == (401, "token_revoked")
    remembered = Lookups({"good": _grant()})
    cached = Authenticator(remembered, ttl=60)
    await cached.authenticate(_request(ok))
    await cached.authenticate(_request(ok))
    assert remembered.calls == 1
    cached.forget("school")  # the grant's name: its token is looked up again on the next request
    await cached.authenticate(_request(ok))
    assert remembered.calls == 2


# --- the access-log body -------------------------------------------------------------------------------------------


def test_the_access_log_body_is_canonical_json() -> None:
    entry = AccessEntry(
        request_id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        consumer="学校",
        purpose="school_enrolment",
        sections=("identity", "hukou"),
        endpoint="resident",
        accessed_at=datetime(2026, 1, 2, 19, 4, 5, 6, tzinfo=CHINA_TZ),  # written in UTC
    )
    body = canonical_body(entry, CITIZENS["child"])
    assert body == (
        b'{"accessed_at":"2026-01-02T11:04:05.000006Z","citizen_id":"' + CITIZENS["child"].encode() + b'",'
        b'"consumer":"\xe5\xad\xa6\xe6\xa0\xa1","endpoint":"resident","purpose":"school_enrolment",'
        b'"request_id":"12345678-1234-5678-1234-567812345678","sections":["identity","hukou"]}'
    )
    assert orjson.loads(body)["consumer"] == "学校"


# --- statistics arithmetic -------------------------------------------------------------------------------------------


def test_region_prefixes_are_2_4_or_6_digits() -> None:
    for ok in ("51", "5101", "510107"):
        assert validate_region_prefix(ok) == ok
    for bad in ("5", "510", "51010", "5101071", "51a1", "", "５１"):
        with pytest.raises(ValueError, match="2, 4 or 6 digits"):
            validate_region_prefix(bad)


def test_shares_and_the_urbanisation_gap() -> None:
    assert Measure(0, 0).urban_share is None
    figures = Figures(registered=Measure(4, 1), resident=Measure(5, 4), permit_holders=Measure(2, 1))
    assert figures.urbanisation_gap_points == pytest.approx(55.0)
    assert (figures + figures).registered == Measure(8, 2)
    assert Figures().urbanisation_gap_points is None
    assert figures.to_json()["resident"] == {"population": 5, "urban": 4, "urban_share": 0.8}


# --- partial rendering ---------------------------------------------------------------------------------------------


def _stored(citizen_id: str) -> StoredResident:
    events = sorted(
        (parse_event(e) for e in example_events().values() if e["citizen_id"] == citizen_id),
        key=lambda e: e.occurred_at,
    )
    by_department: dict[str, list[Any]] = defaultdict(list)
    for e in events:
        by_department[e.department].append(e)
    states = fold(events)
    sections = {
        dept: SectionRow(
            citizen_id,
            dept,
            orjson.dumps(state_to_json(state)).decode(),
            len(by_department[dept]),
            max(e.occurred_at for e in by_department[dept]),
            len(by_department[dept]),
            bytes(32),
        )
        for dept, state in states.items()
    }
    return StoredResident(citizen_id, sections, None, None, [], None, [])


def test_every_view_section_names_its_sources() -> None:
    assert tuple(SECTION_SOURCES) == VIEW_SECTIONS
    assert sources_of(["meta", "family"]) == frozenset()
    assert sources_of(["identity"]) == {"public_security", "health"}
    assert len(sources_of(["flags"])) == 4


@given(
    citizen=st.sampled_from(sorted(CITIZENS.values())),
    sections=st.lists(st.sampled_from(VIEW_SECTIONS), min_size=1, unique=True),
    as_of=st.dates(min_value=date(2010, 1, 1), max_value=date(2030, 12, 31)),
)
def test_rendering_only_the_needed_states_gives_the_same_sections(
    citizen: str, sections: list[str], as_of: date
) -> None:
    stored = _stored(citizen)
    full = restrict_view(render_stored(stored, as_of), sections)  # a flag only for a reader of all it speaks of
    assert render_sections(stored, as_of, sections) == full  # only those sections, rendered alike
    assert list(full) == ["citizen_id", *[s for s in VIEW_SECTIONS if s in sections]]


# --- the error shape without a database -------------------------------------------------------------------------------


async def test_errors_have_the_contracts_shape_before_any_database_access() -> None:
    settings = Settings(database_url=SecretStr("postgresql+asyncpg://nobody:nothing@127.0.0.1:9/none"))
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        missing = await client.get(f"/v1/residents/{CITIZENS['child']}")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "missing_token"
        assert set(missing.json()["error"]) == {"code", "message", "details"}
        nowhere = await client.get("/v1/nowhere")
        assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"
        wrong = await client.put("/healthz")
        assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        spec = (await client.get("/openapi.json")).json()
        assert "/v1/statistics/population" in spec["paths"]
        assert "/v1/residents/{citizen_id}/eligibility" in spec["paths"]  # served since the policies landed


def test_a_grant_reads_for_a_purpose_only_that_purpose_s_sections() -> None:
    grant = _grant(
        purpose_sections={
            "school_enrolment": frozenset({"identity", "education"}),
            "statistics": frozenset({"statistics"}),
        }
    )
    assert grant.purposes == {"school_enrolment", "statistics"}
    assert grant.sections == {"identity", "education", "statistics"}
    assert grant.sections_for("statistics") == {"statistics"}
    assert grant.sections_for("marketing") == frozenset()


def test_purpose_specs_parse_and_name_what_is_wrong() -> None:
    assert parse_purpose_sections(["school_enrolment=identity, education", "statistics=statistics"]) == {
        "school_enrolment": ["identity", "education"],
        "statistics": ["statistics"],
    }
    assert parse_purpose_sections(["audit=events", "audit=access_log"]) == {"audit": ["events", "access_log"]}
    assert per_purpose(["identity", "hukou"], ["a", "b"]) == {"a": ["identity", "hukou"], "b": ["identity", "hukou"]}
    for spec, message in (
        ("statistics", "PURPOSE=SECTION"),
        ("Stats=statistics", "snake case"),
        ("statistics=", "at least one section"),
        ("statistics=names", "unknown section names"),
    ):
        with pytest.raises(GrantError, match=message):
            parse_purpose_sections([spec])


def test_an_access_log_cursor_round_trips_and_names_no_number() -> None:
    from services.query_api.errors import ApiError
    from services.query_api.person_log import format_cursor, parse_cursor

    numbers = ("510107198502030573", "510107198502020578")
    text = format_cursor({numbers[1]: 4, numbers[0]: 17}, numbers)
    assert text is not None and numbers[0] not in text and numbers[1] not in text
    assert parse_cursor(text, numbers) == {numbers[0]: 17, numbers[1]: 4}
    assert format_cursor(None, numbers) is None
    for bad in ("", "2/", "2/0:0", "2/2:5", "1/0:5", "2/0:5,x", "2/0:²", "２/0:5", "2/0:99999999999"):
        with pytest.raises(ApiError) as caught:
            parse_cursor(bad, numbers)
        assert caught.value.status == 422 and caught.value.code == "invalid_before", bad

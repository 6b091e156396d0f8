"""``renkou resident show ID --as-of D --known-at T``: the bitemporal reconstruction from the archive, end to end.

A curated life with a late-recorded correction and events near midnight (where the China business date and
the UTC date part) pins down both axes; a simulated city checks that "as of today, as known now" is exactly
the stored view.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import asyncpg
import pytest

from events import parse_event
from events.examples import example_events
from services.db.dsn import asyncpg_dsn
from services.residents.bitemporal import TimeSlice, reconstruct
from services.residents.views import load_views
from services.settings import Settings
from tests.support.infra import Endpoints
from tests.support.operations import projected, renkou
from tests.support.projector import AS_OF, publish, running_projector, settings_for, wait_caught_up
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

CITIZEN = "63010219950714123X"  # born 1995-07-14


def _event(event_type: str, occurred_at: str, recorded_at: str, **payload: Any) -> tuple[str, bytes, bytes]:
    """An example event of ``event_type`` about ``CITIZEN`` at the given times, as (department, key, value)."""
    body = dict(example_events()[event_type])
    body.update(
        event_id=str(uuid.uuid4()),
        citizen_id=CITIZEN,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        payload={**body["payload"], **payload},
    )
    body.pop("correlation_id", None)
    value = json.dumps(body, ensure_ascii=False).encode()
    event = parse_event(value)  # the curated life must be valid
    return event.department, CITIZEN.encode(), value


LIFE = [
    _event("hukou.registered", "2015-08-15T10:30:00+08:00", "2015-08-15T12:45:00+08:00"),
    # A name correction that took effect in 2016 but was only recorded in 2020.
    _event("identity.corrected", "2016-01-01T10:00:00+08:00", "2020-06-01T09:00:00+08:00", name="张三丰"),
    # Moved out at 04:00 in China on 1 March 2018 — still 28 February in UTC.
    _event("hukou.moved_out", "2018-03-01T04:00:00+08:00", "2018-03-01T06:00:00+08:00"),
    # Employed from 04:00 in China on 2 March 2019, recorded at that very instant (20:00 UTC on 1 March).
    _event("employment.registered", "2019-03-02T04:00:00+08:00", "2019-03-01T20:00:00+00:00", started_on="2019-03-02"),
]


async def _life(infra: Endpoints, databases: Databases) -> Settings:
    from tests.support.stack import create_namespace

    ns = await create_namespace(infra)
    db = await databases.create()
    await publish(infra.kafka_bootstrap, [(f"{ns}population.{d}.v1", k, v) for d, k, v in LIFE])
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    async with running_projector(settings):
        await wait_caught_up(settings)
    return settings


async def _show(settings: Settings, *flags: str) -> dict[str, Any]:
    result = await renkou(settings, "resident", "show", CITIZEN, *flags)
    assert result.code == 0, result.stderr
    view: dict[str, Any] = json.loads(result.stdout)
    return view


async def test_as_of_and_known_at_select_what_had_happened_and_what_was_recorded(
    infra: Endpoints, databases: Databases
) -> None:
    settings = await _life(infra, databases)

    now = await _show(settings, "--as-of", "2017-12-31")
    assert now["identity"]["name"] == "张三丰", "as known now, the 2016 correction applies to 2017"
    assert now["hukou"]["status"] == "registered"
    assert now["meta"]["as_of"] == "2017-12-31" and "known_at" not in now["meta"]
    assert now["meta"]["event_count"] == 2

    then = await _show(settings, "--as-of", "2017-12-31", "--known-at", "2019-01-01T00:00:00+08:00")
    assert then["identity"]["name"] != "张三丰", "in 2019 the correction had not been recorded yet"
    assert then["meta"]["known_at"] == "2019-01-01T00:00:00+08:00" and then["meta"]["event_count"] == 1

    # known_at is inclusive: the instant of recording counts, a microsecond earlier does not.
    exactly = await _show(settings, "--as-of", "2020-12-31", "--known-at", "2020-06-01T09:00:00+08:00")
    before = await _show(settings, "--as-of", "2020-12-31", "--known-at", "2020-06-01T08:59:59.999999+08:00")
    assert exactly["identity"]["name"] == "张三丰" and before["identity"]["name"] != "张三丰"

    # as_of is a business date in China: the move at 04:00 (+08:00) on 1 March is not on 28 February.
    assert (await _show(settings, "--as-of", "2018-02-28"))["hukou"]["status"] == "registered"
    assert (await _show(settings, "--as-of", "2018-03-01"))["hukou"]["status"] == "moved_out"

    # --known-at alone looks at the business day of that instant: 20:00 UTC on 1 March is 2 March in China,
    # when the employment had started and was recorded.
    known = await _show(settings, "--known-at", "2019-03-01T20:00:00+00:00")
    assert known["meta"]["as_of"] == "2019-03-02"
    assert known["employment"]["status"] == "employed"
    assert known["meta"]["event_counts"] == {"public_security": 2, "social_security": 1}

    # Before anything was recorded, or before anything had happened: the resident did not exist for the system.
    for flags in (("--known-at", "2015-01-01T00:00:00+08:00"), ("--as-of", "2010-01-01")):
        missing = await renkou(settings, "resident", "show", CITIZEN, *flags)
        assert missing.code == 4, missing.stdout
        assert missing.error_lines == [missing.error_lines[0]] and "nothing about" in missing.error_lines[0]

    # Both axes together and the stored view: as of today, as known now, they agree.
    today = await renkou(settings, "resident", "show", CITIZEN)
    stored = json.loads(today.stdout)
    rebuilt = await _show(settings, "--as-of", _today_in_utc())
    rebuilt["meta"].pop("as_of")
    assert rebuilt == stored


def _today_in_utc() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).date().isoformat()


async def test_as_of_after_every_event_equals_the_stored_view_for_every_resident(
    infra: Endpoints, databases: Databases
) -> None:
    from services.simulator import simulate_bytes

    _, db = await projected(infra, databases, list(simulate_bytes(60, seed=41)))
    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        ids = [r["citizen_id"] for r in await conn.fetch("SELECT DISTINCT citizen_id FROM projection.sections")]
        for as_of in (AS_OF, date(2031, 1, 1)):
            stored = await load_views(conn, ids, as_of)
            for cid in ids:
                view = await reconstruct(conn, cid, TimeSlice(as_of))
                assert view is not None
                assert view["meta"].pop("as_of") == as_of.isoformat()
                assert view == stored[cid], cid
        # known_at after every recording changes nothing either.
        latest = await conn.fetchval("SELECT max(recorded_at) FROM projection.event_archive")
        stored = await load_views(conn, ids[:10], AS_OF)
        for cid in ids[:10]:
            view = await reconstruct(conn, cid, TimeSlice(AS_OF, latest))
            assert view is not None
            assert view["meta"].pop("known_at") == latest.isoformat()
            view["meta"].pop("as_of")
            assert view == stored[cid], cid
    finally:
        await conn.close()


async def test_resident_show_rejects_bad_input_with_one_line(infra: Endpoints, databases: Databases) -> None:
    settings = await _life(infra, databases)
    cases = [
        (["123"], 2, "not a valid citizen ID"),
        (["11010519491231002X"], 4, "no resident 11010519491231002X"),
        ([CITIZEN, "--as-of", "2018-02-30"], 2, "is not a date"),
        ([CITIZEN, "--as-of", "yesterday"], 2, "is not a date"),
        ([CITIZEN, "--known-at", "2019-03-01"], 2, "has no UTC offset"),
        ([CITIZEN, "--known-at", "soon"], 2, "is not an RFC 3339 timestamp"),
    ]
    for args, code, message in cases:
        result = await renkou(settings, "resident", "show", *args)
        assert result.code == code, (args, result.stdout, result.stderr)
        assert len(result.error_lines) == 1 and message in result.error_lines[0], (args, result.stderr)

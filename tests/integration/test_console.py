"""The web console over HTTP against a real Kafka and PostgreSQL (CONTRACT §14): logins, CSRF, roles, re-drive,
timeline, grants, the access log, the refused reads, a citizen's OpenID Connect login, and every action recorded.

The browser's view of the same pages is ``test_console_browser.py``.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.db.dsn import asyncpg_dsn
from tests.support.console import account, csrf_of, log_in, running_console
from tests.support.infra import Endpoints
from tests.support.operations import fetch, history, records_for, renkou, topic
from tests.support.projector import publish, running_projector, settings_for, wait_caught_up
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration


def _hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert found is not None, f"no {name} on {page.url}"
    return found.group(1)


async def test_console_staff_and_citizen_over_http(infra: Endpoints, databases: Databases) -> None:
    items = history(8, seed=41)
    ns = await create_namespace(infra)
    db = await databases.create()
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    # One misrouted record (a social-security event on the health topic): a dead letter that a re-drive fixes.
    misrouted = next(i for i in reversed(items) if i[0] == "social_security")
    rest = [i for i in items if i is not misrouted]
    await publish(infra.kafka_bootstrap, [*records_for(ns, rest), (topic(ns, "health"), misrouted[1], misrouted[2])])
    resident = next(i[1].decode() for i in rest if i[0] == "public_security")
    misrouted_id = json.loads(misrouted[2])["event_id"]

    # `renkou operators add` prints the password once and stores only an argon2id hash.
    added = await renkou(settings, "operators", "add", "ops1", "--role", "operator")
    assert added.code == 0, added.stderr
    password = added.stdout.strip()
    assert len(password) >= 20 and "log in at" in added.stderr
    stored = await fetch(db, "SELECT password_hash FROM console_accounts WHERE name = 'ops1'")
    assert stored[0]["password_hash"].startswith("$argon2id$") and password not in stored[0]["password_hash"]
    again = await renkou(settings, "operators", "add", "ops1", "--role", "auditor")
    assert again.code == 2 and "exists already" in again.stderr
    bad_role = await renkou(settings, "operators", "add", "ops2", "--role", "root")
    assert bad_role.code == 2 and "role" in bad_role.stderr
    auditor_password = await account(db, "aud1", "auditor")

    async with running_projector(settings), running_console(settings) as console:
        await wait_caught_up(settings)
        async with httpx.AsyncClient(base_url=console.url, timeout=30) as ops:
            # Not logged in: every staff page sends to the login form.
            first = await ops.get("/dead-letters")
            assert first.status_code == 303 and first.headers["location"].startswith("/login?next=%2Fdead-letters")
            # A POST without the form's CSRF token is refused, logged in or not.
            assert (await ops.post("/login", data={"name": "ops1", "password": password})).status_code == 403
            wrong = await log_in(ops, "ops1", "not the password")
            assert wrong.status_code == 401 and ("Wrong account" in wrong.text or "不正确" in wrong.text)
            ok = await log_in(ops, "ops1", password)
            assert ok.status_code == 303 and ok.headers["location"] == "/"
            cookie = ops.cookies.get("renkou_console")
            assert cookie and "httponly" in ok.headers["set-cookie"].lower()
            assert "samesite=lax" in ok.headers["set-cookie"].lower()

            status = await ops.get("/?lang=en")
            assert status.status_code == 200 and "Total lag" in status.text
            assert f"{ns}population.health.v1" in status.text
            csp = status.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "https://" not in status.text.replace("https://htmx.org", "")  # no asset from elsewhere
            chinese = await ops.get("/?lang=zh")
            assert "总积压" in chinese.text
            htmx = await ops.get("/static/vendor/htmx/htmx.min.js")
            assert htmx.status_code == 200 and "htmx" in htmx.text[:2000]

            letters = await ops.get("/dead-letters?pending=1")
            assert "belongs to social_security" in letters.text
            at = f"{ns}population.health.v1:"
            coordinates = re.search(rf"show\?at=({re.escape(at.replace(':', '%3A'))}[0-9%A]+)", letters.text)
            assert coordinates is not None, letters.text
            raw_at = coordinates.group(1).replace("%3A", ":")
            shown = await ops.get("/dead-letters/show", params={"at": raw_at, "confirm": "1"})
            assert shown.status_code == 200 and 'id="confirm-redrive"' in shown.text
            # The record is a resident's event: looking at it is recorded in their access log.
            subject = json.loads(misrouted[2])["citizen_id"]
            looked = await fetch(
                db,
                "SELECT consumer, purpose FROM access_log WHERE citizen_id = $1 AND endpoint = 'console:dead-letter'",
                subject,
            )
            assert {(r["consumer"], r["purpose"]) for r in looked} == {("operator:ops1", "dead_letter_review")}
            bad_at = await ops.get("/dead-letters/show", params={"at": "no-coordinates"})
            assert bad_at.status_code == 400 and "TOPIC:PARTITION:OFFSET" in bad_at.text

            # An auditor may look, not change: the re-drive is refused (403) and recorded.
            async with httpx.AsyncClient(base_url=console.url, timeout=30) as aud:
                assert (await log_in(aud, "aud1", auditor_password)).status_code == 303
                page = await aud.get("/dead-letters/show", params={"at": raw_at})
                refused = await aud.post("/dead-letters/redrive", data={"csrf": csrf_of(page), "at": raw_at})
                assert refused.status_code == 403
                job = await aud.post("/jobs", data={"csrf": csrf_of(page), "kind": "verify"})
                assert job.status_code == 403

            # Without the session's CSRF token, nothing changes; with it, the operator's re-drive lands once.
            forged = await ops.post("/dead-letters/redrive", data={"csrf": "forged", "at": raw_at})
            assert forged.status_code == 403
            cross = await ops.post(
                "/dead-letters/redrive",
                data={"csrf": csrf_of(shown), "at": raw_at},
                headers={"Origin": "http://evil.example"},
            )
            assert cross.status_code == 403
            redriven = await ops.post("/dead-letters/redrive", data={"csrf": csrf_of(shown), "at": raw_at})
            assert redriven.status_code == 303, redriven.text
            await wait_caught_up(settings)
            after = await ops.get("/dead-letters/show", params={"at": raw_at, "lang": "en"})
            assert 'id="applied"><span class="ok">Applied' in after.text
            archived = await fetch(
                db, "SELECT count(*) AS n FROM projection.event_archive WHERE event_id = $1::uuid", misrouted_id
            )
            assert archived[0]["n"] == 1

            # A resident's timeline: the read is in their access log, the chains are checked.
            # (A POST with the CSRF token: a link cannot make an operator record a read for a purpose it chose.)
            form = await ops.get("/timeline")
            token = csrf_of(form)
            linked = await ops.get("/timeline", params={"citizen_id": resident, "purpose": "court_order"})
            assert linked.status_code == 200 and "Every chain intact" not in linked.text
            bad_id = await ops.post("/timeline", data={"csrf": token, "citizen_id": "12345", "purpose": "audit"})
            assert bad_id.status_code == 400 and "not a valid citizen ID" in bad_id.text
            bad_purpose = await ops.post(
                "/timeline", data={"csrf": token, "citizen_id": resident, "purpose": "no such thing!"}
            )
            assert bad_purpose.status_code == 400
            line = await ops.post("/timeline?lang=en", data={"csrf": token, "citizen_id": resident, "purpose": "audit"})
            assert line.status_code == 200 and "Every chain intact" in line.text and "public_security #1" in line.text
            logged = await fetch(
                db,
                "SELECT consumer, purpose, endpoint FROM access_log WHERE citizen_id = $1 AND endpoint <> "
                "'console:dead-letter'",
                resident,
            )
            assert [dict(r) for r in logged] == [
                {"consumer": "operator:ops1", "purpose": "audit", "endpoint": "console:timeline"}
            ]

            # Grants: added (the token shown once), found by the access-log search, revoked after confirmation.
            grants = await ops.get("/grants")
            added_grant = await ops.post(
                "/grants",
                data={"csrf": csrf_of(grants), "name": "school-7", "purposes": "school_enrollment=identity,hukou"},
            )
            assert added_grant.status_code == 200 and 'id="token"' in added_grant.text
            shown_token = re.search(r'id="token">([^<]+)<', added_grant.text)
            assert shown_token is not None and shown_token.group(1).startswith("rk_c_")
            duplicate = await ops.post(
                "/grants", data={"csrf": csrf_of(grants), "name": "school-7", "purposes": "school_enrollment=identity"}
            )
            assert duplicate.status_code == 409
            malformed = await ops.post(
                "/grants", data={"csrf": csrf_of(grants), "name": "school-8", "purposes": "nonsense"}
            )
            assert malformed.status_code == 400
            confirm = await ops.post("/grants/revoke", data={"csrf": csrf_of(grants), "name": "school-7"})
            assert confirm.status_code == 200 and 'id="confirm-revoke"' in confirm.text
            revoked = await ops.post(
                "/grants/revoke", data={"csrf": csrf_of(grants), "name": "school-7", "confirm": "yes"}
            )
            assert revoked.status_code == 303
            listed = await fetch(db, "SELECT revoked_at FROM consumer_grants WHERE name = 'school-7'")
            assert listed[0]["revoked_at"] is not None

            # The access-log search: each resident it names gets an entry of this read, with the purpose stated.
            page = await ops.get("/access-log")
            search = await ops.post(
                "/access-log",
                data={"csrf": csrf_of(page), "consumer": "operator:ops1", "read_purpose": "audit"},
            )
            assert search.status_code == 200 and resident in search.text
            searched = await fetch(
                db, "SELECT purpose FROM access_log WHERE citizen_id = $1 AND endpoint = 'console:access-log'", resident
            )
            assert [r["purpose"] for r in searched] == ["audit"]
            bad_since = await ops.post(
                "/access-log", data={"csrf": csrf_of(page), "since": "yesterday", "read_purpose": "audit"}
            )
            assert bad_since.status_code == 400 and "since" in bad_since.text
            assert (await ops.get("/refused")).status_code == 200

            # Bad input is a 400 naming it, never a 500 (nor a 503 that blames the database).
            for bad in (
                {"since": "0001-01-01"},
                {"until": "9999-12-31T23:00:00-05:00"},
                {"consumer": "nul\x00byte"},
                {"citizen_id": "x" * 100},
            ):
                answer = await ops.post("/access-log", data={"csrf": csrf_of(page), "read_purpose": "audit", **bad})
                assert answer.status_code == 400, (bad, answer.status_code, answer.text[:300])
            for at in ("t:3000000000:0", "nul\x00:1:1", f"{ns}population.health.v1:0:99999999999999999999"):
                answer = await ops.get("/dead-letters/show", params={"at": at})
                assert answer.status_code in (400, 404), (at, answer.status_code, answer.text[:300])
            far = await ops.post(
                "/grants",
                data={
                    "csrf": csrf_of(grants),
                    "name": "school-9",
                    "purposes": "school_enrollment=identity",
                    "expires": "9999-12-31",
                },
            )
            assert far.status_code == 400
            assert (await ops.get("/refused", params={"consumer": "a\x00b"})).status_code == 400
            assert (await ops.get("/jobs/not-a-number")).status_code == 422
            rebound = await ops.get("/", headers={"Host": "evil.example"})
            assert rebound.status_code == 400  # DNS rebinding: a name the console does not answer to
            # A removed and re-made account (a password reset) ends every session of the old one.
            assert (await renkou(settings, "operators", "remove", "ops1")).code == 0
            assert (await renkou(settings, "operators", "add", "ops1", "--role", "operator")).code == 0
            assert (await ops.get("/grants")).status_code == 303

        # A citizen logs in through the identity provider (OpenID Connect, form_post) and sees who read their data.
        async with httpx.AsyncClient(base_url=console.url, timeout=30) as citizen:
            landing = await citizen.get("/me")
            assert landing.status_code == 200 and 'id="citizen-login"' in landing.text
            start = await citizen.get("/me/login")
            assert start.status_code == 303
            authorize = urlsplit(start.headers["location"])
            params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
            assert authorize.path == "/idp/authorize" and params["response_mode"] == "form_post"
            # The demo provider sends a token only to this console's own callback.
            elsewhere = await citizen.get(authorize.path, params={**params, "redirect_uri": "http://evil.example/cb"})
            assert elsewhere.status_code == 400
            proxied = await citizen.get(authorize.path, params=params, headers={"X-Forwarded-For": "203.0.113.7"})
            assert proxied.status_code == 403  # the stand-in provider answers only a browser on this machine
            idp = await citizen.get(authorize.path, params=params)
            answer = await citizen.post(
                authorize.path,
                data={k: params[k] for k in ("client_id", "redirect_uri", "state", "nonce")} | {"citizen_id": resident},
            )
            assert answer.status_code == 200 and idp.status_code == 200
            id_token, state = _hidden(answer, "id_token"), _hidden(answer, "state")
            forged_state = await citizen.post("/me/callback", data={"id_token": id_token, "state": "other"})
            assert forged_state.status_code == 403
            done = await citizen.post("/me/callback", data={"id_token": id_token, "state": state})
            assert done.status_code == 303 and done.headers["location"] == "/me"
            mine = await citizen.get("/me", params={"lang": "en"})
            assert mine.status_code == 200 and resident in mine.text
            assert "operator:ops1" in mine.text and "console:timeline" in mine.text
            # A citizen's session is no staff session.
            assert (await citizen.get("/grants")).status_code == 303
            # The same token cannot log in another browser: its nonce belongs to the first login.
            async with httpx.AsyncClient(base_url=console.url, timeout=30) as thief:
                await thief.get("/me/login")
                stolen = await thief.post("/me/callback", data={"id_token": id_token, "state": state})
                assert stolen.status_code in (401, 403)

    # Every console action is recorded, refused ones too, and the record cannot be changed.
    actions = await fetch(db, "SELECT actor, role, action, outcome FROM console_actions ORDER BY id")
    seen = {(r["actor"], r["action"], r["outcome"].split(":")[0]) for r in actions}
    assert ("ops1", "login", "refused") in seen and ("ops1", "login", "ok") in seen
    assert ("aud1", "re-drive", "refused") in seen and ("aud1", "verify", "refused") in seen
    assert ("ops1", "re-drive", "ok") in seen and ("ops1", "timeline", "ok") in seen
    assert ("ops1", "grant add", "ok") in seen and ("ops1", "grant revoke", "ok") in seen
    assert ("ops1", "access-log search", "ok") in seen
    assert (f"citizen:{resident}", "citizen login", "ok") in seen
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(db))
    try:
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("UPDATE console_actions SET outcome = 'ok'")
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("TRUNCATE console_actions")
    finally:
        await conn.close()

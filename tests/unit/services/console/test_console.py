"""The console's parts that need no server: sessions, the login throttle, labels, redirects, hosts, job summaries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.console import labels
from services.console.app import allowed_hosts
from services.console.citizen_ids import mask_citizen_ids
from services.console.context import summary
from services.console.pages import residents_named, safe_next
from services.console.sessions import ANONYMOUS_MAX, IDLE_S, LoginThrottle, SessionStore
from services.settings import Settings, project_root

TEMPLATES = project_root() / "services" / "console" / "templates"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_login_replaces_the_session_and_idle_sessions_end() -> None:
    clock = Clock()
    store = SessionStore(clock=clock)
    anonymous = store.new()
    anonymous.lang = "en"
    staff = store.replace(anonymous, "staff", name="ops1", role="operator")
    assert store.get(anonymous.id) is None, "the pre-login ID must not survive the login (fixation)"
    assert staff.id != anonymous.id and staff.csrf != anonymous.csrf and staff.lang == "en"
    assert store.get(staff.id) is staff
    clock.now += IDLE_S + 1
    assert store.get(staff.id) is None


def test_anonymous_sessions_are_capped() -> None:
    store = SessionStore()
    first = store.new()
    for _ in range(ANONYMOUS_MAX):
        store.new()
    assert store.get(first.id) is None and len(store.anonymous) == ANONYMOUS_MAX
    staff = store.new("staff", name="ops1", role="operator")
    store.new()
    assert store.get(staff.id) is staff, "signed-in sessions are never evicted by anonymous ones"


def test_csrf_tokens_are_compared_exactly() -> None:
    session = SessionStore().new()
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None) and not session.csrf_ok("") and not session.csrf_ok(session.csrf[:-1])


def test_the_throttle_locks_after_the_limit_reports_once_and_stays_bounded() -> None:
    throttle = LoginThrottle(limit=3, window_s=60, max_keys=10)
    for t in range(3):
        assert not throttle.locked("ops1", now=float(t))
        throttle.failed("ops1", now=float(t))
    assert throttle.locked("ops1", now=5.0)
    assert throttle.first_report("ops1", now=5.0) and not throttle.first_report("ops1", now=6.0)
    assert not throttle.locked("ops1", now=100.0), "the window passes"
    for n in range(50):
        throttle.failed(f"random-{n}", now=1.0)
    assert len(throttle.failures) <= 10


def test_every_label_has_both_languages_and_every_template_key_exists() -> None:
    for key, (zh, en) in labels.LABELS.items():
        assert zh and en, key
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"t\('([a-z_]+)'\)", template.read_text()))
    assert used - set(labels.LABELS) == set()
    assert labels.choose_language(None, "en-US,en;q=0.9") == "en"
    assert labels.choose_language(None, "zh-CN,en;q=0.5") == "zh"
    assert labels.choose_language(None, None) == "zh"
    assert labels.choose_language("en", "zh-CN") == "en"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/grants", "/grants"),
        ("/timeline?x=1", "/timeline?x=1"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
        ("", "/"),
    ],
)
def test_after_login_only_the_console_itself(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected


def test_the_console_answers_to_its_own_names_only() -> None:
    base = Settings(database_url=SecretStr("postgresql+asyncpg://u:p@127.0.0.1/d"))
    assert "evil.example" not in allowed_hosts(base) and "127.0.0.1" in allowed_hosts(base)
    named = base.model_copy(update={"bind_host": "10.0.0.5", "console_hosts": "console.city.gov.cn"})
    assert {"10.0.0.5", "console.city.gov.cn"} <= set(allowed_hosts(named))
    assert allowed_hosts(base.model_copy(update={"bind_host": "0.0.0.0"})) == ["*"]  # noqa: S104
    assert "[::1]" in allowed_hosts(base.model_copy(update={"bind_host": "::1"}))


def test_a_job_record_keeps_counts_never_a_residents_rows() -> None:
    result = {
        "identical": False,
        "events": 10,
        "tables": [{"table": "sections", "differing": 2}, {"table": "event_archive", "differing": 1}],
        "differences": ["sections 110101199003074514/health: event_count: live 5 ≠ rebuilt 4"],
    }
    brief = summary(result)
    assert brief == {"identical": False, "events": 10, "differing_rows": 3}
    assert summary(None) is None


def test_a_dead_letter_names_every_citizen_its_event_names() -> None:
    child, mother = "110101199003074514", "110105196502114527"
    birth = (
        f'{{"citizen_id": "{child}", "payload": {{"mother_citizen_id": "{mother}", "father_citizen_id": null,'
        ' "region_code": "110105"}}'
    ).encode()
    assert residents_named(child.encode(), birth) == [child, mother]
    assert residents_named(child.encode(), b"not json") == [child]
    assert residents_named(None, b'{"citizen_id": "nonsense"}') == []
    # A malformed record hides nobody: a nested field, a broken document, a checksum that fails next to one that holds.
    nested = f'{{"payload": {{"mother": {{"id": "{mother}"}}}}, "citizen_id": "110101199003074515"'.encode()
    assert residents_named(None, nested) == [mother]


def test_pages_that_list_requests_mask_citizen_ids() -> None:
    assert mask_citizen_ids("GET /v1/residents/110101199003074514") == "GET /v1/residents/110101********4514"
    assert mask_citizen_ids("legacy 110101900307451 and 11010119900307451X") == (
        "legacy 110101******451 and 110101********451X"
    )
    assert mask_citizen_ids("request 3f2a9c1e-0000-4000-8000-123456789012") == (
        "request 3f2a9c1e-0000-4000-8000-123456789012"
    )
    assert mask_citizen_ids(None) == ""


async def test_a_database_that_is_down_is_a_503_page_never_a_500(tmp_path: Path) -> None:
    import httpx

    from services.console.app import create_app
    from tests.support.console import csrf_of

    down = Settings(
        database_url=SecretStr("postgresql+asyncpg://renkou:x@127.0.0.1:1/renkou"),  # nothing listens on port 1
        state_dir=tmp_path,
    )
    app = create_app(down)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            form = await client.get("/login")
            assert form.status_code == 200  # the login form needs no database
            answer = await client.post(
                "/login", data={"csrf": csrf_of(form), "name": "ops1", "password": "whatever-it-is"}
            )
            assert answer.status_code == 503 and "retry" in answer.text.lower(), answer.text[:500]
            assert (await client.get("/readyz")).status_code == 503


async def test_logins_waiting_for_a_password_check_are_bounded() -> None:
    import asyncio

    from services.console.context import MAX_WAITING_LOGINS, HashTurns, LoginsBusyError

    turns = HashTurns()
    release = asyncio.Event()

    async def login() -> None:
        async with turns.one():
            await release.wait()

    first = asyncio.create_task(login())
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(login()) for _ in range(MAX_WAITING_LOGINS)]
    await asyncio.sleep(0)
    assert turns.busy and turns.waiting == MAX_WAITING_LOGINS

    async def one_more() -> None:
        async with turns.one():
            pass

    with pytest.raises(LoginsBusyError):  # at once: waiting for a turn would time out instead
        await asyncio.wait_for(one_more(), 1.0)
    release.set()
    await asyncio.gather(first, *waiting)
    assert turns.waiting == 0 and not turns.busy

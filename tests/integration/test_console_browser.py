"""The console in a real browser (CONTRACT §14): Debian's headless Chromium driven by Selenium through Debian's
ChromeDriver — nothing downloaded — against a real console, projector, Kafka and PostgreSQL.

An operator logs in, sees the lag, re-drives a dead letter and sees it applied, runs a verify and sees its result,
opens a resident's timeline; an auditor's re-drive is refused; a citizen logs in through the identity provider and
sees the operator's read in their access log. Every request the browser made went to 127.0.0.1. A screenshot of
each page is saved under ``$RENKOU_SCREENSHOTS`` (default ``.local/screenshots/console``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from services.settings import project_root
from tests.support.browser import CHROMEDRIVER, CHROMIUM, OFFLINE_FLAGS
from tests.support.console import account, running_console
from tests.support.infra import Endpoints
from tests.support.operations import fetch, history, records_for, topic
from tests.support.projector import publish, running_projector, settings_for, wait_caught_up
from tests.support.stack import Databases, create_namespace

pytestmark = [pytest.mark.integration, pytest.mark.browser]

WAIT_S = 60


def screenshots() -> Path:
    folder = Path(os.environ.get("RENKOU_SCREENSHOTS") or project_root() / ".local" / "screenshots" / "console")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browser(profile: str) -> Any:
    """Headless Chromium as the machine has it, with the flags that keep it off the network on its own."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*OFFLINE_FLAGS, "--window-size=1280,900", "--lang=en-US", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Session:
    """One browser, its screenshots, and every URL it requested."""

    def __init__(self, base: str, name: str) -> None:
        self.base = base
        self.name = name
        self.profile = tempfile.mkdtemp(prefix=f"chromium-{name}-")
        self.driver = browser(self.profile)
        self.requested: list[str] = []

    def go(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = WAIT_S) -> None:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def ready(_: Any) -> bool:
            try:
                return check()
            except WebDriverException:
                return False

        try:
            WebDriverWait(self.driver, timeout, poll_frequency=0.3).until(ready)
        except Exception as exc:
            self.shot(f"failed-{what.replace(' ', '-')}")
            raise AssertionError(
                f"{self.name}: {what} did not happen in {timeout:.0f}s on {self.driver.current_url}"
            ) from exc

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    def shot(self, page: str) -> Path:
        path = screenshots() / f"{self.name}-{page}.png"
        self.driver.save_screenshot(str(path))
        return path

    def log_in(self, name: str, password: str) -> None:
        self.go("/login?lang=en")
        self.find("#name").send_keys(name)
        self.find("#password").send_keys(password)
        self.find("#submit").click()
        self.wait_for("the status page", lambda: self.driver.current_url.rstrip("/") == self.base)

    def collect_requests(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requested.append(message["params"]["request"]["url"])

    def requested_any(self, part: str) -> bool:
        self.collect_requests()
        return any(part in u for u in self.requested)

    def close(self) -> None:
        try:
            self.collect_requests()
        finally:
            self.driver.quit()
            shutil.rmtree(self.profile, ignore_errors=True)


def drive(console: str, operator: tuple[str, str], auditor: tuple[str, str], resident: str) -> list[str]:
    """The whole browser session (blocking: it runs in a thread while the projector runs on the event loop)."""
    requested: list[str] = []
    ops = Session(console, "operator")
    try:
        ops.log_in(*operator)
        # Status: the lag, per partition, refreshing itself (htmx asks for the fragment every few seconds).
        ops.wait_for("the lag", lambda: ops.text("#lag") == "0")
        ops.shot("status")
        ops.wait_for("a status refresh", lambda: ops.requested_any("/status/fragment"))
        # Dead letters: the first one shown, re-driven after confirmation, then applied.
        ops.go("/dead-letters?pending=1")
        ops.shot("dead-letters")
        ops.find("#dead-letters tbody tr a").click()
        ops.wait_for("a dead letter's page", lambda: "belongs to social_security" in ops.text("#reason"))
        ops.find("#redrive").click()
        ops.wait_for("the confirmation", lambda: ops.find("#confirm-redrive").is_displayed())
        ops.shot("dead-letter-confirm")
        ops.find("#confirm-redrive").click()
        ops.wait_for("the re-drive", lambda: ops.text("#redriven-at") != "-")

        def applied() -> bool:
            ops.driver.refresh()
            return "Applied" in ops.text("#applied")

        ops.wait_for("the re-driven event applied", applied)
        ops.shot("dead-letter-applied")
        # Verify: rebuilt into the shadow, compared with the live view, the result shown when it is done.
        ops.go("/jobs")
        ops.find("#start-verify").click()
        ops.wait_for("the verify's result", lambda: ops.find("#job").get_attribute("data-state") != "running", 240)
        assert ops.find("#job").get_attribute("data-state") == "succeeded", ops.text("#job")
        assert "Identical" in ops.text("#verify-result")
        ops.shot("verify")
        # A resident's timeline, with the chain check.
        ops.go("/timeline")
        ops.find("#citizen_id").send_keys(resident)
        ops.find("#show").click()
        ops.wait_for("the timeline", lambda: "Every chain intact" in ops.text("#chain-check"))
        assert "public_security #1" in ops.text("#timeline")
        ops.shot("timeline")
        ops.go("/access-log")
        ops.find("#al-consumer").send_keys("operator:" + operator[0])
        ops.find("#search").click()
        ops.wait_for("the access-log search", lambda: resident in ops.text("#access-log"))
        ops.shot("access-log")
        for page in ("grants", "refused", "actions"):
            ops.go("/" + page)
            ops.shot(page)
        ops.go("/?lang=zh")
        ops.wait_for("the Chinese labels", lambda: "总积压" in ops.driver.page_source)
        ops.shot("status-zh")
    finally:
        ops.close()
        requested += ops.requested

    aud = Session(console, "auditor")
    try:
        aud.log_in(*auditor)
        aud.go("/dead-letters?pending=1")
        aud.find("#dead-letters tbody tr a").click()
        aud.find("#redrive").click()
        aud.find("#confirm-redrive").click()
        aud.wait_for("the refusal", lambda: "may not do this" in aud.text("#error"))
        aud.shot("refused-redrive")
    finally:
        aud.close()
        requested += aud.requested

    citizen = Session(console, "citizen")
    try:
        citizen.go("/me?lang=en")
        citizen.find("#citizen-login").click()
        citizen.wait_for("the identity provider", lambda: "/idp/authorize" in citizen.driver.current_url)
        citizen.shot("identity-provider")
        citizen.find("#idp-citizen-id").send_keys(resident)
        citizen.find("#idp-submit").click()
        citizen.wait_for("the citizen's page", lambda: urlsplit(citizen.driver.current_url).path == "/me")
        citizen.wait_for("the operator's read", lambda: "operator:" + operator[0] in citizen.text("#my-access-log"))
        assert "console:timeline" in citizen.text("#my-access-log")
        citizen.shot("me")
    finally:
        citizen.close()
        requested += citizen.requested
    return requested


async def test_the_console_in_chromium(infra: Endpoints, databases: Databases) -> None:
    if not await asyncio.to_thread(lambda: Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian's chromium and chromium-driver are needed (infra/bootstrap.sh installs them)")
    items = history(8, seed=43)
    ns = await create_namespace(infra)
    db = await databases.create()
    settings = settings_for(infra.kafka_bootstrap, db, ns)
    # Two misrouted records: one for the operator to re-drive, one for the auditor to be refused.
    misrouted = [i for i in items if i[0] == "social_security"][-2:]
    rest = [i for i in items if i not in misrouted]
    await publish(
        infra.kafka_bootstrap, [*records_for(ns, rest), *((topic(ns, "health"), k, v) for _, k, v in misrouted)]
    )
    resident = next(i[1].decode() for i in rest if i[0] == "public_security")
    operator = ("ops1", await account(db, "ops1", "operator"))
    auditor = ("aud1", await account(db, "aud1", "auditor"))

    async with running_projector(settings), running_console(settings) as console:
        await wait_caught_up(settings)
        requested = await asyncio.to_thread(drive, console.url, operator, auditor, resident)

    assert requested, "the browser's requests were not seen"
    # What went over the network (the browser's own chrome:// pages and data: URLs do not).
    network = [u for u in requested if urlsplit(u).scheme in ("http", "https", "ws", "wss", "ftp")]
    assert any("/static/vendor/htmx/htmx.min.js" in u for u in network)
    elsewhere = sorted({u for u in network if urlsplit(u).hostname != "127.0.0.1"})
    assert elsewhere == [], f"requests left 127.0.0.1: {elsewhere}"
    for page in (
        "status",
        "dead-letters",
        "dead-letter-applied",
        "verify",
        "timeline",
        "grants",
        "access-log",
        "refused",
        "actions",
    ):
        assert (screenshots() / f"operator-{page}.png").stat().st_size > 5_000, page
    assert (screenshots() / "citizen-me.png").exists() and (screenshots() / "auditor-refused-redrive.png").exists()
    # What the browser did is in the console's record, and the citizen's log names the operator's read.
    actions = await fetch(db, "SELECT actor, action, outcome FROM console_actions ORDER BY id")
    done = [(r["actor"], r["action"], r["outcome"].split(":")[0]) for r in actions]
    for expected in (
        ("ops1", "re-drive", "ok"),
        ("ops1", "verify", "started"),
        ("ops1", "verify finished", "succeeded"),
        ("ops1", "timeline", "ok"),
        ("aud1", "re-drive", "refused"),
        (f"citizen:{resident}", "citizen login", "ok"),
    ):
        assert expected in done, (expected, done)

"""The README's examples run as written, against the demo city.

Every ```bash block of the README is an example a newcomer runs against ``make run``'s stack; this test runs each
one, unchanged but for the query API's address, with ``bash -euo pipefail`` and a ``curl`` that fails on any 4xx
or 5xx, against the test stack holding the demo city's residents the README names (the city ``make run``
simulates: 10,000 residents over 20 years, seed 0 — the same bytes on every machine). ```sh blocks are commands
the test does not run (``make run`` itself, a restart of the stack, placeholders such as ``[--json]``); ```console
and plain blocks are transcripts.

It also holds the README to the demo city: every citizen ID and household number in a ```bash block is one the
demo city has, but the one the batch example names as not found.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.settings import project_root
from services.simulator import simulate_bytes
from tests.support.infra import Endpoints
from tests.support.operations import cli_env
from tests.support.projector import settings_for
from tests.support.query_api import project, running_query_api
from tests.support.stack import Databases, create_namespace

pytestmark = pytest.mark.integration

README = project_root() / "README.md"
DEMO_CITY: dict[str, Any] = {"residents": 10_000, "years": 20, "seed": 0}  # what `make run` simulates
NOT_IN_THE_CITY = {"11010519491231002X"}  # the batch example's not_found
QUERY_API = "http://127.0.0.1:8000"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_NUMBERS = re.compile(r"\b[0-9]{17}[0-9X]\b|\b[0-9]{6}-[0-9]{8}\b")
# curl as the examples use it, but failing (exit 22) on an answer of 400 or more, its body shown.
_STRICT_CURL = 'curl() { command curl --fail-with-body "$@"; echo; }\n'


def examples() -> list[tuple[int, str]]:
    """The README's ```bash blocks: (line, text)."""
    text = README.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in _BLOCK.finditer(text) if m.group(1) == "bash"]


@functools.cache
def demo_city() -> tuple[tuple[str, bytes], ...]:
    """The demo city's records, (citizen ID, value) in the order the city recorded them (simulated once)."""
    return tuple((key.decode(), value) for _, key, value in simulate_bytes(**DEMO_CITY))


def demo_city_events(numbers: set[str]) -> list[dict[str, Any]]:
    """The demo city's events of everyone ``numbers`` names, and of everyone whose events name them (household
    members, parents, children), in the order the city recorded them."""
    records = demo_city()
    wanted = {n.encode() for n in numbers}
    people = {key for key, value in records if key in numbers or any(n in value for n in wanted)}
    return [orjson.loads(value) for key, value in records if key in people]


def test_the_readme_has_examples_and_names_only_the_demo_citys_people() -> None:
    blocks = examples()
    assert len(blocks) >= 5, "the README's runnable examples are its ```bash blocks"
    named = {n for _, block in blocks for n in _NUMBERS.findall(block)} - NOT_IN_THE_CITY
    in_city = {key for key, _ in demo_city()}
    households = {n for n in named if "-" in n}
    assert named - households <= in_city
    assert all(demo_city_events({h}) for h in households)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """Where the examples run: a folder of their own (a report lands there), with the checkout's ``.venv``."""
    with tempfile.TemporaryDirectory(prefix="renkou-readme-") as folder:
        (Path(folder) / ".venv").symlink_to(project_root() / ".venv")
        yield Path(folder)


async def test_every_readme_example_runs_as_written(infra: Endpoints, databases: Databases, workdir: Path) -> None:
    blocks = examples()
    named = {n for _, block in blocks for n in _NUMBERS.findall(block)}
    database_url = await databases.create()
    assert await project(database_url, demo_city_events(named)) > 0
    settings = settings_for(infra.kafka_bootstrap, database_url, await create_namespace(infra))
    env = cli_env(settings)
    session = "".join(f"echo '>>> README.md line {line}'\n{block}\n" for line, block in blocks)
    if not infra.secured:  # a broker without principals (testcontainers' plain one) has no users to add
        session = re.sub(r"^.*renkou kafka users.*$", "", session, flags=re.MULTILINE)
    added = re.findall(r"kafka users add (\S+)", session)  # removed afterwards: the test broker outlives the test
    async with running_query_api(database_url) as api:
        try:
            # One shell, as a reader types the examples one after the other (TOKEN and H carry over).
            proc = await asyncio.create_subprocess_exec(
                "bash",
                "-euo",
                "pipefail",
                "-c",
                _STRICT_CURL + session.replace(QUERY_API, api.url),
                cwd=workdir,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out = (await asyncio.wait_for(proc.communicate(), 600))[0].decode()
            where = re.findall(r">>> (README.md line \d+)", out)[-1:] or ["README.md"]
            assert proc.returncode == 0, f"the example at {where[0]} failed ({proc.returncode}):\n{out[-3000:]}"
        finally:
            for name in added:
                await (
                    await asyncio.create_subprocess_exec(
                        os.path.join(workdir, ".venv/bin/renkou"),
                        *("kafka", "users", "remove", name),
                        env=env,
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                ).wait()
    assert out.count(">>> README.md line") == len(blocks)

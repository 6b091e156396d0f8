"""Every operator command gives one clear line and a non-zero exit on bad input: unknown IDs and coordinates,
malformed times and names, and no stack running at all.
"""

from __future__ import annotations

import asyncio

import pytest

from services.operations.schemas import DEFAULT_SHADOW
from services.settings import Settings
from tests.support.infra import Endpoints
from tests.support.operations import Result, history, projected, renkou
from tests.support.stack import Databases

pytestmark = pytest.mark.integration

UNKNOWN = "11010519491231002X"  # a valid citizen ID nobody wrote about


async def _all(
    settings: Settings | None, cases: list[tuple[list[str], int, str]], env: dict[str, str] | None = None
) -> None:
    results: list[Result] = await asyncio.gather(*[renkou(settings, *args, env=env) for args, _, _ in cases])
    for (args, code, message), result in zip(cases, results, strict=True):
        assert result.code == code, (args, result.code, result.stdout, result.stderr)
        assert len(result.error_lines) == 1, (args, result.stderr)
        line = result.error_lines[0]
        assert line.startswith("error: ") and message in line, (args, line)


async def test_bad_input_gives_one_line_and_a_non_zero_exit(infra: Endpoints, databases: Databases) -> None:
    settings, _ = await projected(infra, databases, history(5, seed=51))
    ns = settings.topic_namespace
    await _all(
        settings,
        [
            (["audit", "timeline", UNKNOWN], 4, f"no archived events for {UNKNOWN}"),
            (["audit", "timeline", "12345"], 2, "not a valid citizen ID"),
            (["audit", "verify", UNKNOWN], 4, "no archived events and no access-log entries"),
            (["audit", "verify", "1101051949123100"], 2, "not a valid citizen ID"),
            (["audit", "verify", "--schema", "Robert'); DROP"], 2, "cannot name a projection schema"),
            (["dlq", "show", "nonsense"], 2, "is not TOPIC:PARTITION:OFFSET"),
            (["dlq", "show", f"{ns}population.health.v1:x:1"], 2, "must be whole numbers"),
            (["dlq", "show", f"{ns}population.health.v1:0:999"], 4, "no dead letter at"),
            (["dlq", "redrive", f"{ns}population.health.v1:0:999"], 4, "no dead letter at"),
            (
                ["dlq", "redrive", f"{ns}population.health.v1:0:1", "--value-file", "/nonexistent/fix.json"],
                2,
                "cannot read /nonexistent/fix.json",
            ),
            (["swap"], 1, f"no shadow schema {DEFAULT_SHADOW}"),
            (["replay", "--shadow", "projection"], 2, "is the live schema"),
            (["verify", "--shadow", "pg_catalog"], 2, "cannot name a projection schema"),
            (["drop-schema", "projection", "--yes"], 2, "refusing to drop projection"),
            (["drop-schema", "public", "--yes"], 2, "cannot name a projection schema"),
            (["drop-schema", "nothing_here", "--yes"], 4, "no schema nothing_here"),
            (["drop-schema", "projection_old_1"], 2, "needs --yes"),
        ],
    )
    # A namespace whose topics do not exist.
    await _all(
        settings,
        [
            (["status"], 4, "topic nowhere.population.public_security.v1 does not exist"),
            (["replay"], 4, "does not exist"),
        ],
        env={"RENKOU_TOPIC_NAMESPACE": "nowhere."},
    )


async def test_every_command_says_when_no_stack_is_running() -> None:
    down = {"RENKOU_KAFKA_BOOTSTRAP": "127.0.0.1:9", "RENKOU_DATABASE_URL": "postgresql+asyncpg://x:y@127.0.0.1:9/z"}
    postgres = "cannot reach PostgreSQL at 127.0.0.1:9/z"
    kafka = "cannot reach Kafka at 127.0.0.1:9"
    await _all(
        None,
        [
            (["status"], 3, kafka),
            (["replay"], 3, postgres),
            (["verify"], 3, postgres),
            (["swap"], 3, postgres),
            (["audit", "verify"], 3, postgres),
            (["audit", "timeline", UNKNOWN], 3, postgres),
            (["dlq", "list"], 3, postgres),
            (["dlq", "redrive", "t:0:1"], 3, postgres),
            (["drop-schema", "projection_old_1", "--yes"], 3, postgres),
            (["resident", "show", UNKNOWN], 3, "cannot reach PostgreSQL"),
            (["resident", "show", UNKNOWN, "--as-of", "2020-01-01"], 3, "cannot reach PostgreSQL"),
        ],
        env=down,
    )

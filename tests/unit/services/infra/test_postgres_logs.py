"""A PostgreSQL server of the local stack that does not come up is reported with the end of its logs."""

from __future__ import annotations

from pathlib import Path

from services.infra.ports import StackLayout
from services.infra.postgres import PostgresStandby


def _standby(tmp_path: Path) -> PostgresStandby:
    layout = StackLayout(tmp_path, 1, 2, 15999, "renkou", "x", "renkou", pg_standby=True)
    return PostgresStandby(layout)


def test_the_tail_of_each_log_is_given_with_its_path(tmp_path: Path) -> None:
    standby = _standby(tmp_path)
    standby.log_dir.mkdir(parents=True)
    (standby.log_dir / "startup.log").write_text("".join(f"line {n}\n" for n in range(30)))
    (standby.log_dir / "postgresql.log").write_text('FATAL:  could not bind IPv4 address "127.0.0.1"\n')
    tail = standby.log_tail(lines=5)
    assert f"--- {standby.log_dir / 'startup.log'} (last 5 lines) ---" in tail
    assert "line 25" in tail and "line 29" in tail and "line 24" not in tail
    assert "FATAL:  could not bind" in tail


def test_no_logs_no_tail(tmp_path: Path) -> None:
    assert _standby(tmp_path).log_tail() == ""

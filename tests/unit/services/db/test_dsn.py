"""SQLAlchemy URLs become the DSNs asyncpg connects with."""

from __future__ import annotations

import pytest

from services.db.dsn import asyncpg_dsn


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+asyncpg://u:p@127.0.0.1:5432/renkou", "postgresql://u:p@127.0.0.1:5432/renkou"),
        ("postgresql+psycopg2://u:p@db/x?sslmode=require", "postgresql://u:p@db/x?sslmode=require"),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
        ("postgres://u@db/x", "postgres://u@db/x"),
        # a "+" after the scheme (in a password) is not a driver suffix
        ("postgresql://u:a+b@db/x", "postgresql://u:a+b@db/x"),
    ],
)
def test_the_driver_suffix_goes_and_nothing_else(url: str, expected: str) -> None:
    assert asyncpg_dsn(url) == expected

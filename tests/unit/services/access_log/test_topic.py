"""The access-log topic's records (``services.access_log.topic``) and the settings that choose that path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from events.examples import CITIZENS
from services.access_log.database import AccessEntry, canonical_body
from services.access_log.topic import entry_of
from services.settings import Settings

MOTHER = CITIZENS["mother"]


def _entry(citizen_id: str) -> tuple[bytes, bytes]:
    entry = AccessEntry(uuid.uuid4(), "standby-reader", "audit", ("identity",), "resident", datetime.now(UTC))
    return citizen_id.encode(), canonical_body(entry, citizen_id)


def test_entry_of_names_what_is_wrong() -> None:
    key, value = _entry(MOTHER)
    entry, citizen = entry_of(key, value)
    assert citizen == MOTHER and entry.consumer == "standby-reader"
    for bad_key, bad_value, says in [
        (key, None, "no value"),
        (key, b"[1]", "not a JSON object"),
        (key, b'{"citizen_id": "x"}', "not an access-log entry"),
        (key, value.replace(b"Z", b""), "offset"),
        (key, value.replace(b'"request_id":"', b'"request_id":1,"x":"'), "request_id"),
        (key, value.replace(MOTHER.encode(), b"51" * 50_000), "length must be 18"),
        (b"x", value.replace(b'"accessed_at":"', b'"accessed_at":"0001-01-01T00:00:00+01:00","y":"'), "entry"),
    ]:
        with pytest.raises(ValueError, match=says):
            entry_of(bad_key, bad_value)


def test_settings_name_reads_and_the_access_log_path() -> None:
    settings = Settings(access_log="kafka", read_database_url=SecretStr("postgresql+asyncpg://u@standby:5432/renkou"))
    env = settings.environment()
    assert env["RENKOU_ACCESS_LOG"] == "kafka"
    assert env["RENKOU_READ_DATABASE_URL"].endswith("@standby:5432/renkou")

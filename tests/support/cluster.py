"""A three-broker Kafka cluster of its own for a test or a benchmark: its own ports and folder, the session's
principals and passwords (so services whose state folder is the session's sign in to either)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from services.infra.ports import StackLayout, port_open
from services.kafka.auth import secrets_dir
from services.settings import project_root

BROKERS = 3


def free_base(start: int) -> int:
    """A port P ≥ ``start`` with P..P+5 free: three brokers' client and controller ports."""
    for base in range(start, start + 900, 10):
        if not any(port_open(p) for p in range(base, base + 2 * BROKERS)):
            return base
    raise RuntimeError(f"no six free ports between {start} and {start + 900}")


def cluster_layout(session_state: Path, label: str, first_port: int) -> StackLayout:
    """The layout of a new cluster under ``.local/<label>-<random>``, with ``session_state``'s Kafka secrets."""
    state = project_root() / ".local" / f"{label}-{uuid.uuid4().hex[:6]}"
    shutil.copytree(secrets_dir(session_state), secrets_dir(state))
    base = free_base(first_port)
    return StackLayout(
        state_dir=state,
        kafka_port=base,
        controller_port=base + 1,
        pg_port=1,
        pg_user="unused",
        pg_password="unused",
        pg_database="unused",
        kafka_brokers=BROKERS,
    )

"""Ports for the servers tests and benchmarks start: free to listen on, and outside the range outgoing connections
take theirs from."""

from __future__ import annotations

import socket
from pathlib import Path

from services.infra.ports import free_port


def _ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_consecutive_ports_below_the_ephemeral_range_that_can_be_listened_on() -> None:
    for count in (1, 2, 3):
        first = free_port(count)
        assert first >= 1024 and first + count <= _ephemeral_low()
        for port in range(first, first + count):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))
                sock.listen()

"""The database URL as asyncpg takes it.

Settings hold SQLAlchemy URLs (``postgresql+asyncpg://…``); the code that talks to asyncpg directly — COPY,
LISTEN, the operator commands, the outbox relay — connects with the same URL minus the driver suffix.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["asyncpg_dsn"]


def asyncpg_dsn(url: str) -> str:
    """``url`` without SQLAlchemy's ``+driver`` (``postgresql+asyncpg://`` → ``postgresql://``), its hosts in the
    form asyncpg reads.

    Several servers (a primary and its standby, CONTRACT §13) are named the way SQLAlchemy's asyncpg dialect
    takes them, ``…@/db?host=a:5433&host=b:5434&target_session_attrs=read-write``; asyncpg itself wants them
    in the authority, ``…@a:5433,b:5434/db?target_session_attrs=read-write``, and gets them so.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if "+" in scheme:
        scheme = scheme.split("+", 1)[0]
    parts = urlsplit(f"{scheme}://{rest}")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    hosts = [value for key, value in pairs if key == "host"]
    if len(hosts) < 2 or parts.hostname:
        return f"{scheme}://{rest}"  # one server (a socket folder in ``host=`` included): as libpq reads it
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + ",".join(hosts)
    query = urlencode([(key, value) for key, value in pairs if key != "host"])
    return urlunsplit(parts._replace(netloc=netloc, query=query))

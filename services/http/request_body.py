"""Request bodies read with a cap: a body larger than the endpoint needs is refused before it is read.

A declared ``Content-Length`` over the cap is refused at once, without reading a byte; a body without one
(``Transfer-Encoding: chunked``) or that lies about it is read chunk by chunk and refused as soon as it passes the
cap, so that no more than the cap (plus one chunk) is ever held. Endpoints call ``read_body`` only after the
caller was authenticated: an unauthenticated request is refused without its body being read at all.
"""

from __future__ import annotations

from starlette.requests import Request

__all__ = ["BodyTooLargeError", "read_body"]


class BodyTooLargeError(Exception):
    """The request's body is larger than ``limit`` bytes (each service answers it 413 in its error shape)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body exceeds {_size(limit)}")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """The body of ``request``; ``BodyTooLargeError`` as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _size(limit: int) -> str:
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    if limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"

"""Bearer tokens, the rules every renkou token follows: department tokens (``rk_d_``, the gateway) and consumer
tokens (``rk_c_``, the query API) are 32 random bytes, URL-safe base64 after their prefix, shown once and stored
only as their SHA-256 digest; a request carries one as ``Authorization: Bearer <token>``."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["bearer_of", "new_token", "token_hash"]


def new_token(prefix: str) -> str:
    """A fresh token with ``prefix``: 32 random bytes, URL-safe base64."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What is stored and looked up for ``token``: its SHA-256 digest."""
    return hashlib.sha256(token.encode()).digest()


def bearer_of(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case), or ``None``."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None

"""Checking a citizen's OpenID Connect ID token (a JWT) with PyJWT: issuer, audience, expiry, signature.

The provider's public keys come from ``RENKOU_CITIZEN_OIDC_JWKS``: a URL (fetched with PyJWT's
``PyJWKClient``) or a file. A token names its key by ``kid``; an unknown ``kid`` makes the verifier read the key
set again (the provider rotated its keys), at most once every ``REFRESH_S`` seconds so that tokens with made-up
key IDs cannot make it fetch without end. Only asymmetric algorithms are accepted, and only the one the key
itself is for: a token cannot choose ``none`` or an HMAC keyed with the public key.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from events.citizen_id import CitizenIdError, normalize_citizen_id

ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"})
REFRESH_S = 30.0
LEEWAY_S = 30


class CitizenAuthError(Exception):
    """The token does not prove who the citizen is; ``str(error)`` says why (safe to show the caller)."""


@dataclass(frozen=True)
class CitizenIdentity:
    citizen_id: str
    subject: str
    issuer: str
    expires_at: int
    nonce: str | None = None  # an OpenID Connect login's nonce (a browser login checks it; a bearer token has none)


class CitizenTokenVerifier:
    """Verifies ID tokens from one provider; share one per process (it caches the provider's keys)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: str,
        claim: str = "citizen_id",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.claim = claim
        self.clock = clock
        """Seconds on a monotonic clock: when the key set was read, and whether ``REFRESH_S`` have passed since."""
        self._keys: dict[str, PyJWK] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> CitizenIdentity:
        """The citizen the token proves, or ``CitizenAuthError``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise CitizenAuthError(f"not a JWT: {exc}") from exc
        kid, algorithm = header.get("kid"), header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise CitizenAuthError(f"algorithm {algorithm!r} is not accepted (asymmetric signatures only)")
        key = await self._key(kid)
        if key.algorithm_name != algorithm:
            raise CitizenAuthError(f"key {kid!r} is for {key.algorithm_name}, the token says {algorithm}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise CitizenAuthError("the token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise CitizenAuthError(f"invalid token: {exc}") from exc
        raw = claims.get(self.claim)
        if not isinstance(raw, str):
            raise CitizenAuthError(f"the token has no {self.claim!r} claim")
        try:
            citizen_id = normalize_citizen_id(raw)
        except CitizenIdError as exc:
            raise CitizenAuthError(f"the {self.claim!r} claim is not a citizen ID: {'; '.join(exc.problems)}") from exc
        nonce = claims.get("nonce")
        return CitizenIdentity(
            citizen_id,
            str(claims["sub"]),
            str(claims["iss"]),
            int(claims["exp"]),
            nonce if isinstance(nonce, str) else None,
        )

    async def _key(self, kid: object) -> PyJWK:
        if not isinstance(kid, str) or not kid:
            raise CitizenAuthError("the token names no key (kid)")
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            if kid not in self._keys and self.clock() - self._loaded_at >= REFRESH_S:
                self._keys = await asyncio.to_thread(self._load)
                self._loaded_at = self.clock()
        key = self._keys.get(kid)
        if key is None:
            raise CitizenAuthError(f"no key {kid!r} in the identity provider's key set")
        return key

    def _load(self) -> dict[str, PyJWK]:
        try:
            if self.jwks.startswith(("https://", "http://")):
                keys = jwt.PyJWKClient(self.jwks, cache_jwk_set=False, timeout=5).get_jwk_set().keys
            else:
                keys = PyJWKSet.from_json(Path(self.jwks).read_text()).keys
        except (OSError, ValueError, jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            raise CitizenAuthError(f"the identity provider's keys cannot be read ({type(exc).__name__})") from exc
        return {k.key_id: k for k in keys if k.key_id and k.algorithm_name in ALGORITHMS}


def read_jwks(path: Path) -> dict[str, Any]:
    """A JWKS document from a file (empty key set when there is none)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"keys": []}
    return data if isinstance(data, dict) else {"keys": []}

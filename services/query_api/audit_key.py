"""``GET /v1/audit/public-key``: the key that verifies the signed audit anchors (CONTRACT §10), no token needed.

Anyone holding the anchors (``population.audit_anchor.v1``) checks them with this key; it is read from the
public key file beside the projector's signing key (the private key never reaches the query API's memory unless
only the private file exists, as in a stack where the public file was removed).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from services.anchor.keys import AnchorKeyError, trusted_public_key
from services.anchor.record import key_id, public_jwk, public_pem
from services.anchor.topic import anchor_topic
from services.query_api.errors import ApiError
from services.settings import Settings

__all__ = ["PublicKeyResponse", "audit_key_router"]


class PublicKeyResponse(BaseModel):
    """The anchors' public key, as PEM and as a JWK, with the key id the anchors name."""

    key_id: str = Field(description="The key's JWK thumbprint (RFC 7638); every anchor names it in `key_id`.")
    algorithm: Literal["Ed25519"]
    pem: str = Field(description="SubjectPublicKeyInfo, PEM.")
    jwk: dict[str, str] = Field(description="The same key as a JWK (RFC 8037: kty OKP, crv Ed25519).")
    anchor_topic: str = Field(description="Where the signed anchors are published.")


def audit_key_router(settings: Settings) -> APIRouter:
    """The route, reading the key file named by ``settings`` (at each request: a rotated key is served at once)."""
    router = APIRouter(prefix="/v1", tags=["audit"])

    @router.get(
        "/audit/public-key",
        response_model=PublicKeyResponse,
        summary="The public key of the signed audit anchors",
        responses={503: {"description": "No anchor key is configured on this stack."}},
    )
    async def public_key() -> Response:
        try:
            key, _ = trusted_public_key(settings)
        except AnchorKeyError as exc:
            raise ApiError(503, "anchor_key_unavailable", "the audit anchor key is not available", str(exc)) from exc
        body = PublicKeyResponse(
            key_id=key_id(key),
            algorithm="Ed25519",
            pem=public_pem(key),
            jwk=public_jwk(key),
            anchor_topic=anchor_topic(settings.topic_namespace),
        )
        return Response(body.model_dump_json(), media_type="application/json")

    return router

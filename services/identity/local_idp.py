"""A local identity provider for demos and tests: ES256 keys under the state folder, ID tokens on request.

``renkou up`` makes the first key (``ensure_keys``); ``renkou citizens token ID`` signs an ID token for a citizen
(``issue``); ``renkou citizens rotate-key`` adds a new signing key and keeps the older ones in the published key
set, so tokens already issued stay valid until they expire. The private keys stay in
``<state>/secrets/citizen-idp`` (0600); the public key set is ``<state>/citizen-idp/jwks.json``, the default of
``RENKOU_CITIZEN_OIDC_JWKS``. A city replaces all of this with its own provider by setting the three
``RENKOU_CITIZEN_OIDC_*`` variables.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from services.identity.oidc import read_jwks
from services.kafka.auth import write_private

LOCAL_ISSUER = "urn:renkou:local-idp"
LOCAL_AUDIENCE = "renkou"
ALGORITHM = "ES256"
KEEP_KEYS = 3  # the signing key and the two before it stay published


def private_dir(state_dir: Path) -> Path:
    return state_dir / "secrets" / "citizen-idp"


def jwks_path(state_dir: Path) -> Path:
    return state_dir / "citizen-idp" / "jwks.json"


def _signing_kid(state_dir: Path) -> str | None:
    try:
        return (private_dir(state_dir) / "current").read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_keys(state_dir: Path) -> bool:
    """Make the first signing key unless there is one; return whether one was made."""
    if _signing_kid(state_dir) is not None:
        return False
    rotate_key(state_dir)
    return True


def rotate_key(state_dir: Path) -> str:
    """A new signing key, published beside the previous ones (at most ``KEEP_KEYS``); returns its key ID."""
    key = ec.generate_private_key(ec.SECP256R1())
    kid = uuid.uuid4().hex
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    folder = private_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    write_private(folder / f"{kid}.pem", pem)
    public: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    keys = [public, *read_jwks(jwks_path(state_dir))["keys"]][:KEEP_KEYS]
    path = jwks_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"keys": keys}, indent=2) + "\n")
    write_private(folder / "current", kid + "\n")
    return kid


def issue(
    state_dir: Path,
    citizen_id: str,
    *,
    minutes: int = 60,
    issuer: str = LOCAL_ISSUER,
    audience: str = LOCAL_AUDIENCE,
    claim: str = "citizen_id",
    nonce: str | None = None,
) -> str:
    """An ID token for ``citizen_id`` signed with the current local key (valid ``minutes``; with the ``nonce`` of
    the browser login it answers, when there is one)."""
    kid = _signing_kid(state_dir)
    if kid is None:
        raise FileNotFoundError(f"no local identity provider keys under {private_dir(state_dir)}: run `renkou up`")
    key = serialization.load_pem_private_key((private_dir(state_dir) / f"{kid}.pem").read_bytes(), password=None)
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": f"local:{uuid.uuid5(uuid.NAMESPACE_OID, citizen_id).hex}",
        "iat": now,
        "exp": now + minutes * 60,
        claim: citizen_id,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})  # type: ignore[arg-type]

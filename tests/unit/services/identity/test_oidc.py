"""Citizens' ID tokens (CONTRACT §11): the verifier accepts the provider's tokens and nothing else."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from services.identity import local_idp
from services.identity.oidc import REFRESH_S, CitizenAuthError, CitizenTokenVerifier

CITIZEN = "11010519491231002X"


def _verifier(state: Path, **overrides: Any) -> CitizenTokenVerifier:
    options = {
        "issuer": local_idp.LOCAL_ISSUER,
        "audience": local_idp.LOCAL_AUDIENCE,
        "jwks": str(local_idp.jwks_path(state)),
    } | overrides
    return CitizenTokenVerifier(**options)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    assert local_idp.ensure_keys(tmp_path)
    assert not local_idp.ensure_keys(tmp_path)  # once
    return tmp_path


async def test_a_token_of_the_provider_names_its_citizen(state: Path) -> None:
    identity = await _verifier(state).verify(local_idp.issue(state, CITIZEN))
    assert identity.citizen_id == CITIZEN and identity.issuer == local_idp.LOCAL_ISSUER
    # Lower-case x normalised as everywhere else.
    assert (await _verifier(state).verify(local_idp.issue(state, CITIZEN.lower()))).citizen_id == CITIZEN


async def test_the_private_key_is_kept_private(state: Path) -> None:
    for path in local_idp.private_dir(state).iterdir():
        assert path.stat().st_mode & 0o077 == 0, path


async def test_expired_tokens_are_refused(state: Path) -> None:
    token = local_idp.issue(state, CITIZEN, minutes=-5)
    with pytest.raises(CitizenAuthError, match="expired"):
        await _verifier(state).verify(token)


async def test_a_token_signed_by_another_key_is_refused(state: Path) -> None:
    kid = json.loads(local_idp.jwks_path(state).read_text())["keys"][0]["kid"]
    other = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    claims = {"iss": local_idp.LOCAL_ISSUER, "aud": "renkou", "sub": "x", "iat": now, "exp": now + 60}
    forged = jwt.encode({**claims, "citizen_id": CITIZEN}, other, algorithm="ES256", headers={"kid": kid})
    with pytest.raises(CitizenAuthError, match="invalid token"):
        await _verifier(state).verify(forged)
    unknown = jwt.encode({**claims, "citizen_id": CITIZEN}, other, algorithm="ES256", headers={"kid": "nope"})
    with pytest.raises(CitizenAuthError, match="no key"):
        await _verifier(state).verify(unknown)


async def test_no_algorithm_of_the_token_s_choosing(state: Path) -> None:
    jwk = json.loads(local_idp.jwks_path(state).read_text())["keys"][0]
    now = int(time.time())
    claims = {"iss": local_idp.LOCAL_ISSUER, "aud": "renkou", "sub": "x", "iat": now, "exp": now + 60}
    unsigned = jwt.encode({**claims, "citizen_id": CITIZEN}, "", algorithm="none", headers={"kid": jwk["kid"]})
    with pytest.raises(CitizenAuthError, match="not accepted"):
        await _verifier(state).verify(unsigned)
    # An HMAC "signed" with something the attacker knows (the public key set is public) must not pass.
    hmac = jwt.encode(
        {**claims, "citizen_id": CITIZEN}, b"k" * 32 + jwk["x"].encode(), algorithm="HS256", headers={"kid": jwk["kid"]}
    )
    with pytest.raises(CitizenAuthError, match="not accepted"):
        await _verifier(state).verify(hmac)


async def test_issuer_audience_and_claim_are_checked(state: Path) -> None:
    token = local_idp.issue(state, CITIZEN)
    with pytest.raises(CitizenAuthError, match="invalid token"):
        await _verifier(state, issuer="https://idp.example.gov.cn").verify(token)
    with pytest.raises(CitizenAuthError, match="invalid token"):
        await _verifier(state, audience="another-app").verify(token)
    with pytest.raises(CitizenAuthError, match="no 'resident_no' claim"):
        await CitizenTokenVerifier(
            issuer=local_idp.LOCAL_ISSUER,
            audience=local_idp.LOCAL_AUDIENCE,
            jwks=str(local_idp.jwks_path(state)),
            claim="resident_no",
        ).verify(token)
    bad = local_idp.issue(state, "110105194912310021")
    with pytest.raises(CitizenAuthError, match="not a citizen ID"):
        await _verifier(state).verify(bad)


async def test_key_rotation_keeps_issued_tokens_valid_and_is_picked_up(state: Path) -> None:
    now = [1000.0]
    verifier = _verifier(state, clock=lambda: now[0])
    before = local_idp.issue(state, CITIZEN)
    assert (await verifier.verify(before)).citizen_id == CITIZEN
    local_idp.rotate_key(state)
    after = local_idp.issue(state, CITIZEN)
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    # The verifier has not seen the new key yet; within REFRESH_S of its last read it does not read the set again.
    with pytest.raises(CitizenAuthError, match="no key"):
        await verifier.verify(after)
    now[0] += REFRESH_S
    assert (await verifier.verify(after)).citizen_id == CITIZEN
    assert (await verifier.verify(before)).citizen_id == CITIZEN


async def test_a_header_of_the_wrong_types_is_refused_not_a_crash(state: Path) -> None:
    import base64

    def part(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    for header in ({"alg": {}, "kid": "x"}, {"alg": ["ES256"], "kid": "x"}, {"alg": "ES256", "kid": {}}):
        token = f"{part(header)}.{part({'sub': 'x'})}.c2ln"
        with pytest.raises(CitizenAuthError):
            await _verifier(state).verify(token)

"""The audit anchor's format, digests, signature and key file; the builder's rule for moving an anchored head."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import SecretStr

from services.anchor.builder import Change, judge, read_changes
from services.anchor.keys import (
    AnchorKeyError,
    anchor_key_path,
    ensure_anchor_key,
    load_public_key,
    public_key_path,
    trusted_public_key,
)
from services.anchor.record import (
    BUCKETS,
    AnchorFormatError,
    ChainHead,
    bucket_digest,
    bucket_digest_of_leaves,
    bucket_digests,
    bucket_of,
    empty_digests,
    empty_leaf_digests,
    key_id,
    leaf_digest,
    leaf_digests,
    leaf_of,
    leaves_of,
    parse_anchor,
    public_jwk,
    raw_public_key,
)
from services.settings import Settings
from tests.support.anchors import CITIZEN_A, CITIZEN_B, LINKS, sample_anchor

A, B = CITIZEN_A, CITIZEN_B
H1, H2, H3 = LINKS


# --- digests ---------------------------------------------------------------------------------------------------
def test_a_citizens_leaf_is_the_first_two_bytes_of_the_sha256_of_their_id_and_its_bucket_the_first() -> None:
    digest = hashlib.sha256(A.encode()).digest()
    assert leaf_of(A) == int.from_bytes(digest[:2], "big") and bucket_of(A) == digest[0] == leaf_of(A) // 256
    assert leaf_of(A) in leaves_of(bucket_of(A))
    assert {bucket_of(f"{i:018d}") for i in range(5000)} == set(range(BUCKETS))


def test_entries_carry_lengths_so_that_no_two_chains_read_alike() -> None:
    assert ChainHead("ab", "c", 1, H1).entry() != ChainHead("a", "bc", 1, H1).entry()
    with pytest.raises(ValueError, match="not a chain head"):
        ChainHead(A, "health", 1, b"short").entry()


def test_a_leaf_digest_does_not_depend_on_the_order_given_and_changes_with_any_head_or_position() -> None:
    leaf = leaf_of(A)
    mine = [ChainHead(A, "health", 3, H1), ChainHead(A, "education", 1, H2)]
    assert leaf_digest("archive", leaf, mine) == leaf_digest("archive", leaf, list(reversed(mine)))
    assert leaf_digest("archive", leaf, mine) != leaf_digest("access_log", leaf, mine)  # the log is part of it
    assert leaf_digest("archive", leaf, ()) == empty_leaf_digests("archive")[leaf]
    for other in ([replace(mine[0], seq=4), mine[1]], [replace(mine[0], head=H3), mine[1]], mine[1:]):
        assert leaf_digest("archive", leaf, other) != leaf_digest("archive", leaf, mine)


def test_a_bucket_digest_covers_its_256_leaf_digests_and_nothing_else() -> None:
    heads = [ChainHead(A, "health", 3, H1), ChainHead(A, "education", 1, H2), ChainHead(B, "health", 9, H3)]
    digests = bucket_digests("archive", heads)
    assert len(digests) == BUCKETS
    leaves = leaf_digests("archive", heads)
    assert set(leaves) == {leaf_of(A), leaf_of(B)}
    b = bucket_of(A)
    expected = [leaves.get(leaf) or leaf_digest("archive", leaf, ()) for leaf in leaves_of(b)]
    assert digests[b] == bucket_digest_of_leaves("archive", b, expected) == bucket_digest("archive", b, leaves)
    untouched = set(range(BUCKETS)) - {bucket_of(A), bucket_of(B)}
    assert all(digests[i] == empty_digests("archive")[i] for i in untouched)
    moved = bucket_digests("archive", [replace(heads[0], seq=4), *heads[1:]])
    assert [i for i in range(BUCKETS) if moved[i] != digests[i]] == [b]


# --- the record, signed -------------------------------------------------------------------------------------------
def test_a_signed_anchor_reads_back_equal_and_verifies_with_its_key() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sample_anchor().sign(key)
    raw = signed.to_bytes()
    data = json.loads(raw)
    assert data["format"] == "renkou.audit_anchor/1" and data["key_id"] == key_id(key.public_key())
    assert data["algorithm"] == "Ed25519" and data["buckets"] == 256 and data["seq"] == 7
    assert len(base64.b64decode(data["logs"]["archive"]["digests"])) == 256 * 32
    back = parse_anchor(raw)
    assert back.signature_problem(key.public_key()) is None
    assert back.to_bytes() == raw and back.digest() == signed.digest()
    assert back.anchor.logs == signed.anchor.logs and back.anchor.held == signed.anchor.held
    assert back.anchor.checkpoint_map() == {("population.health.v1", 0): 120, ("population.health.v1", 1): 80}
    assert back.anchor.anchored_at == datetime(2026, 12, 6, 1, 30, tzinfo=UTC)


def test_an_altered_anchor_does_not_verify() -> None:
    key = Ed25519PrivateKey.generate()
    data = json.loads(sample_anchor().sign(key).to_bytes())
    data["logs"]["access_log"]["links"] -= 1  # as if an access-log entry had never been anchored
    altered = parse_anchor(json.dumps(data).encode())
    problem = altered.signature_problem(key.public_key())
    assert problem is not None and "altered or forged" in problem


def test_an_anchor_signed_by_another_key_is_named_with_both_key_ids() -> None:
    ours, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged = parse_anchor(sample_anchor().sign(theirs).to_bytes())
    problem = forged.signature_problem(ours.public_key())
    assert problem == (f"signed by key {key_id(theirs.public_key())}, not the trusted key {key_id(ours.public_key())}")
    # ... and naming our key id does not help a forger.
    data = json.loads(forged.to_bytes())
    data["key_id"] = key_id(ours.public_key())
    problem = parse_anchor(json.dumps(data).encode()).signature_problem(ours.public_key())
    assert problem is not None and "altered or forged" in problem


def test_an_unknown_field_is_kept_and_covered_by_the_signature() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sample_anchor(extra={"note": "added by a later format"}).sign(key)
    back = parse_anchor(signed.to_bytes())
    assert back.anchor.extra == {"note": "added by a later format"}
    assert back.signature_problem(key.public_key()) is None
    data = json.loads(signed.to_bytes())
    data["note"] = "changed"
    assert parse_anchor(json.dumps(data)).signature_problem(key.public_key()) is not None


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d.update(format="other/1"), "format is 'other/1'"),
        (lambda d: d.update(signature="%%%"), "signature is not base64"),
        (lambda d: d.update(seq=0), "seq must be a whole number"),
        (lambda d: d["logs"]["archive"].update(root="00" * 32), "root is not the root of its bucket digests"),
        (lambda d: d["logs"]["archive"].update(digests="AAAA"), "holds 3 bytes"),
        (lambda d: d["logs"].pop("access_log"), "logs.access_log is not an object"),
        (lambda d: d.update(buckets=16), "over 256 buckets of 256 leaves"),
        (lambda d: d.pop("leaves_per_bucket"), "over 256 buckets of 256 leaves"),
        (lambda d: d.pop("checkpoints"), "KeyError"),
    ],
)
def test_a_record_that_is_not_an_anchor_is_refused_with_what_is_wrong(mangle: object, message: str) -> None:
    data = json.loads(sample_anchor().sign(Ed25519PrivateKey.generate()).to_bytes())
    mangle(data)  # type: ignore[operator]
    with pytest.raises(AnchorFormatError, match=message):
        parse_anchor(json.dumps(data).encode())


def test_garbage_is_not_ansample_anchor() -> None:
    for raw in (b"\xff\xfe", b"[1, 2]", b"null"):
        with pytest.raises(AnchorFormatError):
            parse_anchor(raw)


# --- keys ----------------------------------------------------------------------------------------------------------
def test_the_key_id_is_the_jwk_thumbprint_of_rfc_8037() -> None:
    # RFC 8037, appendix A.3: the thumbprint of its example Ed25519 public key.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "="))
    assert key_id(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    jwk = public_jwk(public)
    assert jwk["x"] == x and jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["kid"] == key_id(public)


def _settings(tmp_path: Path, key_file: Path | None = None) -> Settings:
    return Settings(
        state_dir=tmp_path / "stack",
        database_url=SecretStr("postgresql://x@127.0.0.1:1/x"),
        audit_anchor_key_file=key_file,
    )


def test_the_key_is_created_once_private_0600_with_its_public_half_beside_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = anchor_key_path(settings)
    assert path == tmp_path / "stack" / "secrets" / "audit-anchor.ed25519.pem"
    key = ensure_anchor_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert public_key_path(path).name == "audit-anchor.ed25519.pub.pem"
    again = ensure_anchor_key(path)
    assert raw_public_key(again.public_key()) == raw_public_key(key.public_key())  # never replaced
    trusted, source = trusted_public_key(settings)
    assert source == public_key_path(path) and raw_public_key(trusted) == raw_public_key(key.public_key())
    assert raw_public_key(load_public_key(path)) == raw_public_key(key.public_key())  # a private PEM works too
    assert not list(path.parent.glob(".*.tmp"))


def test_the_key_path_can_be_overridden_and_a_missing_or_wrong_key_is_named(tmp_path: Path) -> None:
    elsewhere = tmp_path / "keys" / "anchor.pem"
    settings = _settings(tmp_path, elsewhere)
    assert anchor_key_path(settings) == elsewhere
    with pytest.raises(AnchorKeyError, match="no anchor key at"):
        trusted_public_key(settings)
    elsewhere.parent.mkdir()
    elsewhere.write_text("not a key")
    with pytest.raises(AnchorKeyError, match="not an unencrypted PEM private key"):
        ensure_anchor_key(elsewhere)


# --- the builder's rule ------------------------------------------------------------------------------------------
def _change(
    seq: int | None,
    head: bytes | None,
    old_seq: int | None,
    old_head: bytes | None,
    at_old: bytes | None,
    at_new: bytes | None,
) -> Change:
    return Change(A, "health", seq, head, old_seq, old_head, at_old, at_new)


def test_a_head_is_anchored_only_where_it_extends_the_anchored_one() -> None:
    # A new chain, and a chain that grew from its anchored head: anchored.
    assert judge(_change(2, H2, None, None, None, H2)) is None
    assert judge(_change(5, H2, 3, H1, H1, H2)) is None
    # Rewound, gone, rewritten (hashes recomputed: the anchored row now holds another link), or a head that is
    # not the link of its row: held, with what was found.
    assert judge(_change(2, H2, 3, H1, H3, H2)) == "rewound: its head is at #2, the anchor has #3"
    assert judge(_change(None, None, 3, H1, None, None)) == "its head is gone (anchored at #3)"
    assert judge(_change(5, H2, 3, H1, None, H2)) == "row #3, the anchored head, is gone"
    assert judge(_change(5, H2, 3, H1, H3, H2)) == "row #3 no longer holds the anchored link: rewritten"
    assert judge(_change(3, H2, 3, H1, H2, H2)) == "row #3 no longer holds the anchored link: rewritten"
    assert judge(_change(5, H2, 3, H1, H1, H3)) == "its stored head is not the link of row #5"


# --- the query API's public key ---------------------------------------------------------------------------------
async def _get(settings: Settings, path: str) -> httpx.Response:
    from services.query_api.app import create_app

    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.get(path)


async def test_the_query_api_serves_the_anchor_public_key_without_a_token(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(update={"topic_namespace": "t1."})
    missing = await _get(settings, "/v1/audit/public-key")
    assert missing.status_code == 503 and missing.json()["error"]["code"] == "anchor_key_unavailable"
    key = ensure_anchor_key(anchor_key_path(settings))
    answer = await _get(settings, "/v1/audit/public-key")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["key_id"] == key_id(key.public_key()) == body["jwk"]["kid"]
    assert body["algorithm"] == "Ed25519" and body["anchor_topic"] == "t1.population.audit_anchor.v1"
    assert raw_public_key(load_public_key_pem(body["pem"])) == raw_public_key(key.public_key())
    # What it serves verifies an anchor the key signed.
    signed = parse_anchor(sample_anchor().sign(key).to_bytes())
    assert signed.signature_problem(load_public_key_pem(body["pem"])) is None
    assert "/v1/audit/public-key" in (await _get(settings, "/openapi.json")).json()["paths"]


def load_public_key_pem(pem: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    return key


class _Recording:
    """A connection that records the statements it is given and finds nothing."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    async def fetch(self, sql: str, *args: object) -> list[object]:
        self.statements.append(sql)
        return []


@pytest.mark.parametrize(
    ("log", "heads", "started"),
    [
        ("archive", "projection_x.sections", "WHERE true"),
        ("access_log", "public.access_log_heads", "WHERE chain_seq > 0"),
    ],
)
async def test_read_changes_reads_the_heads_of_started_chains_in_the_schema_asked(
    log: str, heads: str, started: str
) -> None:
    conn = _Recording()
    assert await read_changes(conn, log, "projection_x") == []
    [sql] = conn.statements
    assert f"FROM {heads} {started})" in sql

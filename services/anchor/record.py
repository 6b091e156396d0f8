"""The anchor record: what it pins, how its digests are computed, how it is signed and checked. Pure: no I/O.

An anchor pins the head of every chain — ``(citizen_id, department, chain_seq, head)`` for the event archive
(one chain per citizen and department), ``(citizen_id, "", chain_seq, head)`` for the access log (one per
citizen) — as **256 bucket digests per log**, the top of a two-level tree:

* a chain's *leaf* is ``sha256(citizen_id)[0:2]`` (65,536 leaves), its *bucket* the leaf's first byte; every
  chain of one citizen shares them;
* a leaf digest is SHA-256 over the leaf's chains' entries in ``(citizen_id, department)`` order;
* a bucket digest is SHA-256 over its 256 leaf digests in order (a leaf without chains has a digest too).

Why this shape:

* the record stays small (2 × 256 × 32 bytes, ~23 KB as JSON) however many chains there are, so it can be
  published every minute and kept forever;
* the next anchor rehashes only the leaves whose chains moved (and their buckets' 256 leaf digests, kept in
  ``audit_anchor_leaves``), not every chain of the population;
* a verifier that finds a bucket differing knows where to look: the anchored heads (``audit_anchor_heads``) and
  leaf digests kept beside the chains are covered by the signed bucket digest, so an edited entry breaks its
  leaf (a handful of chains, named), an edited leaf digest breaks its bucket, and an entry left alone names its
  chain and position exactly.

The record is JSON; its signature is Ed25519 over the canonical JSON of every other field (sorted keys, no
spaces, UTF-8), so fields added later are covered as well. ``previous`` is the digest of the anchor before it:
anchors form a chain of their own, and a missing or inserted one shows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FORMAT: Final = "renkou.audit_anchor/1"
ALGORITHM: Final = "Ed25519"
BUCKETS: Final = 256
LEAVES_PER_BUCKET: Final = 256
LEAVES: Final = BUCKETS * LEAVES_PER_BUCKET
BUCKET_RULE: Final = "leaf = sha256(utf8(citizen_id))[0:2]; bucket = leaf[0]"
LOGS: Final = ("archive", "access_log")
HELD_LISTED: Final = 100  # held chains named in the record itself (the count is always complete)

_LEAF_TAG: Final = FORMAT.encode() + b" leaf\n"
_BUCKET_TAG: Final = FORMAT.encode() + b" bucket\n"
_ROOT_TAG: Final = FORMAT.encode() + b" root\n"


class AnchorFormatError(ValueError):
    """A record that is not an anchor of this format (malformed JSON, missing or mistyped fields)."""


# --- keys ----------------------------------------------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's JWK thumbprint (RFC 7638): SHA-256 of its canonical JWK, base64url without padding."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw_public_key(public_key))}, separators=(",", ":")
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 8037), with its ``kid``."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(raw_public_key(public_key)),
        "kid": key_id(public_key),
        "use": "sig",
        "alg": "EdDSA",
    }


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


# --- chain heads and digests ---------------------------------------------------------------------------------------
def leaf_of(citizen_id: str) -> int:
    """The leaf of a citizen's chains (all of them: four archive chains and the access-log chain), 0–65535."""
    digest = hashlib.sha256(citizen_id.encode()).digest()
    return digest[0] << 8 | digest[1]


def bucket_of(citizen_id: str) -> int:
    """The bucket of a citizen's chains: their leaf's first byte."""
    return hashlib.sha256(citizen_id.encode()).digest()[0]


def leaves_of(bucket: int) -> range:
    return range(bucket * LEAVES_PER_BUCKET, (bucket + 1) * LEAVES_PER_BUCKET)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The head of one chain at a position: ``department`` is ``""`` for an access-log chain."""

    citizen_id: str
    department: str
    seq: int
    head: bytes

    @property
    def key(self) -> tuple[str, str]:
        return (self.citizen_id, self.department)

    def entry(self) -> bytes:
        """The chain's bytes in its leaf's digest: lengths before the texts, so no two entries read alike."""
        cid, dept = self.citizen_id.encode(), self.department.encode()
        if len(cid) > 255 or len(dept) > 255 or len(self.head) != 32 or not 0 <= self.seq < 2**63:
            raise ValueError(f"not a chain head: {self!r}")
        return bytes([len(cid)]) + cid + bytes([len(dept)]) + dept + struct.pack(">Q", self.seq) + self.head


def leaf_prefix(log: str) -> bytes:
    """What a leaf digest hashes before the leaf number (2 bytes, big-endian) and its entries."""
    return _LEAF_TAG + log.encode() + b"\n"


def bucket_prefix(log: str) -> bytes:
    """What a bucket digest hashes before the bucket number (1 byte) and its 256 leaf digests."""
    return _BUCKET_TAG + log.encode() + b"\n"


@lru_cache(maxsize=4)
def empty_leaf_digests(log: str) -> tuple[bytes, ...]:
    """The digest of every leaf without chains (65,536 of them: computed once per log)."""
    prefix = leaf_prefix(log)
    return tuple(hashlib.sha256(prefix + leaf.to_bytes(2, "big")).digest() for leaf in range(LEAVES))


def leaf_digest(log: str, leaf: int, heads: Iterable[ChainHead]) -> bytes:
    """SHA-256 over ``log``, ``leaf`` and the entries of ``heads`` in (citizen_id, department) order.

    ``builder`` computes the same in PostgreSQL (the builder's hot path); this is the reference, and what
    ``renkou audit verify`` recomputes on its own.
    """
    h = hashlib.sha256(leaf_prefix(log) + leaf.to_bytes(2, "big"))
    for head in sorted(heads, key=lambda x: x.key):
        h.update(head.entry())
    return h.digest()


def bucket_digest_of_leaves(log: str, bucket: int, leaf_digests: Sequence[bytes]) -> bytes:
    """SHA-256 over ``log``, ``bucket`` and the bucket's 256 leaf digests in leaf order."""
    if len(leaf_digests) != LEAVES_PER_BUCKET:
        raise ValueError(f"a bucket has {LEAVES_PER_BUCKET} leaves, not {len(leaf_digests)}")
    return hashlib.sha256(bucket_prefix(log) + bytes([bucket]) + b"".join(leaf_digests)).digest()


def group_by_leaf(heads: Iterable[ChainHead]) -> dict[int, list[ChainHead]]:
    groups: dict[int, list[ChainHead]] = {}
    for head in heads:
        groups.setdefault(leaf_of(head.citizen_id), []).append(head)
    return groups


def leaf_digests(log: str, heads: Iterable[ChainHead]) -> dict[int, bytes]:
    """The digests of the leaves that hold any of ``heads``."""
    return {leaf: leaf_digest(log, leaf, group) for leaf, group in group_by_leaf(heads).items()}


def bucket_digest(log: str, bucket: int, leaves: Mapping[int, bytes]) -> bytes:
    """The digest of ``bucket`` from the digests of its non-empty ``leaves`` (others: the empty leaf's)."""
    empty = empty_leaf_digests(log)
    return bucket_digest_of_leaves(log, bucket, [leaves.get(leaf) or empty[leaf] for leaf in leaves_of(bucket)])


def bucket_digests(log: str, heads: Iterable[ChainHead]) -> tuple[bytes, ...]:
    """The 256 bucket digests of ``heads`` (every chain of ``log``)."""
    leaves = leaf_digests(log, heads)
    return tuple(bucket_digest(log, b, leaves) for b in range(BUCKETS))


@lru_cache(maxsize=4)
def empty_digests(log: str) -> tuple[bytes, ...]:
    """The bucket digests of a log with no chains."""
    return bucket_digests(log, ())


def root_of(log: str, digests: Sequence[bytes]) -> bytes:
    """One digest over a log's bucket digests (a handy single value to compare; the buckets are what is checked)."""
    return hashlib.sha256(_ROOT_TAG + log.encode() + b"\n" + b"".join(digests)).digest()


@dataclass(frozen=True)
class LogDigest:
    """What an anchor pins of one log: its chains and links (the sum of their positions) and bucket digests."""

    chains: int
    links: int
    digests: tuple[bytes, ...]

    def root(self, log: str) -> bytes:
        return root_of(log, self.digests)

    def to_json(self, log: str) -> dict[str, Any]:
        return {
            "chains": self.chains,
            "links": self.links,
            "root": self.root(log).hex(),
            "digests": base64.b64encode(b"".join(self.digests)).decode(),
        }

    @classmethod
    def from_json(cls, log: str, data: Any) -> LogDigest:
        if not isinstance(data, dict):
            raise AnchorFormatError(f"logs.{log} is not an object")
        chains, links = data.get("chains"), data.get("links")
        if not isinstance(chains, int) or not isinstance(links, int) or not _is_count(chains) or not _is_count(links):
            raise AnchorFormatError(f"logs.{log}: chains and links must be whole numbers ≥ 0")
        try:
            packed = base64.b64decode(str(data.get("digests", "")), validate=True)
        except ValueError as exc:
            raise AnchorFormatError(f"logs.{log}.digests is not base64") from exc
        if len(packed) != 32 * BUCKETS:
            raise AnchorFormatError(f"logs.{log}.digests holds {len(packed)} bytes, not {32 * BUCKETS}")
        digest = cls(chains, links, tuple(packed[i : i + 32] for i in range(0, len(packed), 32)))
        if data.get("root") != digest.root(log).hex():
            raise AnchorFormatError(f"logs.{log}.root is not the root of its bucket digests")
        return digest


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class HeldChain:
    """A chain whose current head the builder refused to anchor: it did not extend the anchored head.

    Its anchored entry stays as it was (the last state that was seen whole); ``problem`` says what was found.
    ``bucket`` is set (and the chain fields empty) when a whole bucket's anchored entries were found altered.
    """

    log: str
    citizen_id: str
    department: str
    anchored_seq: int | None
    problem: str
    bucket: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "citizen_id": self.citizen_id,
            "department": self.department,
            "anchored_seq": self.anchored_seq,
            "problem": self.problem,
            "bucket": self.bucket,
        }

    @classmethod
    def from_json(cls, data: Any) -> HeldChain:
        if not isinstance(data, dict):
            raise AnchorFormatError("held.chains holds a non-object")
        try:
            return cls(
                str(data["log"]),
                str(data["citizen_id"]),
                str(data["department"]),
                None if data.get("anchored_seq") is None else int(data["anchored_seq"]),
                str(data["problem"]),
                None if data.get("bucket") is None else int(data["bucket"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AnchorFormatError(f"held.chains: {exc}") from exc


@dataclass(frozen=True)
class Anchor:
    """An anchor's content (everything the signature covers but the key's own fields)."""

    seq: int
    previous: str | None  # digest() of anchor seq - 1
    anchored_at: datetime
    reason: str  # interval | swap | shutdown | manual
    projection: str
    schema: str
    checkpoints: tuple[tuple[str, int, int], ...]  # (topic, partition, next offset) of the anchored archive
    logs: Mapping[str, LogDigest]
    held: tuple[HeldChain, ...] = ()
    held_total: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)  # fields of a later format version, kept verbatim

    def checkpoint_map(self) -> dict[tuple[str, int], int]:
        return {(t, p): o for t, p, o in self.checkpoints}

    def body(self, key_id_: str) -> dict[str, Any]:
        """The record without its signature: exactly the bytes ``signed_bytes`` serialises."""
        return {
            **self.extra,
            "format": FORMAT,
            "seq": self.seq,
            "previous": self.previous,
            "anchored_at": self.anchored_at.isoformat(),
            "reason": self.reason,
            "projection": self.projection,
            "schema": self.schema,
            "checkpoints": [list(c) for c in self.checkpoints],
            "buckets": BUCKETS,
            "leaves_per_bucket": LEAVES_PER_BUCKET,
            "bucket_rule": BUCKET_RULE,
            "logs": {log: self.logs[log].to_json(log) for log in LOGS},
            "held": {"count": self.held_total, "chains": [h.to_json() for h in self.held]},
            "key_id": key_id_,
            "algorithm": ALGORITHM,
        }

    def sign(self, private_key: Ed25519PrivateKey) -> SignedAnchor:
        body = self.body(key_id(private_key.public_key()))
        return SignedAnchor(self, body, private_key.sign(canonical(body)))


def canonical(body: Mapping[str, Any]) -> bytes:
    """The signed bytes: JSON with sorted keys, no whitespace, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@dataclass(frozen=True)
class SignedAnchor:
    """An anchor as published: its content, the signed body as it reads, and the signature."""

    anchor: Anchor
    body: Mapping[str, Any]
    signature: bytes

    @property
    def key_id(self) -> str:
        return str(self.body.get("key_id", ""))

    def signed_bytes(self) -> bytes:
        return canonical(self.body)

    def digest(self) -> str:
        """SHA-256 of the signed bytes, hex: what the next anchor's ``previous`` names."""
        return hashlib.sha256(self.signed_bytes()).hexdigest()

    def to_bytes(self) -> bytes:
        """The Kafka record value."""
        return canonical({**self.body, "signature": base64.b64encode(self.signature).decode()})

    def signature_problem(self, public_key: Ed25519PublicKey) -> str | None:
        """``None`` if ``public_key`` signed exactly this body; otherwise what is wrong, in words."""
        trusted = key_id(public_key)
        try:
            public_key.verify(self.signature, self.signed_bytes())
        except InvalidSignature:
            if self.key_id != trusted:
                return f"signed by key {self.key_id or '(none named)'}, not the trusted key {trusted}"
            return f"its signature does not verify with key {trusted}: the record was altered or forged"
        if self.key_id != trusted:  # the signature verifies, so only the named key id can be off
            return f"it names key {self.key_id}, but the trusted key {trusted} signed it"
        return None


def parse_anchor(raw: bytes | str) -> SignedAnchor:
    """A published record read back; ``AnchorFormatError`` if it is not an anchor of this format."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AnchorFormatError(f"not JSON ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise AnchorFormatError("not a JSON object")
    if data.get("format") != FORMAT:
        raise AnchorFormatError(f"format is {data.get('format')!r}, not {FORMAT!r}")
    signature_text = data.pop("signature", None)
    try:
        signature = base64.b64decode(str(signature_text), validate=True)
    except ValueError as exc:
        raise AnchorFormatError("signature is not base64") from exc
    if (
        data.get("algorithm") != ALGORITHM
        or data.get("buckets") != BUCKETS
        or data.get("leaves_per_bucket") != LEAVES_PER_BUCKET
        or data.get("bucket_rule") != BUCKET_RULE
    ):
        raise AnchorFormatError(
            f"not an {ALGORITHM} anchor over {BUCKETS} buckets of {LEAVES_PER_BUCKET} leaves ({BUCKET_RULE})"
        )
    try:
        seq = data["seq"]
        if not _is_count(seq) or seq < 1:
            raise AnchorFormatError("seq must be a whole number ≥ 1")
        previous = data["previous"]
        if previous is not None and not isinstance(previous, str):
            raise AnchorFormatError("previous must be a digest or null")
        logs_data = data["logs"]
        if not isinstance(logs_data, dict):
            raise AnchorFormatError("logs is not an object")
        logs = {log: LogDigest.from_json(log, logs_data.get(log)) for log in LOGS}
        held_data = data["held"]
        checkpoints = tuple((str(t), int(p), int(o)) for t, p, o in data["checkpoints"])
        anchor = Anchor(
            seq=seq,
            previous=previous,
            anchored_at=datetime.fromisoformat(str(data["anchored_at"])),
            reason=str(data["reason"]),
            projection=str(data["projection"]),
            schema=str(data["schema"]),
            checkpoints=checkpoints,
            logs=logs,
            held=tuple(HeldChain.from_json(h) for h in held_data["chains"]),
            held_total=int(held_data["count"]),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )
    except AnchorFormatError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise AnchorFormatError(f"{exc.__class__.__name__}: {exc}") from exc
    return SignedAnchor(anchor, data, signature)


_KNOWN = frozenset(
    {
        "format",
        "seq",
        "previous",
        "anchored_at",
        "reason",
        "projection",
        "schema",
        "checkpoints",
        "buckets",
        "leaves_per_bucket",
        "bucket_rule",
        "logs",
        "held",
        "key_id",
        "algorithm",
    }
)

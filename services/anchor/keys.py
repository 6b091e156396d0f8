"""The anchor signing key: an Ed25519 key in a PEM file under the stack's state folder, never in PostgreSQL.

``<state_dir>/secrets/audit-anchor.ed25519.pem`` (mode 0600; ``RENKOU_AUDIT_ANCHOR_KEY_FILE`` overrides the path)
holds the private key; ``….pub.pem`` beside it the public key, which is all a verifier or the query API needs.
``ensure_anchor_key`` creates both when they are missing (``renkou up`` calls it, and so does the projector
before it first signs); it never replaces an existing key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from services.anchor.record import public_pem
from services.settings import Settings

KEY_FILE = Path("secrets") / "audit-anchor.ed25519.pem"


class AnchorKeyError(Exception):
    """The key file is missing, unreadable or not an Ed25519 key; the message names the file."""


def anchor_key_path(settings: Settings) -> Path:
    """Where the private signing key lives."""
    return settings.audit_anchor_key_file or settings.state_dir / KEY_FILE


def public_key_path(private_path: Path) -> Path:
    """The public key's file beside the private one (``….ed25519.pem`` → ``….ed25519.pub.pem``)."""
    name = private_path.name
    stem = name[: -len(".pem")] if name.endswith(".pem") else name
    return private_path.with_name(stem + ".pub.pem")


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Write ``path`` atomically unless it exists (another process may race us: the first one wins)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if the path exists: never overwrites a key
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def ensure_anchor_key(path: Path) -> Ed25519PrivateKey:
    """The signing key at ``path``, created (0600, its folder 0700) with its public file if it is missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        _write_new(path, pem, 0o600)
    key = load_private_key(path)
    public = public_key_path(path)
    if not public.exists():
        _write_new(public, public_pem(key.public_key()).encode(), 0o644)
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise AnchorKeyError(f"cannot read the anchor signing key {path}: {exc.strerror or exc}") from exc
    except (ValueError, TypeError) as exc:
        raise AnchorKeyError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AnchorKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file holding a public key (or a private one, whose public half is used)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnchorKeyError(f"cannot read the anchor public key {path}: {exc.strerror or exc}") from exc
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise AnchorKeyError(f"{path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AnchorKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def trusted_public_key(settings: Settings, override: Path | None = None) -> tuple[Ed25519PublicKey, Path]:
    """The key anchors must be signed with: ``override``, else the public file, else the private key's half."""
    if override is not None:
        return load_public_key(override), override
    private = anchor_key_path(settings)
    public = public_key_path(private)
    if public.exists():
        return load_public_key(public), public
    if private.exists():
        return load_private_key(private).public_key(), private
    raise AnchorKeyError(
        f"no anchor key at {public} (nor {private}): `renkou up` creates it, or pass --public-key FILE"
    )

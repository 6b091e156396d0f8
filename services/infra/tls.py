"""A local certificate authority for the stack's TLS listener (``RENKOU_KAFKA_TLS=1``), made with ``cryptography``.

``renkou up`` creates, once, under ``<state_dir>/secrets/kafka``: ``ca.pem`` (the CA certificate that clients
trust), ``ca-key.pem`` (its key) and ``server.pem`` (the broker's key and certificate chain, PEM, as Kafka's
``ssl.keystore.type=PEM`` reads it). The broker's certificate names 127.0.0.1 and localhost.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from services.kafka.auth import ca_file, secrets_dir, write_private

_VALIDITY = dt.timedelta(days=825)


def server_keystore(state_dir: Path) -> Path:
    return secrets_dir(state_dir) / "server.pem"


def ensure_local_ca(state_dir: Path) -> tuple[Path, Path]:
    """The CA certificate and the broker's keystore, created when missing; returns ``(ca.pem, server.pem)``."""
    ca_path, keystore = ca_file(state_dir), server_keystore(state_dir)
    if ca_path.exists() and keystore.exists():
        return ca_path, keystore
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "renkou local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "renkou kafka broker")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    plain = serialization.NoEncryption()
    write_private(secrets_dir(state_dir) / "ca-key.pem", ca_key.private_bytes(pem, pkcs8, plain).decode())
    write_private(
        keystore,
        key.private_bytes(pem, pkcs8, plain).decode()
        + cert.public_bytes(pem).decode()
        + ca_cert.public_bytes(pem).decode(),
    )
    write_private(ca_path, ca_cert.public_bytes(pem).decode())
    return ca_path, keystore

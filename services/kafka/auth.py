"""Who a Kafka client is (CONTRACT §10): SASL/SCRAM-SHA-512 credentials, and TLS when the listener has it.

Every Kafka client renkou makes — FastStream's broker, aiokafka's producers, consumers and admin clients,
confluent-kafka's admin client for users and ACLs — gets its options from :class:`KafkaCredentials`, so there
is one place that knows how a principal authenticates. The aiokafka options are FastStream's own translation
of its ``SASLScram512`` security object (``faststream.kafka.security.parse_security``), not a copy of it.

Credentials come from, in this order: ``RENKOU_KAFKA_USERNAME`` / ``RENKOU_KAFKA_PASSWORD``; else the file
``<state_dir>/secrets/kafka/<principal>.json`` that ``renkou up`` writes (mode 0600) for the process's
default principal; else none, and the broker refuses the connection with an authentication error.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer
    from faststream.security import SASLScram512

    from services.settings import Settings

MECHANISM = "SCRAM-SHA-512"

# The principals renkou's own processes run as (CONTRACT §10 roles). The admin is the cluster's super user: it
# creates topics, principals and ACLs and is used by `renkou up`, `renkou kafka users` and the tests' fixtures;
# no service runs as it.
ADMIN = "renkou-admin"
GATEWAY = "renkou-gateway"
PROJECTOR = "renkou-projector"
VIEW_RELAY = "renkou-view-relay"
QUERY_API = "renkou-query-api"  # only with RENKOU_ACCESS_LOG=kafka: the access-log topic and its relay
OPERATOR = "renkou-operator"
AUDITOR = "renkou-auditor"


DEMO_CONSUMER = "demo-school"
"""The demo consumer (`make run`): its query API grant and, of the same name, the Kafka principal of role
``consumer:demo-school`` that reads its own view topic."""


def bootstrap_servers(bootstrap: str) -> list[str]:
    """``RENKOU_KAFKA_BOOTSTRAP`` as the list Kafka clients take: "a:9092,b:9092" names every broker of a cluster, so
    that a client starting while one is down still finds the others (aiokafka reads a string as one address)."""
    servers = [part.strip() for part in bootstrap.split(",") if part.strip()]
    if not servers:
        raise ValueError("RENKOU_KAFKA_BOOTSTRAP names no broker")
    return servers


def demo_department_principal(department: str) -> str:
    """The demo principal ``renkou up`` creates for a department (printed by ``renkou demo-tokens``)."""
    return f"demo-{department}"


@dataclass(frozen=True)
class KafkaCredentials:
    """One principal's SCRAM credentials; ``ca_file`` set means the listener speaks TLS, verified by that CA."""

    username: str
    password: str = field(repr=False)
    ca_file: Path | None = None

    def security(self) -> SASLScram512:
        """The FastStream security object (``KafkaBroker(security=...)``)."""
        from faststream.security import SASLScram512

        return SASLScram512(self.username, self.password, ssl_context=self.ssl_context())

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))

    def aiokafka_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        from faststream.kafka.security import parse_security

        return dict(parse_security(self.security()))

    def confluent_config(self) -> dict[str, str]:
        """librdkafka's settings for the same principal (confluent-kafka's admin client)."""
        config = {
            "security.protocol": "SASL_SSL" if self.ca_file else "SASL_PLAINTEXT",
            "sasl.mechanism": MECHANISM,
            "sasl.username": self.username,
            "sasl.password": self.password,
        }
        if self.ca_file is not None:
            config["ssl.ca.location"] = str(self.ca_file)
        return config


def new_password() -> str:
    """A fresh random password (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def secrets_dir(state_dir: Path) -> Path:
    """Where ``renkou up`` keeps the stack's Kafka secrets (mode 0700)."""
    return state_dir / "secrets" / "kafka"


def ca_file(state_dir: Path) -> Path:
    """The local CA's certificate, which clients trust when ``RENKOU_KAFKA_TLS=1``."""
    return secrets_dir(state_dir) / "ca.pem"


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by its owner only: written 0600 to a temporary file, then renamed
    (never world-readable for a moment, never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(temporary, 0o600)
    temporary.replace(path)


def save_credentials(state_dir: Path, username: str, password: str, role: str) -> Path:
    """Keep a principal's password under the state folder, for the processes of this stack that run as it."""
    secrets_dir(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    secrets_dir(state_dir).chmod(0o700)
    path = secrets_dir(state_dir) / f"{username}.json"
    write_private(path, json.dumps({"username": username, "password": password, "role": role}) + "\n")
    return path


def stored_credentials(state_dir: Path, username: str, *, tls: bool = False) -> KafkaCredentials | None:
    """The credentials ``renkou up`` stored for ``username``, or None."""
    path = secrets_dir(state_dir) / f"{username}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return KafkaCredentials(data["username"], data["password"], ca_file(state_dir) if tls else None)


def _tls_ca(settings: Settings) -> Path | None:
    return (settings.kafka_ca_file or ca_file(settings.state_dir)) if settings.kafka_tls else None


def explicit_credentials(settings: Settings) -> KafkaCredentials | None:
    """``RENKOU_KAFKA_USERNAME`` / ``RENKOU_KAFKA_PASSWORD`` when both are set."""
    if settings.kafka_username and settings.kafka_password is not None:
        return KafkaCredentials(settings.kafka_username, settings.kafka_password.get_secret_value(), _tls_ca(settings))
    return None


def credentials_for(settings: Settings, principal: str) -> KafkaCredentials | None:
    """The credentials a process whose default principal is ``principal`` connects with (see module doc)."""
    explicit = explicit_credentials(settings)
    if explicit is not None:
        return explicit
    stored = stored_credentials(settings.state_dir, principal)
    if stored is None:
        return None
    return KafkaCredentials(stored.username, stored.password, _tls_ca(settings))


def client_options(settings: Settings, principal: str) -> dict[str, Any]:
    """``bootstrap_servers`` and the security options of an aiokafka client running as ``principal``."""
    credentials = credentials_for(settings, principal)
    options: dict[str, Any] = {"bootstrap_servers": bootstrap_servers(settings.kafka_bootstrap)}
    if credentials is not None:
        options.update(credentials.aiokafka_options())
    return options


DURABLE: Final[dict[str, Any]] = {"acks": "all", "enable_idempotence": True}
"""How every renkou producer writes: a record is acknowledged once every in-sync replica has it (with the topics'
``min.insync.replicas``, nothing acknowledged is lost with one broker), and a retried send is never written twice."""


def durable_producer(settings: Settings, principal: str, **options: Any) -> AIOKafkaProducer:
    """An (unstarted) producer running as ``principal`` that writes as ``DURABLE`` says; ``options`` are aiokafka's
    (``client_id``, ``linger_ms``…)."""
    from aiokafka import AIOKafkaProducer  # here, as faststream's above: importing the credentials loads no client

    return AIOKafkaProducer(**client_options(settings, principal), **DURABLE, **options)

"""Runtime settings shared by every renkou service and the CLI, read from the environment first.

Names follow CONTRACT.md §1: ``RENKOU_KAFKA_BOOTSTRAP``, ``RENKOU_DATABASE_URL``; everything else is ours.
Secrets are ``SecretStr`` so that they never end up in a log line or a traceback.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+asyncpg://renkou:renkou@127.0.0.1:5433/renkou"


def project_root() -> Path:
    """The checkout renkou runs from (where ``infra/`` and ``.local/`` live)."""
    return Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Endpoints and knobs; override any of them with ``RENKOU_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="RENKOU_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    # SASL/SCRAM-SHA-512 (CONTRACT §10): a process's own principal; unset, the one `renkou up` stored for it.
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    # TLS on the client listener, verified by the local CA `renkou up` creates (or this CA file).
    kafka_tls: bool = False
    kafka_ca_file: Path | None = None
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    # Where the query API's reads go (CONTRACT §13): a hot standby the primary waits for (synchronous: grants are
    # checked there, and a revocation waits for it), e.g. CloudNativePG's `-ro` service with every standby
    # synchronous, or a libpq multi-host URL with target_session_attrs=prefer-standby. Only with access_log
    # "kafka" (a standby cannot append the access log); unset, the primary (database_url).
    read_database_url: SecretStr | None = None
    # How a read's access-log entry becomes durable before the answer: "postgresql", appended to its chain in the
    # read's own transaction on the primary; "kafka", appended to population.access_log.v1 (acks=all) and chained
    # into PostgreSQL by the query API's relay a moment later (services.access_log.topic).
    access_log: Literal["postgresql", "kafka"] = "postgresql"
    # Prefixed to every topic name; empty in production (the contract's names), unique per test run so that
    # tests sharing one broker never see each other's records.
    topic_namespace: str = ""
    state_dir: Path = Field(default_factory=lambda: project_root() / ".local" / "stack")
    # Citizens' ID tokens (CONTRACT §11): the city's OpenID Connect provider; unset, the local one `renkou up`
    # configures (its key set under the state folder).
    citizen_oidc_issuer: str = "urn:renkou:local-idp"
    citizen_oidc_audience: str = "renkou"
    citizen_oidc_jwks: str | None = None
    citizen_id_claim: str = "citizen_id"
    # The provider's authorization endpoint, where the console sends a citizen to log in (response_mode=form_post);
    # unset, the console's own demo provider when RENKOU_CONSOLE_DEMO_IDP=1 (loopback only), else no browser login.
    citizen_oidc_authorize_url: str | None = None
    console_demo_idp: bool = False
    # Where every service listens (RENKOU_BIND_HOST): loopback unless set, e.g. 0.0.0.0 in a container or the
    # machine's own address behind a load balancer.
    bind_host: str = "127.0.0.1"
    query_api_port: int = 8000
    gateway_port: int = 8001
    projector_metrics_port: int = 8002
    view_relay_port: int = 8003
    console_port: int = 8004
    # The console behind a TLS-terminating proxy: its session cookie is sent over HTTPS only.
    console_secure_cookies: bool = False
    # Further names the console answers to (its Host header), comma-separated, e.g. console.renkou.city.gov.cn.
    console_hosts: str = ""
    # Behind a TLS proxy: the origin browsers see (https://console.renkou.city.gov.cn), and the proxies whose
    # X-Forwarded-For/-Proto the console believes (uvicorn's forwarded_allow_ips; "*" where a network policy fences it).
    console_public_origin: str | None = None
    console_trusted_proxies: str = "127.0.0.1"
    # The Ed25519 key that signs the audit anchors (CONTRACT §10); default <state_dir>/secrets/audit-anchor.ed25519.pem.
    audit_anchor_key_file: Path | None = None
    # Seconds between the projector's anchors while chains move (the contract asks for at least one a minute).
    audit_anchor_interval_s: float = 30.0

    @field_validator("bind_host")
    @classmethod
    def _bind_host(cls, value: str) -> str:
        host = value.strip().removeprefix("[").removesuffix("]")
        if host == "localhost":
            return host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"RENKOU_BIND_HOST must be an IP address (or localhost), got {value!r}") from None
        return host

    @property
    def local_host(self) -> str:
        """How this machine reaches a service bound to ``bind_host``: a wildcard address through loopback."""
        host = self.bind_host
        if host != "localhost":
            address = ipaddress.ip_address(host)
            if address.is_unspecified:  # listening everywhere: reached through loopback
                host = "127.0.0.1" if address.version == 4 else "::1"
        return f"[{host}]" if ":" in host else host

    def environment(self) -> dict[str, str]:
        """These settings as ``RENKOU_*`` variables, for a child process that must work against the same stack
        (the secrets stay in the state folder, where the child finds its own)."""
        env = {
            "RENKOU_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "RENKOU_DATABASE_URL": self.database_url.get_secret_value(),
            "RENKOU_TOPIC_NAMESPACE": self.topic_namespace,
            "RENKOU_STATE_DIR": str(self.state_dir),
            "RENKOU_BIND_HOST": self.bind_host,
        }
        if self.read_database_url is not None:
            env["RENKOU_READ_DATABASE_URL"] = self.read_database_url.get_secret_value()
        if self.access_log != "postgresql":
            env["RENKOU_ACCESS_LOG"] = self.access_log
        if self.kafka_tls:
            env["RENKOU_KAFKA_TLS"] = "1"
        if self.kafka_ca_file is not None:
            env["RENKOU_KAFKA_CA_FILE"] = str(self.kafka_ca_file)
        if self.audit_anchor_key_file is not None:
            env["RENKOU_AUDIT_ANCHOR_KEY_FILE"] = str(self.audit_anchor_key_file)
        return env

    def local_url(self, port: int) -> str:
        """``http://<local_host>:<port>``: a service of this machine, for probes, the CLI and printed examples."""
        return f"http://{self.local_host}:{port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; on a local stack with several brokers or a PostgreSQL standby, naming
    all of them (``services.infra.ports.follow_local_stack``)."""
    from services.infra.ports import follow_local_stack  # the launcher's layout; imported late: it imports this

    return follow_local_stack(Settings())

"""Kubernetes manifests for renkou on the operators city platforms run (CONTRACT §13): Strimzi for Kafka,
CloudNativePG for PostgreSQL, plain Deployments for the services.

The manifests in ``infra/k8s/`` are rendered from the code that defines what they must agree with, so they cannot
drift from it: the topics from ``infra/topics.toml`` (three replicas, ``min.insync.replicas=2``), each Kafka
principal's ACLs from its role (``services.kafka.principals.role_acls``), the database login roles from
``services.db.roles``, ports and environment from ``services.settings.Settings``. ``python -m services.infra.k8s``
writes them; ``tests/unit/services/infra/test_k8s.py`` renders them again and checks the committed files are the same,
and checks names, ports, roles and environment against the code.

What a city fills in is marked ``CHANGE-ME``: the image, storage sizes, the identity provider. The Secrets are
the city's to create (never rendered here): ``renkou-db-<role>`` (key ``password``) for the owner and each
service role, and ``renkou-audit-anchor-key`` holding ``audit-anchor.ed25519.pem`` and its ``.pub.pem``
(``renkou anchor`` tools make them). Strimzi makes each KafkaUser's Secret itself.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from events import DEPARTMENTS
from services.db import roles as db_roles
from services.infra.topics import load_topics
from services.kafka.auth import AUDITOR, GATEWAY, OPERATOR, PROJECTOR, QUERY_API, VIEW_RELAY
from services.kafka.principals import Acl, role_acls
from services.settings import Settings, project_root

__all__ = ["K8S_DIR", "NAMESPACE", "SERVICES", "ServiceSpec", "kafka_users", "render", "write"]

K8S_DIR: Final = project_root() / "infra" / "k8s"
NAMESPACE: Final = "renkou"
KAFKA_CLUSTER: Final = "renkou"
KAFKA_BOOTSTRAP: Final = f"{KAFKA_CLUSTER}-kafka-bootstrap.{NAMESPACE}.svc:9093"
KAFKA_VERSION: Final = "4.1.1"  # infra/kafka/pom.xml: the broker the tests run
PG_CLUSTER: Final = "renkou-db"
PG_HOST: Final = f"{PG_CLUSTER}-rw.{NAMESPACE}.svc"  # CloudNativePG's service for the current primary
PG_READ_HOST: Final = f"{PG_CLUSTER}-ro.{NAMESPACE}.svc"  # … and for its standbys (hot, synchronous)
IMAGE: Final = "registry.example.gov.cn/renkou/renkou:CHANGE-ME"
CA_DIR: Final = "/etc/renkou/kafka-ca"
ANCHOR_KEY_DIR: Final = "/etc/renkou/anchor"


@dataclass(frozen=True)
class ServiceSpec:
    """One deployable: its module, HTTP port (from ``Settings``), Kafka principal and database role."""

    name: str
    module: str
    port_setting: str
    kafka_principal: str | None
    db_role: str
    replicas: int
    exposed: bool

    @property
    def port(self) -> int:
        value: int = Settings.model_fields[self.port_setting].default
        return value


SERVICES: Final = (
    ServiceSpec("gateway", "services.gateway", "gateway_port", GATEWAY, db_roles.GATEWAY, 2, True),
    ServiceSpec("query-api", "services.query_api", "query_api_port", QUERY_API, db_roles.QUERY_API, 2, True),
    ServiceSpec("projector", "services.projector", "projector_metrics_port", PROJECTOR, db_roles.PROJECTOR, 2, False),
    ServiceSpec("view-relay", "services.view_relay", "view_relay_port", VIEW_RELAY, db_roles.VIEW_RELAY, 1, False),
    # One replica: its sessions and jobs live in its memory (a second one would log users out at random).
    ServiceSpec("console", "services.console", "console_port", OPERATOR, db_roles.OPERATOR, 1, True),
)


def kafka_users() -> list[tuple[str, str]]:
    """(KafkaUser name, role): the services', the operator's and auditor's, and one per department system.
    Consumers' users (``consumer:<grant>``) are added with their grants (README, Kubernetes)."""
    users = [(GATEWAY, "gateway"), (PROJECTOR, "projector"), (VIEW_RELAY, "view-relay"), (QUERY_API, "query-api")]
    users += [(OPERATOR, "operator"), (AUDITOR, "auditor")]
    users += [(f"department-{d.replace('_', '-')}", f"department:{d}") for d in DEPARTMENTS]
    return users


def _k8s_name(name: str) -> str:
    """A DNS-1123 name for a Kubernetes object (Kafka topic names keep ``_``; object names cannot)."""
    return name.replace("_", "-").lower()


def _meta(name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if labels:
        meta["labels"] = dict(labels)
    return meta


# --- Kafka (Strimzi) -----------------------------------------------------------------------------------------


def _kafka() -> list[dict[str, Any]]:
    pool = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaNodePool",
        "metadata": _meta("brokers", **{"strimzi.io/cluster": KAFKA_CLUSTER}),
        "spec": {
            "replicas": 3,
            "roles": ["controller", "broker"],
            "storage": {
                "type": "jbod",
                "volumes": [
                    {
                        "id": 0,
                        "type": "persistent-claim",
                        "size": "500Gi",
                        "deleteClaim": False,
                        "kraftMetadata": "shared",
                    }
                ],
            },
        },
    }
    kafka = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "Kafka",
        "metadata": {
            **_meta(KAFKA_CLUSTER),
            "annotations": {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"},
        },
        "spec": {
            "kafka": {
                "version": KAFKA_VERSION,
                "listeners": [
                    # SCRAM-SHA-512 over TLS, inside the cluster only (CONTRACT §10).
                    {
                        "name": "scram",
                        "port": 9093,
                        "type": "internal",
                        "tls": True,
                        "authentication": {"type": "scram-sha-512"},
                    }
                ],
                "authorization": {"type": "simple"},
                "config": {
                    "default.replication.factor": 3,
                    "min.insync.replicas": 2,
                    "offsets.topic.replication.factor": 3,
                    "transaction.state.log.replication.factor": 3,
                    "transaction.state.log.min.isr": 2,
                    "auto.create.topics.enable": False,
                    # The department topics are the system of record: not deleted, even by the Topic Operator
                    # when a KafkaTopic is removed.
                    "delete.topic.enable": False,
                    "allow.everyone.if.no.acl.found": False,
                },
            },
            "entityOperator": {"topicOperator": {}, "userOperator": {}},
        },
    }
    return [pool, kafka]


def _topics() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "KafkaTopic",
            "metadata": _meta(_k8s_name(spec.name), **{"strimzi.io/cluster": KAFKA_CLUSTER}),
            "spec": {
                "topicName": spec.name,
                "partitions": spec.partitions,
                "replicas": spec.replication_factor,
                "config": dict(sorted(spec.config.items())),
            },
        }
        for spec in load_topics(brokers=3)
    ]


_OPERATIONS: Final = {"DESCRIBE_CONFIGS": "DescribeConfigs"}


def strimzi_acls(acls: Iterable[Acl]) -> list[dict[str, Any]]:
    """``role_acls`` in Strimzi's ``simple`` authorization: one rule per resource, its operations together."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for acl in acls:
        operation = _OPERATIONS.get(acl.operation, acl.operation.capitalize())
        pattern = "prefix" if acl.pattern == "PREFIXED" else "literal"  # Strimzi's words for Kafka's patterns
        grouped.setdefault((acl.resource.lower(), acl.name, pattern), []).append(operation)
    return [
        {"resource": {"type": kind, "name": name, "patternType": pattern}, "operations": sorted(operations)}
        for (kind, name, pattern), operations in sorted(grouped.items())
    ]


def _users() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "KafkaUser",
            "metadata": {
                **_meta(name, **{"strimzi.io/cluster": KAFKA_CLUSTER}),
                "annotations": {"renkou.gov.cn/role": role},
            },
            "spec": {
                "authentication": {"type": "scram-sha-512"},
                "authorization": {"type": "simple", "acls": strimzi_acls(role_acls(role))},
            },
        }
        for name, role in kafka_users()
    ]


# --- PostgreSQL (CloudNativePG) ------------------------------------------------------------------------------


def _password_secret(role: str) -> str:
    return f"{PG_CLUSTER}-{_k8s_name(role)}"


def _postgres() -> list[dict[str, Any]]:
    cluster = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": _meta(PG_CLUSTER),
        "spec": {
            # A primary and a standby; every commit waits for the standby (synchronous replication).
            "instances": 2,
            "postgresql": {
                "synchronous": {"method": "any", "number": 1, "dataDurability": "required"},
                "parameters": {"max_connections": "200", "shared_buffers": "4GB", "timezone": "UTC"},
            },
            "bootstrap": {
                "initdb": {
                    "database": "renkou",
                    "owner": db_roles.OWNER,
                    "secret": {"name": _password_secret(db_roles.OWNER)},
                    "encoding": "UTF8",
                    "localeCType": "C.UTF-8",
                    "localeCollate": "C.UTF-8",
                }
            },
            "managed": {
                # The services' login roles (services.db.roles): least privilege, granted by the migrations.
                "roles": [
                    {
                        "name": role,
                        "ensure": "present",
                        "login": True,
                        "superuser": False,
                        "createdb": False,
                        "createrole": False,
                        "replication": False,
                        "bypassrls": False,
                        "passwordSecret": {"name": _password_secret(role)},
                    }
                    for role in db_roles.SERVICE_ROLES
                ]
            },
            "storage": {"size": "1Ti"},
        },
    }
    return [cluster]


# --- the services ----------------------------------------------------------------------------------------------


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def service_env(service: ServiceSpec) -> list[dict[str, Any]]:
    """The environment of one service's container: its own Kafka principal and database role, nothing shared."""
    env = [_env("RENKOU_BIND_HOST", "0.0.0.0")]  # noqa: S104 - a container listens on its pod's address
    if service.kafka_principal is not None:
        env += [
            _env("RENKOU_KAFKA_BOOTSTRAP", KAFKA_BOOTSTRAP),
            _env("RENKOU_KAFKA_TLS", "true"),
            _env("RENKOU_KAFKA_CA_FILE", f"{CA_DIR}/ca.crt"),
            _env("RENKOU_KAFKA_USERNAME", service.kafka_principal),
            _secret_env("RENKOU_KAFKA_PASSWORD", service.kafka_principal, "password"),  # Strimzi's user secret
        ]
    env += [
        # The password reaches the driver as libpq's PGPASSWORD, never inside the URL (no escaping to get wrong).
        _secret_env("PGPASSWORD", _password_secret(service.db_role), "password"),
        _env("RENKOU_DATABASE_URL", f"postgresql+asyncpg://{service.db_role}@{PG_HOST}:5432/renkou"),
    ]
    if service.name == "query-api":
        # Reads from the standbys, their access-log entries through Kafka (CONTRACT §13; README, Scaling). The
        # primary is named second: while no standby answers (just after a failover), reads go there.
        reads = f"host={PG_READ_HOST}:5432&host={PG_HOST}:5432&target_session_attrs=prefer-standby"
        env += [
            _env("RENKOU_ACCESS_LOG", "kafka"),
            _env("RENKOU_READ_DATABASE_URL", f"postgresql+asyncpg://{service.db_role}@/renkou?{reads}"),
        ]
    if service.name in ("projector", "query-api"):
        # The projector signs with the private key; the query API serves the public one beside it.
        env.append(_env("RENKOU_AUDIT_ANCHOR_KEY_FILE", f"{ANCHOR_KEY_DIR}/audit-anchor.ed25519.pem"))
    if service.name in ("query-api", "console"):
        env += [
            _env("RENKOU_CITIZEN_OIDC_ISSUER", "https://idp.example.gov.cn/CHANGE-ME"),
            _env("RENKOU_CITIZEN_OIDC_JWKS", "https://idp.example.gov.cn/CHANGE-ME/jwks.json"),
        ]
    if service.name == "console":
        # Behind the cluster's TLS ingress; replay, verify and swap need the owner role, which this pod is not
        # given: operators run them as a Job or from the CLI (README, The console).
        env += [
            _env("RENKOU_CITIZEN_OIDC_AUTHORIZE_URL", "https://idp.example.gov.cn/CHANGE-ME/authorize"),
            _env("RENKOU_CONSOLE_HOSTS", "console.renkou.example.gov.cn"),
            _env("RENKOU_CONSOLE_PUBLIC_ORIGIN", "https://console.renkou.example.gov.cn"),
            # Only the ingress's X-Forwarded-For/-Proto are believed (never "*": a client could then name any address
            # and dodge the per-address login throttle). CHANGE-ME: the ingress controller's pod network.
            _env("RENKOU_CONSOLE_TRUSTED_PROXIES", "10.244.0.0/16"),
            _env("RENKOU_CONSOLE_SECURE_COOKIES", "true"),
        ]
    return env


def _volumes(service: ServiceSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if service.kafka_principal is not None:
        volumes.append({"name": "kafka-ca", "secret": {"secretName": f"{KAFKA_CLUSTER}-cluster-ca-cert"}})
        mounts.append({"name": "kafka-ca", "mountPath": CA_DIR, "readOnly": True})
    if service.name == "projector":
        volumes.append({"name": "anchor-key", "secret": {"secretName": "renkou-audit-anchor-key"}})
        mounts.append({"name": "anchor-key", "mountPath": ANCHOR_KEY_DIR, "readOnly": True})
    if service.name == "query-api":
        # Only the public key file: the query API never holds the signing key.
        volumes.append(
            {
                "name": "anchor-public-key",
                "secret": {
                    "secretName": "renkou-audit-anchor-key",
                    "items": [{"key": "audit-anchor.ed25519.pub.pem", "path": "audit-anchor.ed25519.pub.pem"}],
                },
            }
        )
        mounts.append({"name": "anchor-public-key", "mountPath": ANCHOR_KEY_DIR, "readOnly": True})
    return volumes, mounts


def _deployment(service: ServiceSpec) -> dict[str, Any]:
    volumes, mounts = _volumes(service)
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 3}
    container = {
        "name": service.name,
        "image": IMAGE,
        "command": ["python", "-m", service.module],
        "ports": [{"name": "http", "containerPort": service.port}],
        "env": service_env(service),
        "readinessProbe": probe,
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        "volumeMounts": mounts,
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    }
    labels = {"app.kubernetes.io/name": "renkou", "app.kubernetes.io/component": service.name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(f"renkou-{service.name}", **labels),
        "spec": {
            "replicas": service.replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [container],
                    "volumes": volumes,
                    "automountServiceAccountToken": False,
                },
            },
        },
    }


def _service(service: ServiceSpec) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "renkou", "app.kubernetes.io/component": service.name}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(f"renkou-{service.name}", **labels),
        "spec": {"selector": labels, "ports": [{"name": "http", "port": service.port, "targetPort": "http"}]},
    }


def _migrate_job() -> dict[str, Any]:
    owner = _password_secret(db_roles.OWNER)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta("renkou-migrate"),
        "spec": {
            "backoffLimit": 3,
            "template": {
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "migrate",
                            "image": IMAGE,
                            "command": ["python", "-m", "services.db.migrate"],
                            "env": [
                                _secret_env("PGPASSWORD", owner, "password"),
                                _env(
                                    "RENKOU_DATABASE_URL",
                                    f"postgresql+asyncpg://{db_roles.OWNER}@{PG_HOST}:5432/renkou",
                                ),
                            ],
                        }
                    ],
                }
            },
        },
    }


def _services() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [_migrate_job()]
    for service in SERVICES:
        out.append(_deployment(service))
        if service.exposed:
            out.append(_service(service))
    return out


# --- files -------------------------------------------------------------------------------------------------------

_HEADER: Final = (
    "# Rendered by `python -m services.infra.k8s` from renkou's code; do not edit by hand (the unit tests check the\n"
    "# files are what the code renders). {what}\n"
)

FILES: Final = {
    "kafka.yaml": ("Strimzi: three brokers, a quorum of three controllers, SCRAM-SHA-512 over TLS.", _kafka),
    "topics.yaml": ("Strimzi KafkaTopics from infra/topics.toml: three replicas, two in sync.", _topics),
    "users.yaml": ("Strimzi KafkaUsers with the ACLs of their roles (CONTRACT §10).", _users),
    "postgres.yaml": ("CloudNativePG: a primary and a synchronous standby; the login roles.", _postgres),
    "services.yaml": ("The migration Job, the four services' Deployments, Services for the HTTP APIs.", _services),
}


def render() -> dict[str, str]:
    """Each manifest file's text."""
    out = {}
    for name, (what, build) in FILES.items():
        documents = build()
        body = yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, width=120)
        out[name] = _HEADER.format(what=what) + body
    return out


def write(directory: Path = K8S_DIR) -> list[Path]:
    """Write the manifests into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else K8S_DIR):
        print(path)

"""The Kubernetes manifests (``infra/k8s``, CONTRACT §13) against the code: the committed files are what the code
renders, and their names, ports, roles and environment are those the services use."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from typing import Any

import httpx
import pytest
import yaml

from services.db import roles as db_roles
from services.infra import k8s
from services.infra.topics import load_topics
from services.kafka.auth import GATEWAY, OPERATOR, PROJECTOR, QUERY_API, VIEW_RELAY
from services.kafka.principals import Acl, role_acls
from services.settings import Settings


def _load(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((k8s.K8S_DIR / name).read_text()) if doc]


def _of(kind: str, name: str) -> list[dict[str, Any]]:
    return [doc for doc in _load(name) if doc["kind"] == kind]


def test_the_committed_manifests_are_what_the_code_renders() -> None:
    rendered = k8s.render()
    committed = {path.name: path.read_text() for path in k8s.K8S_DIR.glob("*.yaml")}
    assert committed == rendered, "run `python -m services.infra.k8s` and commit infra/k8s"


def test_kafka_has_three_brokers_three_controllers_scram_over_tls_and_two_in_sync() -> None:
    [pool] = _of("KafkaNodePool", "kafka.yaml")
    [kafka] = _of("Kafka", "kafka.yaml")
    assert pool["spec"]["replicas"] == 3 and set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    [listener] = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] and listener["authentication"] == {"type": "scram-sha-512"}
    assert k8s.KAFKA_BOOTSTRAP.endswith(f":{listener['port']}")
    config = kafka["spec"]["kafka"]["config"]
    assert config["min.insync.replicas"] == 2 and config["default.replication.factor"] == 3
    assert config["allow.everyone.if.no.acl.found"] is False and kafka["spec"]["kafka"]["authorization"]
    assert config["delete.topic.enable"] is False  # the system of record is never deleted


def test_every_topic_of_the_code_with_three_replicas_two_in_sync() -> None:
    topics = {doc["spec"]["topicName"]: doc["spec"] for doc in _of("KafkaTopic", "topics.yaml")}
    expected = {spec.name: spec for spec in load_topics()}
    assert set(topics) == set(expected)
    for name, spec in topics.items():
        assert spec["partitions"] == expected[name].partitions and spec["replicas"] == 3
        assert {k: str(v) for k, v in spec["config"].items()} == {**expected[name].config, "min.insync.replicas": "2"}


# Strimzi's AclOperation names (its KafkaUser CRD): a name outside them would be refused by the User Operator.
STRIMZI_OPERATIONS = {
    "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
    "AlterConfigs", "DescribeConfigs", "IdempotentWrite", "All",
}  # fmt: skip


def _acls(doc: dict[str, Any]) -> list[Acl]:
    """Strimzi's rules read back into the code's bindings."""
    out = []
    for rule in doc["spec"]["authorization"]["acls"]:
        resource = rule["resource"]
        assert resource["type"] in {"topic", "group", "cluster", "transactionalId"}
        assert resource["patternType"] in {"literal", "prefix"}  # Strimzi's names
        for operation in rule["operations"]:
            assert operation in STRIMZI_OPERATIONS, operation
            op = "DESCRIBE_CONFIGS" if operation == "DescribeConfigs" else operation.upper()
            pattern = "PREFIXED" if resource["patternType"] == "prefix" else "LITERAL"
            out.append(Acl(resource["type"].upper(), resource["name"], pattern, op))
    return sorted(out)


def test_each_kafka_user_has_exactly_its_roles_acls() -> None:
    users = {doc["metadata"]["name"]: doc for doc in _of("KafkaUser", "users.yaml")}
    roles = {name: doc["metadata"]["annotations"]["renkou.gov.cn/role"] for name, doc in users.items()}
    assert roles[GATEWAY] == "gateway" and roles[PROJECTOR] == "projector" and roles[VIEW_RELAY] == "view-relay"
    assert {r for r in roles.values() if r.startswith("department:")} == {
        "department:public_security",
        "department:education",
        "department:social_security",
        "department:health",
    }
    for name, doc in users.items():
        assert doc["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert _acls(doc) == role_acls(roles[name]), name


def test_postgres_is_a_primary_and_a_synchronous_standby_with_the_login_roles() -> None:
    [cluster] = _of("Cluster", "postgres.yaml")
    spec = cluster["spec"]
    # Every standby is synchronous: a revocation waits for each (remote_apply) before it returns, and the query API
    # reads from any of them (renkou-db-ro), so none may lag behind it.
    assert spec["instances"] == 2 and spec["postgresql"]["synchronous"]["number"] == spec["instances"] - 1
    assert spec["bootstrap"]["initdb"]["owner"] == db_roles.OWNER
    managed = spec["managed"]["roles"]
    assert [r["name"] for r in managed] == list(db_roles.SERVICE_ROLES)
    assert not any(r["superuser"] or r["replication"] or r["bypassrls"] for r in managed)


# What each service's code connects as (its module names the principal and role it asks for).
EXPECTED = {
    "gateway": ("services.gateway.app", GATEWAY, db_roles.GATEWAY, "gateway_port"),
    "query-api": ("services.query_api.app", QUERY_API, db_roles.QUERY_API, "query_api_port"),
    "projector": ("services.projector.app", PROJECTOR, db_roles.PROJECTOR, "projector_metrics_port"),
    "view-relay": ("services.view_relay.app", VIEW_RELAY, db_roles.VIEW_RELAY, "view_relay_port"),
    "console": ("services.console.app", OPERATOR, db_roles.OPERATOR, "console_port"),
}


KAFKA_CLIENTS = {"console": "services.operations.base"}


async def _answers(app: Any, path: str) -> bool:
    """Whether the app (not started: nothing to reach) has a route at ``path``: anything but 404."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        try:
            response = await client.get(path)
        except Exception:  # a handler that needs the started app: the route exists
            return True
    return response.status_code != 404


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("component", sorted(EXPECTED))
def test_each_deployment_runs_its_service_as_its_own_principal_and_role(component: str) -> None:
    module, principal, role, port_setting = EXPECTED[component]
    [deployment] = [d for d in _of("Deployment", "services.yaml") if d["metadata"]["name"] == f"renkou-{component}"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", module.removesuffix(".app")]
    port = Settings.model_fields[port_setting].default
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    imported = importlib.import_module(module)
    # Where its Kafka clients are made: the app itself, or (the console) the operator tasks it runs.
    source = inspect.getsource(importlib.import_module(KAFKA_CLIENTS.get(component, module)))
    app = imported.create_app(Settings())  # builds the app and connects to nothing
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" and asyncio.run(_answers(app, "/readyz"))
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" and asyncio.run(_answers(app, "/healthz"))
    assert not asyncio.run(_answers(app, "/no-such-probe"))  # the check can tell a missing route
    env = _env(container)
    fields = {f"RENKOU_{name.upper()}" for name in Settings.model_fields}
    assert set(env) - fields == {"PGPASSWORD"}  # libpq's own: the password never stands in the URL
    assert env["RENKOU_BIND_HOST"] == "0.0.0.0"  # noqa: S104 - a pod listens on its own address
    assert env["RENKOU_DATABASE_URL"].startswith(f"postgresql+asyncpg://{role}@")
    if component == "query-api":  # reads from CloudNativePG's standbys, the access log through Kafka (§13)
        assert env["RENKOU_ACCESS_LOG"] == "kafka"
        reads = env["RENKOU_READ_DATABASE_URL"]
        assert reads.startswith(f"postgresql+asyncpg://{role}@/renkou?host=renkou-db-ro.")
        assert "&host=renkou-db-rw." in reads and reads.endswith("&target_session_attrs=prefer-standby")
    assert env["PGPASSWORD"]["secretKeyRef"]["name"].endswith(role.replace("_", "-"))
    if principal is None:
        assert not any(name.startswith("RENKOU_KAFKA") for name in env)
    else:
        assert env["RENKOU_KAFKA_USERNAME"] == principal and principal in source.replace("credentials_for", "")
        assert env["RENKOU_KAFKA_PASSWORD"]["secretKeyRef"] == {"name": principal, "key": "password"}
        assert principal in {doc["metadata"]["name"] for doc in _of("KafkaUser", "users.yaml")}


def test_the_http_apis_have_services_and_a_job_migrates_first() -> None:
    services = {s["metadata"]["name"]: s for s in _of("Service", "services.yaml")}
    assert set(services) == {"renkou-gateway", "renkou-query-api", "renkou-console"}
    assert services["renkou-query-api"]["spec"]["ports"][0]["port"] == Settings.model_fields["query_api_port"].default
    [job] = _of("Job", "services.yaml")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "services.db.migrate"]
    assert _env(container)["RENKOU_DATABASE_URL"].startswith(f"postgresql+asyncpg://{db_roles.OWNER}@")


def test_only_the_projector_holds_the_signing_key() -> None:
    mounts = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["volumes"] for d in _of("Deployment", "services.yaml")
    }
    assert any(
        v.get("secret", {}).get("secretName") == "renkou-audit-anchor-key" and "items" not in v["secret"]
        for v in mounts["renkou-projector"]
    )
    [public] = [v for v in mounts["renkou-query-api"] if "anchor" in v["name"]]
    assert [i["key"] for i in public["secret"]["items"]] == ["audit-anchor.ed25519.pub.pem"]
    for name in ("renkou-gateway", "renkou-view-relay"):
        assert not any("anchor" in v["name"] for v in mounts[name])

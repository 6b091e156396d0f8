"""The two ways renkou runs a broker (the local launcher, docker compose) secure it the same way (CONTRACT §10)."""

from __future__ import annotations

import yaml

from services.settings import project_root

KAFKA = project_root() / "infra" / "kafka"
SECURITY_KEYS = (
    "listener.security.protocol.map",
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "listener.name.client.sasl.enabled.mechanisms",
    "sasl.mechanism.controller.protocol",
    "listener.name.controller.sasl.enabled.mechanisms",
    "authorizer.class.name",
    "allow.everyone.if.no.acl.found",
    "super.users",
    "auto.create.topics.enable",
)


def _properties(name: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (KAFKA / name).read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def test_launcher_and_compose_brokers_have_the_same_security() -> None:
    launcher = _properties("server.properties.in")
    compose = _properties("compose-server.properties")
    rendered = {
        "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "super.users": "User:renkou-admin;User:renkou-controller",
    }
    for key in SECURITY_KEYS:
        expected = launcher[key]
        if "$" in expected:  # filled in per stack by services/infra/kafka.py
            expected = rendered[key]
        assert compose[key] == expected, key
    assert launcher["allow.everyone.if.no.acl.found"] == "false"
    assert "PLAINTEXT://" not in launcher["listeners"] + compose["listeners"]


def test_compose_requires_its_passwords_and_never_trusts() -> None:
    doc = yaml.safe_load((project_root() / "infra" / "docker-compose.yml").read_text())
    postgres = doc["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert postgres["POSTGRES_PASSWORD"].startswith("${RENKOU_PG_SUPERUSER_PASSWORD:?")
    kafka = doc["services"]["kafka"]
    assert "--add-scram" in kafka["command"][-1]
    assert all(port.startswith("127.0.0.1:") for s in doc["services"].values() for port in s["ports"])

"""Apache Kafka (KRaft) from the official jars on Maven Central, run with the machine's Java: one broker, or a
cluster of three on one machine (``renkou up --kafka-brokers 3``; CONTRACT §13).

``infra/kafka/pom.xml`` names the broker; Maven copies its runtime classpath to ``infra/kafka/target/lib``
once (and caches it in ``~/.m2``). Each node's storage directory is formatted once with
``kafka.tools.StorageTool`` (one cluster ID for all); each node then runs as ``kafka.Kafka server.properties`` in
the background, bound to 127.0.0.1, as broker and as one of the controller quorum's voters. With three, topics
get three replicas and ``min.insync.replicas=2``: a write acknowledged to an ``acks=all`` producer survives the
loss of any one broker, and the cluster goes on serving with two.

The broker is secured (CONTRACT §10): SASL/SCRAM-SHA-512 on the client listener (TLS too when the stack has
``RENKOU_KAFKA_TLS=1``), SASL/PLAIN on the loopback controller listener, Kafka's ``StandardAuthorizer`` with no
access unless an ACL grants it. The admin's SCRAM credential is written into the metadata when the storage is
formatted (``--add-scram``); its password and the controller's live in ``<state_dir>/secrets/kafka`` (0600).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from base64 import urlsafe_b64encode
from string import Template

from services.infra.ports import BROKERS_FILE, StackLayout, port_open
from services.infra.process import InfraError, alive, is_ours, spawn, tail, terminate
from services.kafka.auth import (
    ADMIN,
    KafkaCredentials,
    bootstrap_servers,
    new_password,
    save_credentials,
    stored_credentials,
    write_private,
)
from services.settings import project_root

KAFKA_DIR = project_root() / "infra" / "kafka"
LIB_DIR = KAFKA_DIR / "target" / "lib"
HEAP = "-Xmx1g"
CONTROLLER = "renkou-controller"  # the controller listener's static SASL/PLAIN principal (never a client)


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise InfraError("java not found: install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    if match is None or int(match.group(1)) < 17:
        raise InfraError(f"Kafka 4 needs Java 17 or newer; `java -version` says: {out.strip().splitlines()[0]}")
    return java


def kafka_version() -> str:
    jars = sorted(LIB_DIR.glob("kafka_2.13-*.jar"))
    return jars[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else "?"


def ensure_jars() -> None:
    """Resolve the broker's jars from Maven Central into ``infra/kafka/target/lib`` unless already there."""
    if any(LIB_DIR.glob("kafka_2.13-*.jar")):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError("mvn not found: install Maven (Debian: apt-get install maven) to fetch the Kafka jars")
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"), "dependency:copy-dependencies"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(LIB_DIR.glob("kafka_2.13-*.jar")):
        raise InfraError(f"Maven could not resolve the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


class KafkaServer:
    """One broker (``node``, 1-based) of a stack: node 1's files live under ``<state_dir>/kafka``, node N's under
    ``<state_dir>/kafka-N``."""

    def __init__(self, layout: StackLayout, node: int = 1) -> None:
        self.layout = layout
        self.node = node
        self.port, self.controller_port = layout.broker_ports(node)
        self.home = layout.state_dir / ("kafka" if node == 1 else f"kafka-{node}")
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"
        self.config = self.home / "server.properties"
        self.pid_file = self.home / "kafka.pid"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java_args(self, main: str, *args: str) -> list[str]:
        return [
            _java(),
            HEAP,
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
            "-cp",
            f"{LIB_DIR}/*",
            main,
            *args,
        ]

    def pid(self) -> int | None:
        return is_ours(self.pid_file, str(self.config))

    def admin_credentials(self) -> KafkaCredentials | None:
        """The cluster's super user, as ``renkou up`` stored it (None before the first start)."""
        return stored_credentials(self.layout.state_dir, ADMIN, tls=self.layout.kafka_tls)

    def _ensure_secrets(self) -> tuple[KafkaCredentials, KafkaCredentials]:
        """The admin's and the controller's credentials, created once per stack."""
        state = self.layout.state_dir
        formatted = (self.data_dir / "meta.properties").exists()
        for name, role in ((ADMIN, "admin"), (CONTROLLER, "controller")):
            if stored_credentials(state, name) is None:
                if formatted:
                    raise InfraError(
                        f"the Kafka storage in {self.data_dir} was formatted before this stack kept credentials "
                        f"(an unsecured broker of an older renkou); remove {self.home} (make clean) to start a "
                        "secured one"
                    )
                save_credentials(state, name, new_password(), role)
        admin, controller = stored_credentials(state, ADMIN), stored_credentials(state, CONTROLLER)
        assert admin is not None and controller is not None
        return admin, controller

    def _render_config(self) -> None:
        admin, controller = self._ensure_secrets()
        tls_settings = ""
        if self.layout.kafka_tls:
            from services.infra.tls import ensure_local_ca

            ca, keystore = ensure_local_ca(self.layout.state_dir)
            tls_settings = (
                "# TLS on the client listener (RENKOU_KAFKA_TLS=1), with the local CA renkou up created.\n"
                f"ssl.keystore.type=PEM\nssl.keystore.location={keystore}\n"
                f"ssl.truststore.type=PEM\nssl.truststore.location={ca}\n"
                "ssl.endpoint.identification.algorithm=https\n"
            )
        template = Template((KAFKA_DIR / "server.properties.in").read_text())
        count = self.layout.kafka_brokers
        voters = ",".join(f"{n}@127.0.0.1:{self.layout.broker_ports(n)[1]}" for n in range(1, count + 1))
        write_private(
            self.config,
            template.substitute(
                node_id=self.node,
                voters=voters,
                replication_factor=min(count, 3),
                min_isr=2 if count >= 3 else 1,
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.data_dir,
                client_protocol="SASL_SSL" if self.layout.kafka_tls else "SASL_PLAINTEXT",
                admin_user=admin.username,
                admin_password=admin.password,
                controller_user=controller.username,
                controller_password=controller.password,
                tls_settings=tls_settings,
            ),
        )

    def _format(self, cluster_id: str) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        admin, _ = self._ensure_secrets()
        scram = f"SCRAM-SHA-512=[name={admin.username},password={admin.password}]"
        # The main class and its arguments go through a private @argfile (the java launcher reads it): a password
        # on the command line would be readable by anyone on the machine (ps).
        argfile = self.home / "format.args"
        arguments = ("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config), "--add-scram")
        write_private(argfile, "".join(f'"{a}"\n' for a in (*arguments, scram)))
        try:
            result = subprocess.run(
                self._java_args(f"@{argfile}"),  # the main class too: only then are its arguments read from the file
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            argfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise InfraError(f"kafka-storage format failed:\n{result.stdout}{result.stderr}")

    def _adopt_admin(self) -> None:
        """A broker started elsewhere (infra/docker-compose.yml) names its admin's password in
        ``RENKOU_KAFKA_ADMIN_PASSWORD``: keep it like our own, once."""
        password = os.environ.get("RENKOU_KAFKA_ADMIN_PASSWORD")
        if password and stored_credentials(self.layout.state_dir, ADMIN) is None:
            save_credentials(self.layout.state_dir, ADMIN, password, "admin")

    def prepare(self, cluster_id: str) -> None:
        """Render the node's configuration and format its storage (once)."""
        for port in (self.port, self.controller_port):
            if port_open(port):
                raise InfraError(
                    f"port {port} is already in use by a process this stack did not start; stop it or point "
                    "RENKOU_KAFKA_BOOTSTRAP at another port"
                )
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._render_config()
        self._format(cluster_id)

    def spawn(self) -> int:
        return spawn(
            self._java_args("kafka.Kafka", str(self.config)),
            log_file=self.log_dir / "stdout.log",
            pid_file=self.pid_file,
        )

    def stop(self) -> bool:
        """Stop the broker if we started it; return whether anything was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        terminate(pid, timeout=60.0)
        self.pid_file.unlink(missing_ok=True)
        return True


class KafkaCluster:
    """A stack's Kafka: ``layout.kafka_brokers`` nodes, each broker and controller, started and stopped together."""

    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout
        self.nodes = [KafkaServer(layout, n) for n in range(1, layout.kafka_brokers + 1)]
        self.home = self.nodes[0].home
        self.log_dir = self.nodes[0].log_dir

    def pid(self) -> int | None:
        """The first node's PID (the stack counts as running while any node is ours)."""
        return next((pid for pid in (n.pid() for n in self.nodes) if pid is not None), None)

    def admin_credentials(self) -> KafkaCredentials | None:
        return self.nodes[0].admin_credentials()

    def _cluster_id(self) -> str:
        """One ID for every node of the cluster, made once and kept with node 1."""
        path = self.home / "cluster-id"
        if path.exists():
            return path.read_text().strip()
        cluster_id = "-"
        while cluster_id.startswith("-"):  # as Kafka's own Uuid.randomUuid: a leading '-' reads as an option
            cluster_id = urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self.home.mkdir(parents=True, exist_ok=True)
        path.write_text(cluster_id + "\n")
        return cluster_id

    def start(self, timeout: float = 120.0) -> bool:
        """Start every node that is not running; return whether any was started now."""
        first = self.nodes[0]
        if all(n.pid() is not None for n in self.nodes):
            return False
        first._adopt_admin()
        if (
            self.layout.kafka_brokers == 1
            and first.pid() is None
            and port_open(first.port)
            and asyncio.run(broker_answers(self.layout.kafka_bootstrap, self.admin_credentials()))
        ):
            return False  # a broker we did not start (docker compose, a shared one) already serves: use it
        ensure_jars()
        waiting = [n for n in self.nodes if n.pid() is None]
        if not (first.data_dir / "meta.properties").exists():
            # An older stack's broker was formatted with an ID of its own, not kept here: only new ones get one.
            cluster_id = self._cluster_id()
        else:
            cluster_id = self._cluster_id() if (self.home / "cluster-id").exists() else ""
        for node in waiting:
            if not (node.data_dir / "meta.properties").exists() and not cluster_id:
                raise InfraError(f"{node.home} is not formatted and the cluster's ID is unknown: make clean")
            node.prepare(cluster_id)
        (self.layout.state_dir / BROKERS_FILE).write_text(f"{self.layout.kafka_brokers}\n")
        pids = {node: node.spawn() for node in waiting}
        self._wait_ready(pids, timeout)
        return True

    def _wait_ready(self, pids: dict[KafkaServer, int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node, pid in pids.items():
                if not alive(pid):
                    raise InfraError(
                        f"Kafka broker {node.node} exited during start-up; last log lines:\n"
                        f"{tail(node.log_dir / 'stdout.log')}"
                    )
            if asyncio.run(cluster_brokers(self.layout.kafka_bootstrap, self.admin_credentials())) >= len(self.nodes):
                return
            time.sleep(0.5)
        raise InfraError(f"Kafka did not answer within {timeout:.0f}s; see {self.log_dir / 'server.log'}")

    def stop(self) -> bool:
        """Stop every node we started, all at once (the last controller alone would wait for a quorum); return
        whether anything was stopped."""
        running = [(node, pid) for node, pid in self.brokers() if pid is not None]
        for _, pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        stopped = [node.stop() for node in reversed(self.nodes)]
        return any(stopped)

    def brokers(self) -> list[tuple[KafkaServer, int | None]]:
        """Each node with its PID (None: not running)."""
        return [(node, node.pid()) for node in self.nodes]


async def cluster_brokers(bootstrap: str, credentials: KafkaCredentials | None, wait_s: float = 5.0) -> int:
    """How many brokers the cluster at ``bootstrap`` reports alive (0 if none answers)."""
    from aiokafka.admin import AIOKafkaAdminClient

    options = credentials.aiokafka_options() if credentials is not None else {}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers(bootstrap), request_timeout_ms=int(wait_s * 1000), **options
    )
    try:
        await asyncio.wait_for(admin.start(), wait_s)
        cluster = await asyncio.wait_for(admin.describe_cluster(), wait_s)
    except Exception:
        return 0
    finally:
        await admin.close()
    return len(cluster.get("brokers", ()))


async def broker_answers(bootstrap: str, credentials: KafkaCredentials | None, wait_s: float = 5.0) -> bool:
    """Whether a Kafka broker at ``bootstrap`` answers a metadata request from ``credentials``' principal."""
    return await cluster_brokers(bootstrap, credentials, wait_s) > 0

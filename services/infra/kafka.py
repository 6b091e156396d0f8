"""A single-node Apache Kafka (KRaft) from the official jars on Maven Central, run with the machine's Java.

``infra/kafka/pom.xml`` names the broker; Maven copies its runtime classpath to ``infra/kafka/target/lib``
once (and caches it in ``~/.m2``). The storage directory is formatted once with ``kafka.tools.StorageTool``;
the broker then runs as ``kafka.Kafka server.properties`` in the background, bound to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
import uuid
from base64 import urlsafe_b64encode
from string import Template

from services.infra.ports import StackLayout, port_open
from services.infra.process import InfraError, alive, is_ours, spawn, tail, terminate
from services.settings import project_root

KAFKA_DIR = project_root() / "infra" / "kafka"
LIB_DIR = KAFKA_DIR / "target" / "lib"
HEAP = "-Xmx1g"


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
    """The broker of one stack: its files live under ``<state_dir>/kafka``."""

    def __init__(self, layout: StackLayout) -> None:
        self.layout = layout
        self.home = layout.state_dir / "kafka"
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"
        self.config = self.home / "server.properties"
        self.pid_file = self.home / "kafka.pid"

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

    def _render_config(self) -> None:
        template = Template((KAFKA_DIR / "server.properties.in").read_text())
        self.config.write_text(
            template.substitute(
                port=self.layout.kafka_port,
                controller_port=self.layout.controller_port,
                data_dir=self.data_dir,
            )
        )

    def _format(self) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            self._java_args("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config)),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(f"kafka-storage format failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 90.0) -> bool:
        """Start the broker unless ours already runs; return whether it was started now."""
        if self.pid() is not None:
            return False
        if port_open(self.layout.kafka_port) and asyncio.run(broker_answers(self.layout.kafka_bootstrap)):
            return False  # a broker we did not start (docker compose, a shared one) already serves: use it
        for port in (self.layout.kafka_port, self.layout.controller_port):
            if port_open(port):
                raise InfraError(
                    f"port {port} is already in use by a process this stack did not start; stop it or point "
                    "RENKOU_KAFKA_BOOTSTRAP at another port"
                )
        ensure_jars()
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._render_config()
        self._format()
        pid = spawn(
            self._java_args("kafka.Kafka", str(self.config)),
            log_file=self.log_dir / "stdout.log",
            pid_file=self.pid_file,
        )
        self._wait_ready(pid, timeout)
        return True

    def _wait_ready(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                raise InfraError(f"Kafka exited during start-up; last log lines:\n{tail(self.log_dir / 'stdout.log')}")
            if port_open(self.layout.kafka_port) and asyncio.run(broker_answers(self.layout.kafka_bootstrap)):
                return
            time.sleep(0.5)
        raise InfraError(f"Kafka did not answer within {timeout:.0f}s; see {self.log_dir / 'server.log'}")

    def stop(self) -> bool:
        """Stop the broker if we started it; return whether anything was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        terminate(pid, timeout=60.0)
        self.pid_file.unlink(missing_ok=True)
        return True


async def broker_answers(bootstrap: str, wait_s: float = 5.0) -> bool:
    """Whether a Kafka broker at ``bootstrap`` answers a metadata request."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), wait_s)
        await asyncio.wait_for(admin.list_topics(), wait_s)
    except Exception:
        return False
    finally:
        await admin.close()
    return True

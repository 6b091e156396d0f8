"""The local stack as a whole: Kafka and PostgreSQL up, topics and schema in place; and down again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.db.migrate import current_revision, head_revision, upgrade
from services.identity.local_idp import ensure_keys
from services.infra.kafka import KafkaCluster, broker_answers, kafka_version
from services.infra.ports import StackLayout
from services.infra.postgres import PostgresServer, PostgresStandby, configure_standby, server_version
from services.infra.process import InfraError
from services.infra.topics import ensure_topics, load_topics
from services.kafka.auth import KafkaCredentials
from services.kafka.principals import ensure_stack_principals


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    endpoint: str
    running: bool
    pid: int | None
    detail: str


class LocalStack:
    """One stack of servers described by a :class:`StackLayout`."""

    def __init__(self, layout: StackLayout, *, namespace: str = "", partitions: int | None = None) -> None:
        self.layout = layout
        self.kafka = KafkaCluster(layout)
        self.postgres = PostgresServer(layout)
        self.standby = PostgresStandby(layout) if layout.pg_standby else None
        self.namespace = namespace
        self.partitions = partitions

    def up(self) -> list[str]:
        """Start what is not running, create missing topics, migrate; return what was done, in words."""
        done: list[str] = []
        primary_serves = self.standby is None or not self.standby.promoted  # after a failover it stays fenced
        if primary_serves and self.postgres.start():
            done.append(f"started PostgreSQL {server_version()} on 127.0.0.1:{self.layout.pg_port}")
        if self.standby is not None:
            configure_standby(self.layout.state_dir)
            if self.standby.start():
                role = "the primary since the failover" if self.standby.promoted else "a synchronous hot standby"
                done.append(f"started PostgreSQL on 127.0.0.1:{self.layout.pg_standby_port}: {role}")
        if self.kafka.start():
            brokers = self.layout.kafka_brokers
            what = "one broker" if brokers == 1 else f"{brokers} brokers, a quorum of {brokers} controllers"
            done.append(f"started Kafka {kafka_version()} (KRaft, {what}) on {self.layout.kafka_bootstrap}")
        admin = self.kafka.admin_credentials()
        specs = load_topics(namespace=self.namespace, partitions=self.partitions, brokers=self.layout.kafka_brokers)
        created = asyncio.run(ensure_topics(self.layout.kafka_bootstrap, specs, admin))
        if created:
            done.append(f"created topics: {', '.join(created)}")
        added = self.ensure_principals(admin)
        if added:
            done.append(f"created Kafka principals: {', '.join(added)}")
        if ensure_keys(self.layout.state_dir):
            done.append("made the local identity provider's signing key (renkou citizens token ID)")
        before = asyncio.run(current_revision(self.layout.database_url))
        asyncio.run(upgrade(self.layout.database_url))
        after = asyncio.run(current_revision(self.layout.database_url))
        if before != after:
            done.append(f"migrated the database from {before or 'empty'} to {after}")
        return done

    def ensure_principals(self, admin: KafkaCredentials | None) -> list[str]:
        """Every stack principal (§10) with its stored password and its role's ACLs; return those created now."""
        return ensure_stack_principals(self.layout.kafka_bootstrap, admin, self.layout.state_dir, self.namespace)

    def down(self) -> list[str]:
        """Stop what this stack started (by PID file); return what was stopped."""
        done = []
        if self.kafka.stop():
            done.append("stopped Kafka")
        if self.standby is not None and self.standby.stop():
            done.append("stopped the PostgreSQL standby")
        if self.postgres.stop():
            done.append("stopped PostgreSQL")
        return done

    def failover(self) -> list[str]:
        """Fence the primary (stopped at once if it still runs) and promote the standby; clients that name both
        servers with ``target_session_attrs=read-write`` connect to it from their next connection on."""
        if self.standby is None:
            raise InfraError("this stack has no PostgreSQL standby to fail over to (renkou up --pg-standby)")
        if self.standby.promoted:
            return ["already failed over: the standby is the primary"]
        if not self.standby.running():
            raise InfraError("the standby is not running: nothing to promote")
        done = []
        if self.postgres.fence():
            done.append("stopped the old primary")
        done.append("fenced the old primary: started again, it comes up read-only (standby.signal)")
        self.standby.promote()
        done.append(f"promoted the standby on 127.0.0.1:{self.layout.pg_standby_port} to primary")
        return done

    def release_standby(self) -> list[str]:
        """The standby is lost: the primary stops waiting for it (see ``PostgresStandby.release``)."""
        if self.standby is None:
            raise InfraError("this stack has no PostgreSQL standby (renkou up --pg-standby)")
        if self.standby.promoted:
            raise InfraError("the standby was promoted: it is the primary, and waits for no standby")
        if not self.standby.release():
            return ["the primary was not waiting for the standby"]
        return [
            "the primary no longer waits for the standby: each commit is on the primary alone until the standby "
            "streams again (renkou up --pg-standby starts it and makes it synchronous once more)"
        ]

    def status(self) -> list[ServiceStatus]:
        """One line per Kafka broker and one for PostgreSQL."""
        admin = self.kafka.admin_credentials()
        rows = []
        for node, pid in self.kafka.brokers():
            ok = pid is not None and asyncio.run(broker_answers(node.address, admin))
            name = "kafka" if self.layout.kafka_brokers == 1 else f"kafka broker {node.node}"
            detail = f"Kafka {kafka_version()}" if ok else "not running"
            if ok and self.layout.kafka_brokers > 1:
                detail += f", node.id {node.node}, controller 127.0.0.1:{node.controller_port}"
            rows.append(ServiceStatus(name, node.address, ok, pid, detail))
        pg_pid = self.postgres.pid()
        promoted = self.standby is not None and self.standby.promoted
        detail = "not running"
        if pg_pid is not None or promoted:
            try:
                rev = asyncio.run(current_revision(self.layout.database_url))
            except OSError as exc:
                detail = f"unreachable ({exc.__class__.__name__})"
            else:
                detail = f"schema {rev or 'empty'} (code head {head_revision()})"
        if not promoted:
            name = "postgresql" if self.standby is None else "postgresql primary"
            rows.append(ServiceStatus(name, f"127.0.0.1:{self.layout.pg_port}", pg_pid is not None, pg_pid, detail))
        elif pg_pid is not None:
            # After a failover the old primary must stay down: running, it is a second server taking writes.
            rows.append(
                ServiceStatus("postgresql old primary", f"127.0.0.1:{self.layout.pg_port}", False, pg_pid, "RUNNING")
            )
        if self.standby is not None:
            pid = self.standby.pid()
            if promoted:
                rows.append(
                    ServiceStatus(
                        "postgresql primary (promoted)",
                        f"127.0.0.1:{self.layout.pg_standby_port}",
                        pid is not None,
                        pid,
                        detail if pid is not None else "not running",
                    )
                )
            else:
                # Down or not, what the primary makes of it: whether writes wait for it.
                state = asyncio.run(self.standby.replication())
                if pid is None:
                    state = f"not running; {state}"
                rows.append(
                    ServiceStatus(
                        "postgresql standby", f"127.0.0.1:{self.layout.pg_standby_port}", pid is not None, pid, state
                    )
                )
        return rows

"""Kafka principals and their roles (CONTRACT §10): SCRAM users and the ACLs each role needs, nothing more.

A role is what a principal may do, written as ACL bindings for Kafka's ``StandardAuthorizer``:

==========================  ===================================================================================
``department:<department>``  write (and describe) its own department topic
``gateway``                  write the four department topics and the dead letters
``projector``                read the department topics in its consumer group; write dead letters and anchors
``view-relay``               write the view topic; create and write the per-consumer view topics
``query-api``                write and read the access-log topic (reads from a standby, §13), in its relay's
                             group; write dead letters
``consumer:<grant name>``    read its own view topic ``population.resident_view.v1.<grant name>`` (§11), in
                             consumer groups named after it
``auditor``                  read the anchor topic
``operator``                 read and write renkou's topics (replay, verify, re-drive, status), describe groups
==========================  ===================================================================================

Every binding is for the topics of one namespace (empty in production; tests prefix their own), so a test's
principals reach only its own topics. The functions talking to the cluster use confluent-kafka's admin client
(librdkafka implements SCRAM credential upserts and ACLs; aiokafka's admin client does neither). They block:
call them from a thread in async code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from events import (
    ACCESS_LOG_TOPIC,
    ANCHOR_TOPIC,
    DEAD_LETTER_TOPIC,
    RESIDENT_VIEW_TOPIC,
    consumer_view_topic,
    department_topics,
    topic_for,
)
from events.fields import DEPARTMENTS
from services.kafka.auth import (
    AUDITOR,
    DEMO_CONSUMER,
    GATEWAY,
    OPERATOR,
    PROJECTOR,
    QUERY_API,
    VIEW_RELAY,
    demo_department_principal,
    new_password,
    save_credentials,
    stored_credentials,
)

if TYPE_CHECKING:
    from services.kafka.auth import KafkaCredentials

PROJECTOR_GROUP = "renkou-projector.resident_view"
ACCESS_LOG_GROUP = "renkou-query-api.access_log"
SCRAM_ITERATIONS = 8192
FIXED_ROLES = ("gateway", "projector", "view-relay", "query-api", "auditor", "operator")
# The principals every stack has, with their roles: `renkou up` creates them and keeps their passwords.
STACK_PRINCIPALS: tuple[tuple[str, str], ...] = (
    (GATEWAY, "gateway"),
    (PROJECTOR, "projector"),
    (VIEW_RELAY, "view-relay"),
    (QUERY_API, "query-api"),
    (OPERATOR, "operator"),
    (AUDITOR, "auditor"),
    *((demo_department_principal(d), f"department:{d}") for d in DEPARTMENTS),
    (DEMO_CONSUMER, f"consumer:{DEMO_CONSUMER}"),
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class PrincipalError(Exception):
    """A principal or role that cannot be (bad name, unknown role, the cluster refused)."""


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding: ``operation`` on a resource (``TOPIC``/``GROUP``/``CLUSTER``) named literally or by
    prefix."""

    resource: str
    name: str
    pattern: str  # LITERAL or PREFIXED
    operation: str


def check_name(name: str) -> str:
    """A principal name: letters, digits, ``.``, ``_``, ``-``; at most 100 characters."""
    if not _NAME.match(name):
        raise PrincipalError(
            f"{name!r} cannot name a Kafka principal: use letters, digits, '.', '_' and '-' (at most 100)"
        )
    return name


def check_role(role: str) -> str:
    """``role`` if it is one of §10's roles (``department:<d>``, ``consumer:<grant>`` or a fixed one)."""
    kind, _, argument = role.partition(":")
    if kind == "department" and argument in DEPARTMENTS:
        return role
    if kind == "consumer" and argument and _NAME.match(argument):
        return role
    if role in FIXED_ROLES:
        return role
    raise PrincipalError(
        f"unknown role {role!r}: choose department:<{'|'.join(DEPARTMENTS)}>, consumer:<grant name>, "
        f"or one of {', '.join(FIXED_ROLES)}"
    )


def _topic(ns: str, name: str, *operations: str, pattern: str = "LITERAL") -> list[Acl]:
    return [Acl("TOPIC", ns + name, pattern, op) for op in operations]


def role_acls(role: str, namespace: str = "") -> list[Acl]:
    """The bindings of ``role`` over the topics of ``namespace`` — the whole of what it may do."""
    check_role(role)
    ns = namespace
    kind, _, argument = role.partition(":")
    topics = department_topics()
    acls: list[Acl] = []
    if kind == "department":
        acls += _topic(ns, topic_for(argument), "WRITE", "DESCRIBE")  # type: ignore[arg-type]
    elif kind == "consumer":
        acls += _topic(ns, consumer_view_topic(argument), "READ", "DESCRIBE")
        acls += [Acl("GROUP", f"{ns}{argument}", "PREFIXED", op) for op in ("READ", "DESCRIBE")]
    elif role == "gateway":
        for topic in (*topics, DEAD_LETTER_TOPIC):
            acls += _topic(ns, topic, "WRITE", "DESCRIBE")
    elif role == "projector":
        for topic in topics:
            acls += _topic(ns, topic, "READ", "DESCRIBE")
        acls += [Acl("GROUP", ns + PROJECTOR_GROUP, "LITERAL", op) for op in ("READ", "DESCRIBE")]
        acls += _topic(ns, DEAD_LETTER_TOPIC, "WRITE", "DESCRIBE")
        # Anchors: written, and the latest read back (an anchor follows its predecessor; a database rolled back
        # behind Kafka's latest anchor is refused).
        acls += _topic(ns, ANCHOR_TOPIC, "READ", "WRITE", "DESCRIBE")
    elif role == "view-relay":
        acls += _topic(ns, RESIDENT_VIEW_TOPIC, "WRITE", "DESCRIBE")
        # The consumers' own view topics: created by the relay when it first finds their grant.
        acls += _topic(ns, consumer_view_topic(""), "CREATE", "WRITE", "DESCRIBE", pattern="PREFIXED")
    elif role == "query-api":
        # Entries appended before a read is answered, and chained into PostgreSQL by the relay's group.
        acls += _topic(ns, ACCESS_LOG_TOPIC, "READ", "WRITE", "DESCRIBE")
        acls += [Acl("GROUP", ns + ACCESS_LOG_GROUP, "LITERAL", op) for op in ("READ", "DESCRIBE")]
        acls += _topic(ns, DEAD_LETTER_TOPIC, "WRITE", "DESCRIBE")  # a record the relay cannot chain
    elif role == "auditor":
        acls += _topic(ns, ANCHOR_TOPIC, "READ", "DESCRIBE")
    elif role == "operator":
        acls += _topic(ns, "population.", "READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", pattern="PREFIXED")
        acls += [Acl("GROUP", ns + PROJECTOR_GROUP, "LITERAL", "DESCRIBE")]
    return sorted(set(acls))


def infer_role(acls: Iterable[Acl], namespace: str = "") -> str | None:
    """The role whose bindings are exactly ``acls`` (None when they match no role: edited by hand)."""
    have = sorted(set(acls))
    candidates = [*FIXED_ROLES, *(f"department:{d}" for d in DEPARTMENTS)]
    prefix = namespace + consumer_view_topic("")
    candidates += [
        f"consumer:{a.name[len(prefix) :]}" for a in have if a.resource == "TOPIC" and a.name.startswith(prefix)
    ]
    for role in candidates:
        try:
            if role_acls(role, namespace) == have:
                return role
        except PrincipalError:
            continue
    return None


# --- the cluster ---------------------------------------------------------------------------------------------
def _admin(bootstrap: str, credentials: KafkaCredentials | None) -> Any:
    from confluent_kafka.admin import AdminClient

    config: dict[str, str] = {"bootstrap.servers": bootstrap, "socket.timeout.ms": "10000"}
    if credentials is not None:
        config.update(credentials.confluent_config())
    return AdminClient(config)


def _binding(principal: str, acl: Acl, *, filter_: bool = False) -> Any:
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return (AclBindingFilter if filter_ else AclBinding)(
        ResourceType[acl.resource],
        acl.name,
        ResourcePatternType[acl.pattern],
        f"User:{principal}",
        "*",
        AclOperation[acl.operation],
        AclPermissionType.ALLOW,
    )


def _wait(futures: Any, what: str) -> None:
    from confluent_kafka import KafkaException

    for future in futures.values() if isinstance(futures, dict) else futures:
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            raise PrincipalError(f"{what}: {exc.args[0].str() if exc.args else exc}") from exc


def upsert_users(bootstrap: str, admin: KafkaCredentials | None, users: Sequence[tuple[str, str]]) -> None:
    """Create each ``(username, password)`` or set its password (SCRAM-SHA-512: the broker keeps salted keys)."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [UserScramCredentialUpsertion(check_name(name), info, password.encode()) for name, password in users]
    if upserts:
        client = _admin(bootstrap, admin)
        _wait(client.alter_user_scram_credentials(upserts), "cannot set SCRAM credentials")


def grant_role(
    bootstrap: str, admin: KafkaCredentials | None, principals: Sequence[tuple[str, str]], namespace: str = ""
) -> int:
    """Give each ``(principal, role)`` its role's bindings in ``namespace``; return how many bindings."""
    wanted = {(name, acl) for name, role in principals for acl in role_acls(role, namespace)}
    if wanted:
        client = _admin(bootstrap, admin)  # held while the futures resolve: a collected client cancels them
        _wait(client.create_acls([_binding(name, acl) for name, acl in sorted(wanted)]), "cannot create ACLs")
        _until_visible(client, wanted)
    return len(wanted)


def _until_visible(client: Any, wanted: set[tuple[str, Acl]], wait_s: float = 15.0) -> None:
    """Return once the broker authorises with every binding of ``wanted``: the controller commits new ACLs
    first, the broker's authorizer applies them a moment later, and a client arriving in between is refused."""
    deadline = time.monotonic() + wait_s
    while True:
        have = set(_principal_acls(client, namespaced=True))
        missing = wanted - have
        if not missing:
            return
        if time.monotonic() > deadline:
            raise PrincipalError(f"{len(missing)} ACL bindings not in force after {wait_s:.0f}s")
        time.sleep(0.05)


def ensure_stack_principals(
    bootstrap: str, admin: KafkaCredentials | None, state_dir: Path, namespace: str = ""
) -> list[str]:
    """Every stack principal with the password stored under ``state_dir`` (a new one when none is) and its
    role's ACLs in ``namespace``; return the principals created now.

    Idempotent: stored passwords are set again (a re-formatted broker gets them back), existing bindings stay.
    """
    added, users = [], []
    for name, role in STACK_PRINCIPALS:
        stored = stored_credentials(state_dir, name)
        if stored is None:
            save_credentials(state_dir, name, new_password(), role)
            stored = stored_credentials(state_dir, name)
            added.append(name)
        assert stored is not None
        users.append((name, stored.password))
    upsert_users(bootstrap, admin, users)
    grant_role(bootstrap, admin, STACK_PRINCIPALS, namespace)
    return added


def revoke_roles(
    bootstrap: str, admin: KafkaCredentials | None, principals: Sequence[tuple[str, str]], namespace: str
) -> None:
    """Delete the bindings that ``grant_role`` gave each ``(principal, role)`` in ``namespace``."""
    filters = [_binding(name, acl, filter_=True) for name, role in principals for acl in role_acls(role, namespace)]
    if filters:
        client = _admin(bootstrap, admin)
        _wait(client.delete_acls(filters), "cannot remove ACLs")


def remove_bindings(bootstrap: str, admin: KafkaCredentials | None, principal: str) -> None:
    """Delete every ACL binding of ``principal``, in every namespace."""
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    everything = AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        f"User:{principal}",
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    client = _admin(bootstrap, admin)
    _wait(client.delete_acls([everything]), f"cannot remove the ACLs of {principal}")


def _in_production(name: str) -> bool:
    # The contract's own resources: names that no test or benchmark namespace (``t<hex>.``) prefixes.
    return not re.match(r"^[a-z0-9]+\.population\.", name) and not re.match(r"^[a-z0-9]+\.renkou-", name)


@dataclass(frozen=True)
class Principal:
    name: str
    role: str | None  # None: its bindings match no role (edited by hand) or it has none
    acls: tuple[Acl, ...]


def list_principals(bootstrap: str, admin: KafkaCredentials | None) -> list[Principal]:
    """Every SCRAM user of the cluster with the role its production bindings amount to."""
    from confluent_kafka import KafkaException

    client = _admin(bootstrap, admin)
    try:
        described = client.describe_user_scram_credentials().result(timeout=30)
    except KafkaException as exc:
        raise PrincipalError(f"cannot list users: {exc.args[0].str() if exc.args else exc}") from exc
    by_principal: dict[str, list[Acl]] = {}
    for acl_principal, acl in _principal_acls(client):
        by_principal.setdefault(acl_principal, []).append(acl)
    return [
        Principal(name, infer_role(by_principal.get(name, [])), tuple(sorted(by_principal.get(name, []))))
        for name in sorted(described)
    ]


def _principal_acls(client: Any, *, namespaced: bool = False) -> list[tuple[str, Acl]]:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    flt = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    try:
        bindings = client.describe_acls(flt).result(timeout=30)
    except KafkaException as exc:
        raise PrincipalError(f"cannot list ACLs: {exc.args[0].str() if exc.args else exc}") from exc
    return [
        (b.principal.removeprefix("User:"), Acl(b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name))
        for b in bindings
        if namespaced or _in_production(b.name)
    ]


def remove_user(bootstrap: str, admin: KafkaCredentials | None, username: str) -> None:
    """Delete ``username``'s SCRAM credential and every binding it holds."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ScramMechanism, UserScramCredentialDeletion

    client = _admin(bootstrap, admin)
    try:
        known = client.describe_user_scram_credentials().result(timeout=30)
    except KafkaException as exc:
        raise PrincipalError(f"cannot list users: {exc.args[0].str() if exc.args else exc}") from exc
    if username not in known:
        raise PrincipalError(f"no Kafka principal named {username!r}")
    remove_bindings(bootstrap, admin, username)
    deletion = UserScramCredentialDeletion(username, ScramMechanism.SCRAM_SHA_512)
    _wait(client.alter_user_scram_credentials([deletion]), f"cannot remove {username}")

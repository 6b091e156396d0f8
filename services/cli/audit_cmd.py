"""``renkou audit timeline|verify|anchor|public-key``: the archive and the access log, for auditors.

``verify`` recomputes every hash chain and checks every chain against the latest signed anchor on
``population.audit_anchor.v1`` (``--log``: every archived event against its Kafka record too).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import asyncpg
import typer
from aiokafka.errors import KafkaError
from rich import box
from rich.console import Console
from rich.table import Table

from services.anchor.keys import AnchorKeyError, trusted_public_key
from services.anchor.record import key_id, public_jwk, public_pem
from services.cli.common import citizen_id_arg, fail, print_json
from services.cli.ops_cmd import run_operation
from services.db.roles import OWNER
from services.grants import GrantError, validate_purposes
from services.kafka.auth import OPERATOR
from services.operations.anchor_check import AnchorReport, Finding, LogReport, check_against_anchor
from services.operations.audit import ChainReport, TimelineEntry, read_timeline, verify_chains
from services.operations.base import (
    BadInputError,
    OperationError,
    UnavailableError,
    database,
    kafka_consumer,
)
from services.operations.log_check import compare_with_log, locate_rewrites
from services.operations.operator_reads import operator_name
from services.operations.reads import refused_reads
from services.operations.schemas import LIVE, check_name
from services.settings import Settings, get_settings

if TYPE_CHECKING:
    from services.anchor.service import AnchorOutcome

app = typer.Typer(
    help="Audit trails: one resident's archived events; hash chains recomputed and checked against signed anchors.",
    no_args_is_help=True,
)
console = Console(highlight=False)

SchemaOption = Annotated[str, typer.Option("--schema", help="Projection schema to read (a shadow or an old one, say).")]


def _schema(name: str) -> str:
    try:
        return check_name(name, allow_live=True)
    except OperationError as exc:
        fail(str(exc), exc.code)


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@app.command("timeline")
def timeline_cmd(
    citizen_id: Annotated[str, typer.Argument(help="The 18-character citizen ID.")],
    as_json: Annotated[bool, typer.Option("--json", help="Every field in full, with the events, as JSON.")] = False,
    schema: SchemaOption = LIVE,
    purpose: Annotated[
        str, typer.Option("--purpose", help="Why you look (recorded in the resident's access log).")
    ] = "audit",
    operator: Annotated[
        str | None, typer.Option("--operator", help="Who looks (default: $RENKOU_OPERATOR, else your login).")
    ] = None,
) -> None:
    """The archived events of one resident in business-time order: coordinates, both times, chain links; of every
    number the person has held (CONTRACT §12). The read is recorded in the resident's access log (CONTRACT §11)
    before anything is shown."""
    cid = citizen_id_arg(citizen_id)
    where = _schema(schema)
    try:
        (stated,) = validate_purposes([purpose])
    except GrantError as exc:
        fail(str(exc), 2)

    async def fetch() -> tuple[tuple[str, ...], list[TimelineEntry]]:
        async with database(get_settings()) as conn:
            return await read_timeline(
                conn, cid, operator=operator_name(operator), purpose=stated, endpoint="cli:audit timeline", schema=where
            )

    numbers, entries = run_operation(fetch())
    if as_json:
        print_json({"citizen_id": numbers[0], "aliases": list(numbers[1:]), "events": [e.to_json() for e in entries]})
        return
    several = len(numbers) > 1
    table = Table(
        title=f"{numbers[0]}: {len(entries)} archived events"
        + (f" (also held {', '.join(numbers[1:])})" if several else ""),
        caption="topic: population.<department>.v1; `--json` adds event ids, full hashes and the events",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    if several:
        table.add_column("number", no_wrap=True, min_width=18)
    table.add_column("occurred (UTC)", no_wrap=True, min_width=16)
    table.add_column("recorded (UTC)", no_wrap=True, min_width=16)
    table.add_column("department #", no_wrap=True, min_width=18)
    table.add_column("event_type", no_wrap=True, min_width=25)
    table.add_column("p@offset", no_wrap=True, min_width=8)
    table.add_column("prev_hash → hash", no_wrap=True, min_width=19)
    for e in entries:
        table.add_row(
            *([e.citizen_id] if several else []),
            _moment(e.occurred_at),
            _moment(e.recorded_at),
            f"{e.department} #{e.chain_seq}",
            e.event_type,
            f"{e.partition}@{e.offset}",
            f"{e.prev_hash.hex()[:8]} → {e.hash.hex()[:8]}",
        )
    console.print(table)


@dataclass
class _Audit:
    chains: ChainReport
    anchor: AnchorReport | None = None
    log: LogReport | None = None

    @property
    def intact(self) -> bool:
        return (
            self.chains.intact and (self.anchor is None or self.anchor.intact) and (self.log is None or self.log.intact)
        )


async def _audit(
    cid: str | None, schema: str, limit: int, *, anchors: int, chains_only: bool, log: bool, public_key: Path | None
) -> _Audit:
    settings = get_settings()
    async with database(settings) as conn:
        result = _Audit(await verify_chains(conn, cid, schema=schema, limit=limit))
        if chains_only:
            return result
        try:
            return await _against_anchor(settings, conn, result, cid, schema, limit, anchors, log, public_key)
        except asyncpg.UndefinedTableError as exc:
            raise OperationError(
                f"{exc.args[0] if exc.args else exc}: the anchored heads are gone (is the database at migration "
                "0010? if it is, they were dropped)"
            ) from exc


async def _against_anchor(
    settings: Settings,
    conn: asyncpg.Connection,
    result: _Audit,
    cid: str | None,
    schema: str,
    limit: int,
    anchors: int,
    log: bool,
    public_key: Path | None,
) -> _Audit:
    """The chains against the latest anchor (and the archive against the log, with ``log``)."""
    try:
        key, _ = trusted_public_key(settings, public_key)
    except AnchorKeyError as exc:
        raise BadInputError(str(exc)) from exc
    async with kafka_consumer(settings) as consumer:
        result.anchor, rewritten = await check_against_anchor(
            conn,
            consumer,
            namespace=settings.topic_namespace,
            public_key=key,
            citizen_id=cid,
            schema=schema,
            limit=limit,
            last=anchors or None,
        )
        if rewritten:
            for finding in await locate_rewrites(
                conn, consumer, schema=schema, namespace=settings.topic_namespace, chains=rewritten
            ):
                result.anchor.findings_total += 1
                if len(result.anchor.findings) < limit:
                    result.anchor.findings.append(finding)
        if log:
            result.log = await compare_with_log(
                conn, consumer, schema=schema, namespace=settings.topic_namespace, citizen_id=cid, limit=limit
            )
    return result


def _anchor_line(report: AnchorReport, chains: ChainReport, whole: bool) -> str:
    if report.anchor is None:
        return "anchor: none found"
    a = report.anchor.anchor
    pinned = (
        f"pins {_count(a.logs['archive'].chains, 'archive chain')} and "
        f"{_count(a.logs['access_log'].chains, 'access-log chain')}"
    )
    newer = ""
    if whole:
        newer = (
            f"; newer than it: {max(0, chains.archive_links - a.logs['archive'].links):,} archive links, "
            f"{max(0, chains.access_links - a.logs['access_log'].links):,} access-log entries"
        )
    return (
        f"anchor #{a.seq} ({report.source}, anchored {a.anchored_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, "
        f"{a.reason}, key {report.key_id}): {pinned}{newer}"
    )


@app.command("verify")
def verify_cmd(
    citizen_id: Annotated[str | None, typer.Argument(help="Only this resident's chains (default: all).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Broken links to list in detail.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
    schema: SchemaOption = LIVE,
    log: Annotated[
        bool, typer.Option("--log", help="Also compare every archive row with its Kafka record, byte for byte.")
    ] = False,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="The anchors' public key (PEM); default: the stack's key file."),
    ] = None,
    anchors: Annotated[
        int, typer.Option("--anchors", min=0, help="Check the signatures of this many latest anchors (0: all).")
    ] = 50,
    chains_only: Annotated[
        bool, typer.Option("--chains-only", help="Only recompute the hash chains (no anchor, no Kafka).")
    ] = False,
) -> None:
    """Recompute every hash chain of the event archive and the access log and check each against the latest
    signed anchor (with --log, every archived event against its Kafka record); exit 1 when anything broke."""
    cid = None if citizen_id is None else citizen_id_arg(citizen_id)
    where = _schema(schema)
    result = run_operation(
        _audit(cid, where, limit, anchors=anchors, chains_only=chains_only, log=log, public_key=public_key)
    )
    report = result.chains
    if as_json:
        print_json(
            {
                "intact": result.intact,
                "archive": {"links": report.archive_links, "chains": report.archive_chains},
                "access_log": {"links": report.access_links, "chains": report.access_chains},
                "broken_total": report.broken_total,
                "broken": [b.__dict__ for b in report.broken],
                "anchor": None if result.anchor is None else result.anchor.to_json(),
                "log": None if result.log is None else result.log.to_json(),
            }
        )
    else:
        console.print(
            f"archive: {report.archive_links:,} links in {report.archive_chains:,} chains; "
            f"access log: {report.access_links:,} links in {report.access_chains:,} chains"
        )
        for link in report.broken:
            console.print(f"  [red]broken[/red] {link.describe()}", soft_wrap=True)
        if report.broken_total > len(report.broken):
            console.print(f"  … and {report.broken_total - len(report.broken):,} more (--limit)")
        if result.anchor is not None:
            console.print(_anchor_line(result.anchor, report, cid is None), soft_wrap=True)
            for note in result.anchor.notes:
                console.print(f"  note: {note}", soft_wrap=True)
            _print_findings(result.anchor.findings, result.anchor.findings_total)
        if result.log is not None:
            console.print(
                f"log: {result.log.rows:,} archive rows compared with their records "
                f"({result.log.records:,} records of the log read)"
            )
            _print_findings(result.log.findings, result.log.findings_total)
    if not result.intact:
        problems = []
        if report.broken_total:
            problems.append(f"{report.broken_total:,} broken chain links")
        if result.anchor is not None and result.anchor.findings_total:
            problems.append(_count(result.anchor.findings_total, "problem") + " against the anchor")
        if result.log is not None and result.log.findings_total:
            problems.append(_count(result.log.findings_total, "difference") + " from the log")
        fail("; ".join(problems), 1)
    if not as_json:
        anchored = ""
        if result.anchor is not None and result.anchor.anchor is not None:
            anchored = f" against anchor #{result.anchor.anchor.anchor.seq}"
        console.print(f"[green]every chain verifies{anchored}[/green]" + (" and matches the log" if log else ""))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _print_findings(findings: list[Finding], total: int) -> None:
    for finding in findings:
        console.print(f"  [red]broken[/red] {finding.describe()}", soft_wrap=True)
    if total > len(findings):
        console.print(f"  … and {total - len(findings):,} more (--limit)")


@app.command("anchor")
def anchor_cmd(
    force: Annotated[bool, typer.Option("--force", help="Anchor even if no chain moved since the last one.")] = False,
    rebase: Annotated[
        bool,
        typer.Option(
            "--rebase",
            help="Anchor every chain as it stands now, after the latest anchor, whatever the database kept "
            "(after restoring the database from a backup: only once `audit verify` was read and understood).",
        ),
    ] = False,
) -> None:
    """Publish a signed anchor of every chain head now (the projector does so every 30 s while chains move)."""
    from services.anchor.service import AnchorService

    async def anchor() -> AnchorOutcome:
        settings = get_settings()
        try:
            service = AnchorService.from_settings(
                settings,
                create_key=False,
                application_name="renkou-anchor-cli",
                database_role=OWNER,
                kafka_principal=OPERATOR,
            )
        except AnchorKeyError as exc:
            raise BadInputError(f"cannot use the anchor key: {exc}") from exc
        try:
            return await service.anchor_once("manual", force=force, wait_lock_s=60.0, rebase=rebase)
        except (OSError, asyncpg.PostgresError) as exc:
            raise UnavailableError(f"cannot reach PostgreSQL ({exc.__class__.__name__}); is the stack up?") from exc
        except KafkaError as exc:
            raise UnavailableError(f"cannot reach Kafka ({exc.__class__.__name__}); is the stack up?") from exc
        finally:
            await service.close()

    outcome = run_operation(anchor())
    if outcome.status in ("refused", "busy"):
        fail(f"no anchor: {outcome.message}", 1)
    if outcome.published:
        console.print(f"[green]✓[/green] {outcome.message} (built in {outcome.build_ms:,.0f} ms)")
    else:
        console.print(f"nothing to anchor: {outcome.message} (--force anchors anyway)")


@app.command("public-key")
def public_key_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="The key id, PEM and JWK as JSON.")] = False,
) -> None:
    """The public key that verifies the anchors (as the query API serves it at /v1/audit/public-key)."""
    try:
        key, path = trusted_public_key(get_settings())
    except AnchorKeyError as exc:
        fail(str(exc), 2)
    if as_json:
        print_json({"key_id": key_id(key), "algorithm": "Ed25519", "pem": public_pem(key), "jwk": public_jwk(key)})
        return
    sys.stdout.write(f"# key id {key_id(key)} ({path})\n{public_pem(key)}")


@app.command("refused")
def refused_cmd(
    consumer: Annotated[str | None, typer.Option("--consumer", help="Only this consumer's refused reads.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only from this instant on (RFC 3339 with offset, or a date).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Every field, as JSON.")] = False,
) -> None:
    """Reads the query API refused for want of a right (401, 403): who, which purpose, what, why, when."""
    start = _since(since)

    async def fetch() -> list[asyncpg.Record]:
        async with database(get_settings()) as conn:
            return await refused_reads(conn, consumer=consumer, since=start, limit=limit)

    rows = run_operation(fetch())
    if as_json:
        print_json(
            [{**dict(r), "refused_at": r["refused_at"].isoformat(), "request_id": str(r["request_id"])} for r in rows]
        )
        return
    table = Table("refused (UTC)", "consumer", "purpose", "request", "status", "why", box=box.SIMPLE)
    for r in rows:
        table.add_row(
            _moment(r["refused_at"]),
            r["consumer"] or "(no known token)",
            r["purpose"] or "-",
            f"{r['method']} {r['path']}",
            str(r["status"]),
            f"{r['code']}: {r['message']}",
        )
    Console(soft_wrap=True).print(table)
    Console(stderr=True).print(f"{len(rows)} refused read{'s' if len(rows) != 1 else ''} (newest first)")


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        fail(f"--since {raw!r} is not an RFC 3339 instant or a date", 2)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def register(app_: typer.Typer) -> None:
    """Add the ``audit`` sub-app to the root ``renkou`` app."""
    app_.add_typer(app, name="audit")

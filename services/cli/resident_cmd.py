"""``renkou resident show ID [--as-of DATE] [--known-at TIMESTAMP] [--purpose P] [--operator NAME]``: the resident
view as JSON on stdout, recorded in the resident's access log as the operator's read (CONTRACT §11)."""

from __future__ import annotations

from typing import Annotated

import typer

from projections.resident.dates import business_date
from projections.resident.render import VIEW_SECTIONS
from projections.resident.tables import DEFAULT_SCHEMA
from services.cli.common import (
    citizen_id_arg,
    database,
    date_arg,
    fail,
    print_json,
    run,
    timestamp_arg,
)
from services.clock import today_in_china
from services.grants import GrantError, validate_purposes
from services.operations.operator_reads import operator_name, record_operator_read
from services.residents.bitemporal import TimeSlice, reconstruct
from services.residents.views import load_views

app = typer.Typer(help="Look at one resident.", no_args_is_help=True)


@app.command()
def show(
    citizen_id: Annotated[str, typer.Argument(help="The 18-character citizen ID.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Business date YYYY-MM-DD (rebuilt from the archive).")
    ] = None,
    known_at: Annotated[
        str | None, typer.Option("--known-at", help="As the system knew it at this RFC 3339 instant.")
    ] = None,
    purpose: Annotated[
        str, typer.Option("--purpose", help="Why you look (recorded in the resident's access log).")
    ] = "operations",
    operator: Annotated[
        str | None, typer.Option("--operator", help="Who looks (default: $RENKOU_OPERATOR, else your login).")
    ] = None,
) -> None:
    """Print the resident view (CONTRACT §6) with flags and meta; the read is recorded in the access log first."""
    cid = citizen_id_arg(citizen_id)
    day = date_arg(as_of, "--as-of")
    moment = timestamp_arg(known_at, "--known-at")
    try:
        (stated,) = validate_purposes([purpose])
    except GrantError as exc:
        fail(str(exc), 2)
    who = operator_name(operator)

    async def fetch() -> dict[str, object] | None:
        async with database() as conn:
            if day is None and moment is None:
                view = (await load_views(conn, [cid], today_in_china(), DEFAULT_SCHEMA)).get(cid)
            else:
                # Without --as-of, "as known at T" looks at the world on T's own business day (China's calendar,
                # as every as_of is), not at the calendar date of whatever offset T was written with.
                when = TimeSlice(as_of=day or (business_date(moment) if moment else today_in_china()), known_at=moment)
                view = await reconstruct(conn, cid, when, DEFAULT_SCHEMA)
            if view is not None:
                await record_operator_read(
                    conn,
                    operator=who,
                    purpose=stated,
                    endpoint="cli:resident show",
                    sections=[s for s in VIEW_SECTIONS if s in view],
                    views=[view],
                )
            return view

    view = run(fetch())
    if view is None and day is None and moment is None:
        fail(f"no resident {cid} in the view (no event about this citizen ID has been projected)", 4)
    if view is None:
        window = " and ".join(
            part
            for part in (f"happened by {day}" if day else "", f"was recorded by {known_at}" if moment else "")
            if part
        )
        fail(f"nothing about {cid} {window}: no archived event of this citizen ID falls in that time slice", 4)
    print_json(view)

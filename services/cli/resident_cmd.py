"""``renkou resident show ID [--as-of DATE] [--known-at TIMESTAMP]``: the resident view as JSON on stdout."""

from __future__ import annotations

from typing import Annotated

import typer

from projections.resident.dates import business_date
from projections.resident.store import DEFAULT_SCHEMA
from services.bitemporal import TimeSlice, reconstruct
from services.cli.common import (
    citizen_id_arg,
    database,
    date_arg,
    fail,
    print_json,
    run,
    timestamp_arg,
    today,
)
from services.resident_views import load_views

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
) -> None:
    """Print the resident view (CONTRACT §6) with flags and meta."""
    cid = citizen_id_arg(citizen_id)
    day = date_arg(as_of, "--as-of")
    moment = timestamp_arg(known_at, "--known-at")

    async def fetch() -> dict[str, object] | None:
        async with database() as conn:
            if day is None and moment is None:
                return (await load_views(conn, [cid], today(), DEFAULT_SCHEMA)).get(cid)
            # Without --as-of, "as known at T" looks at the world on T's own business day (China's calendar, as
            # every as_of is), not at the calendar date of whatever offset T was written with.
            when = TimeSlice(as_of=day or (business_date(moment) if moment else today()), known_at=moment)
            return await reconstruct(conn, cid, when, DEFAULT_SCHEMA)

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

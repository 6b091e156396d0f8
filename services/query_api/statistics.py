"""Population statistics of a region on a date — the one place their definitions live.

The city plans publish every year the **registered** (户籍) and the **resident** (常住) population and their urban
shares per district, and watch the gap between the two urbanisation rates (Nantong (3), (15)). Here, for a
region code prefix ``P`` (2 digits: province, 4: city, 6: county/district) and a date ``D``:

* **registered population** — people whose permanent hukou, on ``D``, is registered in a region under ``P``, and
  who are alive on ``D``. *Urban*: that hukou registration is urban.
* **resident population** — people who, on ``D``, *live* in a region under ``P`` and are alive, where a person
  lives in the region of their residence registration once it has lasted six months or more on ``D``, and
  otherwise in their hukou region. So it counts those with hukou under ``P`` who are not registered as living
  elsewhere (for six months or more), plus those registered as living under ``P`` for six months or more — the
  census rule (a person away for less than half a year still counts at home), which counts everyone in at most
  one place. *Urban*: the registration (or hukou) that places them there is urban.
* **permit holders** — people alive on ``D`` holding a residence permit of a region under ``P`` that is valid on
  ``D`` (issued on or before, ``valid_until`` on or after, not revoked by then). *Urban*: their residence
  registration on ``D`` is urban and lies within the permit's region.
* **urbanisation gap** — resident urban share minus registered urban share, in percentage points (Nantong's
  target: registered urbanisation at most 3 points behind resident urbanisation).

"On ``D``" reads the public-security state's current entries *and* its histories (closed hukou periods, ended
residence registrations, replaced permits), so a past date counts the registrations in force then, as known
now. **Alive on D**: no date of death on or before ``D`` — public security's (a cancellation for death), or
else health's certified death, the same precedence as the view's ``identity.deceased_on``. A renewed permit
counts as valid from its issue to its latest ``valid_until``.

Computed in PostgreSQL from ``projection.sections`` in one statement: one row per person with their hukou,
residence and permit region on ``D``, then grouped by 6-digit region code; each code is then counted under the
division in force in ``D``'s year (GB/T 2260 history: a county since made a district, or merged, is that
district — ``events.citizen_id.division_in_force``); the totals for ``P`` are the sums over those districts
(each person has at most one region per measure, so nobody is counted twice).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import asyncpg

from events import Event, Payload
from events.citizen_id import division_in_force
from projections.resident.aliases import fold_person
from projections.resident.reads import load_all_links, load_archived_bodies, load_bodies_known_at, load_links_known_at
from projections.resident.state import HealthState, PublicSecurityState, state_to_json_text
from projections.resident.tables import DEFAULT_SCHEMA, in_schema
from services.clock import utc_text
from services.disclosure import CELLS, MIN_COUNT, counts_of, shown_json, suppress
from services.residents.views import parse_archived

__all__ = [
    "DistrictFigures",
    "Figures",
    "Measure",
    "PopulationStatistics",
    "people_known_at",
    "population_statistics",
    "validate_region_prefix",
]

_PREFIX: Final = re.compile(r"^([0-9]{2}|[0-9]{4}|[0-9]{6})$")


def validate_region_prefix(text: str) -> str:
    """A region code prefix: 2, 4 or 6 digits. Raises ``ValueError`` naming the rule otherwise."""
    if not _PREFIX.fullmatch(text):
        raise ValueError(
            f"region_code must be a region code prefix of 2, 4 or 6 digits (province, city, district), got {text!r}"
        )
    return text


@dataclass(frozen=True, slots=True)
class Measure:
    """A population and how many of it are urban."""

    population: int = 0
    urban: int = 0

    @property
    def urban_share(self) -> float | None:
        return self.urban / self.population if self.population else None

    def __add__(self, other: Measure) -> Measure:
        return Measure(self.population + other.population, self.urban + other.urban)

    def to_json(self) -> dict[str, Any]:
        share = self.urban_share
        return {
            "population": self.population,
            "urban": self.urban,
            "urban_share": round(share, 6) if share is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Figures:
    """The three measures of one region on one date."""

    registered: Measure = Measure()
    resident: Measure = Measure()
    permit_holders: Measure = Measure()

    @property
    def urbanisation_gap_points(self) -> float | None:
        """Resident minus registered urban share, in percentage points (``None`` if either is undefined)."""
        resident, registered = self.resident.urban_share, self.registered.urban_share
        if resident is None or registered is None:
            return None
        return round((resident - registered) * 100, 4)

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.registered + other.registered,
            self.resident + other.resident,
            self.permit_holders + other.permit_holders,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "registered": self.registered.to_json(),
            "resident": self.resident.to_json(),
            "permit_holders": self.permit_holders.to_json(),
            "urbanisation_gap_points": self.urbanisation_gap_points,
        }


@dataclass(frozen=True, slots=True)
class DistrictFigures:
    region_code: str
    figures: Figures


@dataclass(frozen=True, slots=True)
class PopulationStatistics:
    """The figures for a region prefix on ``as_of``, in total and per 6-digit region code under it."""

    region_code: str
    as_of: date
    total: Figures
    districts: tuple[DistrictFigures, ...]
    known_at: datetime | None = None
    """The instant of the log the figures are cut at (``None``: the live projection)."""

    def _known(self) -> dict[str, Any]:
        return {"known_at": utc_text(self.known_at)} if self.known_at is not None else {}

    def to_json(self) -> dict[str, Any]:
        """Every count as computed (for operators and tests; what is published goes through ``published``)."""
        return {
            "region_code": self.region_code,
            "as_of": self.as_of.isoformat(),
            **self._known(),
            **self.total.to_json(),
            "districts": [{"region_code": d.region_code, **d.figures.to_json()} for d in self.districts],
        }

    def published(self, min_count: int = MIN_COUNT) -> dict[str, Any]:
        """The figures as the API publishes them: ``services.disclosure``'s suppression applied (hidden = null,
        named in ``suppressed``), so that no count from 1 to ``min_count - 1`` can be read or derived."""
        districts, total = suppress([counts_of(d.figures) for d in self.districts], counts_of(self.total), min_count)
        hidden = [
            f"{region}.{cell}"
            for region, shown in (
                ("total", total),
                *((d.region_code, s) for d, s in zip(self.districts, districts, strict=True)),
            )
            for cell in CELLS
            if shown[cell] is None
        ]
        return {
            "region_code": self.region_code,
            "as_of": self.as_of.isoformat(),
            **self._known(),
            **shown_json(self.total, total),
            "districts": [
                {"region_code": d.region_code, **shown_json(d.figures, s)}
                for d, s in zip(self.districts, districts, strict=True)
            ],
            "disclosure": {"min_count": min_count, "suppressed": hidden},
        }


def _person_sql(schema: str) -> str:
    # $1 = as_of. One row per person known to public security and alive on $1, with the region (and urban flag)
    # of their hukou, their residence registration and their valid permit on $1 — each from the current entry
    # or the history, whichever was in force that day.
    #
    # A person with several numbers (§12) is one row, under their current number, with the state a read gives
    # them (projections.resident.aliases.fold_person), computed by ``_people_with_several_numbers`` and passed
    # as $3; their numbers' stored sections are left out. With $4 (a ``known_at`` count) every person comes from
    # $3, folded from the archive as the log knew it then, and no stored section is read.
    names = in_schema(schema)
    return f"""
    linked AS (
        SELECT old_citizen_id AS citizen_id FROM {names["number_links"]}
        UNION SELECT new_citizen_id FROM {names["number_links"]}
    ),
    ps AS (
        SELECT s.citizen_id, s.state AS st,
               coalesce((s.state ->> 'deceased_on')::date, (h.state -> 'death' ->> 'died_on')::date) AS deceased_on
          FROM {names["sections"]} s
          LEFT JOIN {names["sections"]} h ON h.citizen_id = s.citizen_id AND h.department = 'health'
         WHERE s.department = 'public_security' AND NOT $4::boolean
           AND s.citizen_id NOT IN (SELECT citizen_id FROM linked)
        UNION ALL
        SELECT p.citizen_id, p.st, p.deceased_on
          FROM jsonb_to_recordset($3::jsonb) AS p(citizen_id text, st jsonb, deceased_on date)
    ),
    person AS (
        SELECT hk.region_code AS hukou_region, coalesce(hk.urban, false) AS hukou_urban,
               rr.region_code AS reg_region, coalesce(rr.urban, false) AS reg_urban, rr.since AS reg_since,
               pm.region_code AS permit_region
          FROM ps
          LEFT JOIN LATERAL (
                SELECT c.p ->> 'region_code' AS region_code, (c.p ->> 'urban')::boolean AS urban
                  FROM (SELECT ps.st -> 'hukou' AS p, 0 AS rank WHERE ps.st -> 'hukou' ->> 'status' = 'registered'
                        UNION ALL
                        SELECT e, 1 FROM jsonb_array_elements(ps.st -> 'hukou' -> 'history') e
                         WHERE (e ->> 'ended_on')::date > $1) c
                 WHERE (c.p ->> 'registered_on')::date <= $1
                 ORDER BY c.rank, (c.p ->> 'registered_on')::date DESC
                 LIMIT 1) hk ON true
          LEFT JOIN LATERAL (
                SELECT c.p ->> 'region_code' AS region_code, (c.p ->> 'urban')::boolean AS urban,
                       (c.p ->> 'since')::date AS since
                  FROM (SELECT ps.st -> 'residence_registration' AS p, 0 AS rank
                         WHERE jsonb_typeof(ps.st -> 'residence_registration') = 'object'
                        UNION ALL
                        SELECT e, 1 FROM jsonb_array_elements(ps.st -> 'residence_history') e
                         WHERE (e ->> 'ended_on')::date > $1) c
                 WHERE (c.p ->> 'since')::date <= $1
                 ORDER BY c.rank, (c.p ->> 'since')::date DESC
                 LIMIT 1) rr ON true
          LEFT JOIN LATERAL (
                SELECT c.p ->> 'region_code' AS region_code
                  FROM (SELECT ps.st -> 'permit' AS p, 0 AS rank WHERE jsonb_typeof(ps.st -> 'permit') = 'object'
                        UNION ALL
                        SELECT e, 1 FROM jsonb_array_elements(ps.st -> 'permit_history') e) c
                 WHERE (c.p ->> 'issued_on')::date <= $1 AND (c.p ->> 'valid_until')::date >= $1
                   AND NOT (coalesce((c.p ->> 'revoked')::boolean, false)
                            AND coalesce((c.p ->> 'revoked_on')::date <= $1, true))
                 ORDER BY c.rank, (c.p ->> 'issued_on')::date DESC
                 LIMIT 1) pm ON true
         WHERE ps.deceased_on IS NULL OR ps.deceased_on > $1
    ),
    placed AS (
        SELECT hukou_region, hukou_urban, permit_region,
               CASE WHEN reg_region IS NOT NULL AND (reg_since + interval '6 months')::date <= $1
                    THEN reg_region ELSE hukou_region END AS resident_region,
               CASE WHEN reg_region IS NOT NULL AND (reg_since + interval '6 months')::date <= $1
                    THEN reg_urban ELSE hukou_urban END AS resident_urban,
               coalesce(reg_urban AND starts_with(reg_region, regexp_replace(permit_region, '(00)+$', '')), false)
                   AS permit_urban
          FROM person
    )"""


def _statistics_sql(schema: str) -> str:
    # $2 = the region prefix. ``(reg_since + interval '6 months')::date <= $1`` is "whole months >= 6" as the
    # view computes it (projections.resident.dates.whole_months): PostgreSQL clamps to the month's end too.
    return f"""
    WITH {_person_sql(schema)}
    SELECT code,
           sum(reg)::bigint AS reg, sum(reg_u)::bigint AS reg_u,
           sum(res)::bigint AS res, sum(res_u)::bigint AS res_u,
           sum(pmt)::bigint AS pmt, sum(pmt_u)::bigint AS pmt_u
      FROM (SELECT hukou_region AS code, 1 AS reg, hukou_urban::int AS reg_u, 0 AS res, 0 AS res_u, 0 AS pmt,
                   0 AS pmt_u
              FROM placed WHERE starts_with(hukou_region, $2)
            UNION ALL
            SELECT resident_region, 0, 0, 1, resident_urban::int, 0, 0
              FROM placed WHERE starts_with(resident_region, $2)
            UNION ALL
            SELECT permit_region, 0, 0, 0, 0, 1, permit_urban::int
              FROM placed WHERE starts_with(permit_region, $2)) x
     GROUP BY code
     ORDER BY code"""


async def population_statistics(
    conn: asyncpg.Connection,
    region_prefix: str,
    as_of: date,
    schema: str = DEFAULT_SCHEMA,
    *,
    known_at: datetime | None = None,
    known_people: list[dict[str, Any]] | None = None,
) -> PopulationStatistics:
    """The registered, resident and permit-holder populations under ``region_prefix`` on ``as_of``.

    Districts are those in force in ``as_of``'s year. With ``known_at``, only what the log knew by that instant
    counts (``people_known_at``; ``known_people``: its result, when several prefixes are counted at one cut): the
    same ``known_at`` gives the same figures however many events arrive later, and after a replay. Raises
    ``ValueError`` for a prefix that is not 2, 4 or 6 digits.
    """
    validate_region_prefix(region_prefix)
    sql = _statistics_sql(schema)
    if known_at is None:
        people, from_archive = await _people_with_several_numbers(conn, schema), False
    else:
        people = known_people if known_people is not None else await people_known_at(conn, schema, known_at)
        from_archive = True
    # Counted per code as recorded, then under the division in force that year (a county since made a district
    # is its district: events.citizen_id.division_in_force); a successor may lie under another city's prefix of
    # the province (简阳市 512081 → 510185), so the province is counted and the prefix applied after.
    rows = await conn.fetch(sql, as_of, region_prefix[:2], json.dumps(people), from_archive)
    merged: dict[str, Figures] = {}
    for r in rows:
        code = division_in_force(r["code"], as_of.year)
        if code.startswith(region_prefix):
            figures = Figures(
                Measure(r["reg"], r["reg_u"]), Measure(r["res"], r["res_u"]), Measure(r["pmt"], r["pmt_u"])
            )
            merged[code] = merged[code] + figures if code in merged else figures
    districts = tuple(DistrictFigures(code, merged[code]) for code in sorted(merged))
    total = Figures()
    for district in districts:
        total = total + district.figures
    return PopulationStatistics(region_prefix, as_of, total, districts, known_at)


async def people_known_at(conn: asyncpg.Connection, schema: str, known_at: datetime) -> list[dict[str, Any]]:
    """Every person public security knew of by ``known_at``, as the statistics' rows: their state folded from the
    public security and health events the log held by then, people with several numbers joined by the links
    the log held by then (``fold_person``, as a read folds them)."""
    people = await load_links_known_at(conn, known_at, schema)
    bodies = await load_bodies_known_at(conn, known_at, ("public_security", "health"), schema)

    def fold() -> list[dict[str, Any]]:  # CPU work on the whole archive: off the event loop
        by_person: dict[str, list[Event[Payload]]] = {}
        for event in parse_archived(bodies)[0]:
            by_person.setdefault(people.current(event.citizen_id), []).append(event)
        return _statistics_rows(
            (current, people.numbers(current), events, people.duplicates(current))
            for current, events in sorted(by_person.items())
        )

    return await asyncio.to_thread(fold)


def _statistics_rows(
    persons: Iterable[tuple[str, Sequence[str], list[Event[Payload]], frozenset[str]]],
) -> list[dict[str, Any]]:
    found = []
    for current, numbers, events, duplicates in persons:
        states = fold_person(numbers, events, duplicates)
        ps, health = states.get("public_security"), states.get("health")
        if not isinstance(ps, PublicSecurityState):
            continue  # public security knows nothing of them: not in the statistics, as for anyone
        died = ps.deceased_on or (health.death.died_on if isinstance(health, HealthState) and health.death else None)
        found.append(
            {
                "citizen_id": current,
                "st": json.loads(state_to_json_text(ps)),
                "deceased_on": died.isoformat() if died else None,
            }
        )
    return found


async def _people_with_several_numbers(conn: asyncpg.Connection, schema: str) -> list[dict[str, Any]]:
    """Each person with several numbers (§12) as one row of the statistics: their current number, their public
    security state folded from all their numbers' events as a read folds it, and the day they died if known."""
    people = await load_all_links(conn, schema)
    if not people:
        return []
    groups = {people.current(old): people.numbers(old) for old in people.links}
    bodies = await load_archived_bodies(
        conn, [n for numbers in groups.values() for n in numbers], ("public_security", "health"), schema
    )
    by_number = {number: parse_archived(found)[0] for number, found in bodies.items()}
    return _statistics_rows(
        (current, numbers, [e for n in numbers for e in by_number.get(n, ())], people.duplicates(current))
        for current, numbers in sorted(groups.items())
    )

"""One resident's stored rows in one round trip — the single-read hot path of the query API.

``projections.resident.reads.load_residents`` reads sections, parent links, children, birth certificates and
household members in five queries whatever the number of citizens: right for batches, but for a single
resident the round trips cost more than the work. ``load_resident`` gathers the same rows in one statement
(a ``UNION ALL``, one kind of row per table) and feeds them to the same ``reads.ResidentRows``, where the rules of
precedence are, so ``render_sections`` renders it exactly like ``services.residents.views.render_stored``. The test
suite checks that the two loaders agree on every resident of its data sets.

Given the read's access-log entry, the same statement also appends it (``renkou_access_log_append``, migration
0008) and commits it with the read: one round trip and one transaction for a live read and its record, rather
than a second call through the group-commit writer of ``services.access_log.database``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, datetime
from typing import Any, Final

import asyncpg

from projections.resident.aliases import NumberLink, People
from projections.resident.batch import SectionRow
from projections.resident.reads import PARENT_RANK, ResidentRows, StoredResident
from projections.resident.state import DEPARTMENTS
from projections.resident.tables import DEFAULT_SCHEMA, in_schema, named
from services.access_log.database import AccessEntry, GrantNoLongerValidError, canonical_body
from services.db import service_tables
from services.residents.views import relatives_by_person, render_stored

__all__ = [
    "DEPARTMENT_SECTIONS",
    "SECTION_SOURCES",
    "NumberHasAliasesError",
    "load_resident",
    "readable_departments",
    "render_sections",
    "sources_of",
]

SECTION_SOURCES: Final[dict[str, tuple[str, ...]]] = {
    "identity": ("public_security", "health"),  # life_status also from health's death
    "hukou": ("public_security",),
    "residence": ("public_security",),
    "education": ("education",),
    "employment": ("social_security",),
    "social_insurance": ("social_security",),
    "health": ("health",),
    "family": (),  # the family tables, not a department state
    "flags": DEPARTMENTS,
    "meta": (),  # the stored counts and timestamps of every department
}
"""The department states each view section is rendered from (``projections.resident.render``)."""

DEPARTMENT_SECTIONS: Final[dict[str, tuple[str, ...]]] = {
    "public_security": ("identity", "hukou", "residence"),
    "education": ("education",),
    "social_security": ("employment", "social_insurance"),
    "health": ("health",),
}
"""The view sections each department's events are the one source of (CONTRACT §6)."""


def readable_departments(sections: Collection[str]) -> list[str]:
    """The departments whose raw events a reader of ``sections`` may see: those whose every section it may read
    (an event carries everything its department knows — a birth registration names, addresses and households)."""
    return [d for d, owned in DEPARTMENT_SECTIONS.items() if set(owned) <= set(sections)]


def sources_of(sections: Iterable[str]) -> frozenset[str]:
    """The departments whose states the view ``sections`` need."""
    return frozenset(d for s in sections for d in SECTION_SOURCES[s])


def render_sections(stored: StoredResident, as_of: date, sections: Collection[str]) -> dict[str, Any]:
    """``services.residents.views.render_stored`` of only ``sections``, parsing only the states they need."""
    return render_stored(stored, as_of, sources_of(sections), sections)


class NumberHasAliasesError(Exception):
    """The number asked is one of several of a person (§12): read it through ``load_persons``, which combines
    them; nothing was read or recorded."""


# A number linked to another (either side) is read by person, not by this statement.
_LINKED: Final = (
    "(EXISTS (SELECT 1 FROM {number_links} WHERE old_citizen_id = $1) "
    "OR EXISTS (SELECT 1 FROM {number_links} WHERE new_citizen_id = $1))"
)


# The consumer's grant is active at that instant (not revoked, not expired): checked by the reading statement.
_GRANT_ACTIVE: Final = (
    f"EXISTS (SELECT 1 FROM {named(service_tables.consumer_grants)} g WHERE g.name = {{name}} "
    "AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > {at}))"
)


# The numbers the family tables name for $1, and every number their links lead to: the links of kind 6 rows,
# from which the relatives are named by person (§12; ``residents.views.relatives_by_person``).
_RELATIVES_REACH: Final = """
    WITH RECURSIVE reach(n) AS (
        SELECT parent_citizen_id FROM {parent_links} WHERE child_citizen_id = $1
        UNION SELECT child_citizen_id FROM {parent_links} WHERE parent_citizen_id = $1
        UNION SELECT unnest(ARRAY[mother_citizen_id, father_citizen_id, child_citizen_id])
                FROM {birth_certificates}
               WHERE mother_citizen_id = $1 OR father_citizen_id = $1 OR child_citizen_id = $1
        UNION SELECT m.citizen_id FROM {household_members} x
                JOIN {household_members} m ON m.household_id = x.household_id WHERE x.citizen_id = $1
        UNION SELECT l.new_citizen_id FROM {number_links} l JOIN reach ON l.old_citizen_id = reach.n
    ) SELECT n FROM reach WHERE n IS NOT NULL"""


def _sql(schema: str, *, logged: bool, granted: bool = False) -> str:
    # One row set, one kind of row per table (column k): typed columns, no JSON to build on the server or to
    # parse here. $2: the departments whose state is needed (the others' rows still give meta its counts);
    # $3: whether the family tables are needed at all.
    names = in_schema(schema)
    union = f"""
    SELECT 0 AS k, department AS a, CASE WHEN department = ANY($2::text[]) THEN state::text END AS b,
           NULL::text AS c, NULL::text AS d, NULL::text AS e, NULL::text AS f, NULL::text AS g,
           event_count AS n, chain_seq AS q, last_event_at AS t, chain_head AS h
      FROM {names["sections"]} WHERE citizen_id = $1
    UNION ALL
    SELECT 1, role, parent_citizen_id, NULL, NULL, NULL, NULL, NULL,
           {PARENT_RANK}, NULL, NULL, NULL
      FROM {names["parent_links"]} WHERE $3 AND child_citizen_id = $1
    UNION ALL
    SELECT 2, child_citizen_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM {names["parent_links"]} WHERE $3 AND parent_citizen_id = $1
    UNION ALL
    SELECT 3, certificate_no, mother_citizen_id, father_citizen_id, child_name, child_sex, birth_date::text,
           child_citizen_id, NULL, NULL, NULL, NULL
      FROM {names["birth_certificates"]} WHERE $3 AND mother_citizen_id = $1
    UNION ALL
    SELECT 3, certificate_no, mother_citizen_id, father_citizen_id, child_name, child_sex, birth_date::text,
           child_citizen_id, NULL, NULL, NULL, NULL
      FROM {names["birth_certificates"]} WHERE $3 AND father_citizen_id = $1
    UNION ALL
    SELECT 3, certificate_no, mother_citizen_id, father_citizen_id, child_name, child_sex, birth_date::text,
           child_citizen_id, NULL, NULL, NULL, NULL
      FROM {names["birth_certificates"]} WHERE $3 AND child_citizen_id = $1
    UNION ALL
    SELECT 4, m.household_id, m.citizen_id, m.relationship, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM {names["household_members"]} x JOIN {names["household_members"]} m ON m.household_id = x.household_id
     WHERE $3 AND x.citizen_id = $1
    UNION ALL
    SELECT 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
     WHERE {_LINKED.format_map(names)}
    UNION ALL
    SELECT 6, l.old_citizen_id, l.new_citizen_id, l.kind, l.event_id::text, l.linked_on::text, l.reason, NULL,
           NULL, NULL, NULL, NULL
      FROM {names["number_links"]} l
     WHERE $3 AND l.old_citizen_id IN ({_RELATIVES_REACH.format_map(names)})"""
    if granted:
        # A read whose entry is recorded elsewhere (the access-log topic, CONTRACT §13): the same statement says
        # whether the grant ($4, at $5) is active, so that the check costs no round trip of its own.
        return f"""
    SELECT -1 AS k, NULL::text AS a, NULL::text AS b, NULL::text AS c, NULL::text AS d, NULL::text AS e,
           NULL::text AS f, NULL::text AS g, NULL::integer AS n, NULL::integer AS q, NULL::timestamptz AS t,
           NULL::bytea AS h
     WHERE {_GRANT_ACTIVE.format(name="$4", at="$5")}
    UNION ALL{union}"""
    if not logged:
        return union
    # The read's access-log entry, appended by the same statement (one transaction): $4-$10 are the entry, the
    # chain step is renkou_access_log_append's (migration 0008). Only a citizen who has sections is logged, and
    # only while the grant is active (checked here, not by a SQL function: PostgreSQL would plan that function's
    # body anew in every statement); the row of kind -1 says it was logged (its n is the entry's chain_seq).
    return f"""
    WITH logged AS MATERIALIZED (
        SELECT renkou_access_log_append($1, $4, $5, $6, $7, $8, $9, $10) AS seq
         WHERE EXISTS (SELECT 1 FROM {names["sections"]} WHERE citizen_id = $1)
           AND NOT {_LINKED.format_map(names)}
           AND {_GRANT_ACTIVE.format(name="$6", at="$10")})
    SELECT -1 AS k, NULL::text AS a, NULL::text AS b, NULL::text AS c, NULL::text AS d, NULL::text AS e,
           NULL::text AS f, NULL::text AS g, seq AS n, NULL::integer AS q, NULL::timestamptz AS t, NULL::bytea AS h
      FROM logged
    UNION ALL{union}"""


_STATEMENTS: dict[tuple[str, bool, bool], str] = {}


async def load_resident(
    conn: asyncpg.Connection,
    citizen_id: str,
    schema: str = DEFAULT_SCHEMA,
    *,
    departments: Collection[str] = DEPARTMENTS,
    family: bool = True,
    log: AccessEntry | None = None,
    grant: tuple[str, datetime] | None = None,
    statement_timeout: float | None = None,
) -> StoredResident | None:
    """Everything stored about ``citizen_id`` (as ``load_residents`` returns it), or ``None`` without a section.

    Only the states of ``departments`` are read (the others' ``SectionRow.state`` is ``""``), and the family
    tables only if ``family``: a read that returns a few sections does not pay for the rest.

    Raises ``NumberHasAliasesError`` (nothing read, nothing recorded) for a number linked to another (§12).
    With ``log``, the same statement appends that access-log entry for the citizen if there is anything to
    return, and commits it before this returns: the read and its record are one transaction. Raises
    ``GrantNoLongerValidError`` (nothing recorded) if the consumer's grant was revoked or expired meanwhile; a
    failed append fails the whole statement (asyncpg's error, or ``TimeoutError`` after ``statement_timeout``).
    With ``grant`` instead (a consumer's name and the read's time; its entry is recorded elsewhere), the same
    statement checks that grant and raises ``GrantNoLongerValidError`` if it is not active then.
    """
    if log is not None and grant is not None:
        raise ValueError("a read is either logged by this statement or has its grant checked by it, not both")
    statement = (schema, log is not None, grant is not None)
    sql = _STATEMENTS.get(statement)
    if sql is None:
        sql = _STATEMENTS[statement] = _sql(schema, logged=log is not None, granted=grant is not None)
    rows = await conn.fetch(sql, *_arguments(citizen_id, departments, family, log, grant), timeout=statement_timeout)
    by_kind: dict[int, list[asyncpg.Record]] = {}
    for r in rows:
        by_kind.setdefault(r[0], []).append(r)
    if 5 in by_kind:
        raise NumberHasAliasesError(citizen_id)
    logged = -1 in by_kind
    sections = {
        r[1]: SectionRow(citizen_id, r[1], r[2] or "", r[8], r[10], r[9], bytes(r[11])) for r in by_kind.get(0, ())
    }
    if not sections:
        return None
    if log is not None and not logged:
        raise GrantNoLongerValidError(f"the grant of {log.consumer} is no longer valid")
    if grant is not None and not logged:
        raise GrantNoLongerValidError(f"the grant of {grant[0]} is no longer valid")
    return _assembled(citizen_id, sections, by_kind)


def _arguments(
    citizen_id: str,
    departments: Collection[str],
    family: bool,
    log: AccessEntry | None,
    grant: tuple[str, datetime] | None,
) -> tuple[Any, ...]:
    """The statement's parameters: $1-$3 always; then the grant checked ($4, $5) or the entry appended ($4-$10)."""
    asked = (citizen_id, list(departments), family)
    if grant is not None:
        return (*asked, *grant)
    if log is None:
        return asked
    return (
        *asked,
        canonical_body(log, citizen_id),
        log.request_id,
        log.consumer,
        log.purpose,
        list(log.sections),
        log.endpoint,
        log.accessed_at,
    )


def _assembled(
    citizen_id: str, sections: dict[str, SectionRow], by_kind: dict[int, list[asyncpg.Record]]
) -> StoredResident:
    """The resident from the statement's rows, fed in the order ResidentRows asks for (the statement gives each
    kind in any order): parents by rank, children, certificates, the household by member; its relatives named by
    person when the family's numbers have links (§12)."""
    stated = ResidentRows(citizen_id)
    for r in sorted(by_kind.get(1, ()), key=lambda r: r[8]):  # stable: the statement's order within a rank
        stated.parent(r[1], r[2])
    for r in by_kind.get(2, ()):
        stated.child(r[1])
    for r in by_kind.get(3, ()):
        stated.certificate(r[1], r[2], r[3], r[4], r[5], r[6], r[7])
    for r in sorted(by_kind.get(4, ()), key=lambda r: (r[1], r[2])):
        stated.member(r[1], r[2], r[3])
    links = [NumberLink(r[1], r[2], date.fromisoformat(r[5]), r[4], r[3], r[6]) for r in by_kind.get(6, ())]
    stored = stated.resident(sections)
    return relatives_by_person(stored, People(links)) if links else stored

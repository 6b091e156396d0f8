"""Request and response bodies of the query API, as published in ``/openapi.json``.

The hot endpoints serialise with orjson and return the bytes directly; these models describe what they send
(and validate the batch request). View sections are open objects here: their fields are CONTRACT §6's, and
the projection may add fields (the contract lets it add, never rename or drop).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Section = dict[str, Any]


class ResidentView(BaseModel):
    """The resident view (CONTRACT §6), with only the sections the consumer's grant allows."""

    model_config = ConfigDict(extra="allow")

    citizen_id: str = Field(description="The 18-character citizen ID.")
    identity: Section | None = Field(default=None, description="name, sex, birth_date, ethnicity, life_status…")
    hukou: Section | None = Field(default=None, description="status, household, region_code, urban…")
    residence: Section | None = Field(default=None, description="registration, permit, continuous months")
    education: Section | None = Field(default=None, description="current school and history")
    employment: Section | None = Field(default=None, description="status and employers")
    social_insurance: Section | None = Field(default=None, description="schemes and card")
    health: Section | None = Field(default=None, description="record, family doctor, vaccinations, death")
    family: Section | None = Field(default=None, description="mother, father, children, household members")
    flags: list[dict[str, Any]] | None = Field(default=None, description="[{code, detail}]")
    meta: Section | None = Field(
        default=None, description="version, event counts, last_event_at; as_of (and known_at) of this rendering"
    )


class BatchGetRequest(BaseModel):
    """Up to 1000 citizen IDs; duplicates are answered once."""

    model_config = ConfigDict(extra="forbid")

    citizen_ids: list[str] = Field(min_length=1, max_length=1000)


class BatchGetResponse(BaseModel):
    residents: list[ResidentView] = Field(description="The views found, in the order asked.")
    not_found: list[str] = Field(description="Valid citizen IDs with no view (nothing projected about them).")


class ArchivedEvent(BaseModel):
    """One archived event with its Kafka coordinates and its link of the per-department hash chain.

    ``hash = sha256(prev_hash || body)`` with ``body`` the UTF-8 bytes of the ``body`` string; the first link of
    each (citizen, department) chain has ``prev_hash`` = 64 zeros.
    """

    citizen_id: str = Field(description="The number the event was recorded under: one of the person's (§12).")
    department: str
    chain_seq: int
    event_id: str
    event_type: str
    schema_version: int
    occurred_at: str
    recorded_at: str
    topic: str
    partition: int
    offset: int
    archived_at: str
    prev_hash: str = Field(description="hex")
    hash: str = Field(description="hex")
    body: str = Field(description="The archived record value, verbatim (the bytes hashed).")
    event: dict[str, Any] = Field(description="The same event, parsed.")


class EventsResponse(BaseModel):
    citizen_id: str
    events: list[ArchivedEvent]


class AccessLogEntry(BaseModel):
    """One read of the resident: who, when, why, which sections; a link of the resident's access-log chain."""

    citizen_id: str | None = Field(
        description="The number the entry was logged under (its chain); null for another of the person's numbers "
        "when the reader may not see them (no identity section)"
    )
    chain_seq: int
    request_id: str
    consumer: str
    purpose: str
    sections: list[str]
    endpoint: str
    accessed_at: str
    prev_hash: str | None = Field(description="hex; null where citizen_id is")
    hash: str | None = Field(
        description="hex; sha256(prev_hash || canonical JSON of the entry); null where citizen_id is"
    )


class AccessLogResponse(BaseModel):
    citizen_id: str = Field(description="The person's current number (CONTRACT §12).")
    aliases: list[str] | None = Field(
        None, description="The person's other numbers, to a reader of identity and to the citizen themself."
    )
    entries: list[AccessLogEntry] = Field(description="Newest first; every number the person has held.")
    next_before: str | None = Field(description="Pass as before for the next (older) page; null at the end.")
    next_before_seq: int | None = Field(
        description="For a person with one number: pass as before_seq for the next page; null at the end."
    )


class HouseholdMember(BaseModel):
    citizen_id: str
    relationship: str


class HouseholdResponse(BaseModel):
    household_id: str
    household_type: str
    region_code: str
    members: list[HouseholdMember]


class Measure(BaseModel):
    population: int | None = Field(description="null when suppressed (a count from 1 to 9, or one that gives it)")
    urban: int | None = Field(description="null when suppressed")
    urban_share: float | None = Field(description="urban / population; null when the population is 0 or suppressed")


class RegionFigures(BaseModel):
    registered: Measure = Field(description="Hukou registered in the region on as_of, alive.")
    resident: Measure = Field(
        description="Living in the region on as_of: registered there for 6 months or more, or hukou there and "
        "not registered as living elsewhere for 6 months or more; alive."
    )
    permit_holders: Measure = Field(description="Holding a residence permit of the region valid on as_of; alive.")
    urbanisation_gap_points: float | None = Field(
        description="Resident minus registered urban share, in percentage points."
    )


class DistrictFigures(RegionFigures):
    region_code: str


class Disclosure(BaseModel):
    min_count: int = Field(description="No count from 1 to min_count - 1 is published, nor derivable.")
    suppressed: list[str] = Field(description='The hidden cells, "total.resident" or "<region_code>.<cell>".')


class StatisticsResponse(RegionFigures):
    region_code: str = Field(description="The region code prefix asked for (2, 4 or 6 digits).")
    as_of: str = Field(description="The date counted: the latest month end on or before the date asked.")
    requested_as_of: str = Field(description="The date asked for (today in China by default).")
    known_at: str | None = Field(None, description="The instant of the log counted at, when one was asked for.")
    districts: list[DistrictFigures] = Field(description="The same figures per 6-digit region code.")
    disclosure: Disclosure


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """``/readyz``: whether every dependency answers (``services.http.readiness``)."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(description='Per dependency: "ok" or "unavailable (why)".')
    unavailable: list[str] | None = Field(default=None, description="The dependencies that do not answer.")

"""Hypothesis strategies for events: the catalogue, valid payloads of every type, instants and IDs over the whole
range the register accepts (shared by the event contract's tests and the end-to-end extreme-value tests)."""

from __future__ import annotations

import string
import types
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal

import annotated_types
from hypothesis import assume
from hypothesis import strategies as st
from pydantic.fields import FieldInfo
from stdnum.cn import uscc

from events import (
    EVENT_TYPES,
    CitizenId,
    Payload,
    RegionCode,
    bounds,
    fields,
    make_citizen_id,
)
from tests.support.projection import CHINA, latest_birth

CATALOGUE: dict[str, tuple[str, str]] = {
    "birth.registered": ("public_security", "BirthRegistered"),
    "hukou.registered": ("public_security", "HukouRegistered"),
    "hukou.moved_out": ("public_security", "HukouMovedOut"),
    "hukou.cancelled": ("public_security", "HukouCancelled"),
    "identity.corrected": ("public_security", "IdentityCorrected"),
    "identity.number_changed": ("public_security", "NumberChanged"),
    "identity.duplicate_merged": ("public_security", "DuplicateMerged"),
    "residence.registered": ("public_security", "ResidenceRegistered"),
    "residence.ended": ("public_security", "ResidenceEnded"),
    "residence_permit.issued": ("public_security", "ResidencePermitIssued"),
    "residence_permit.renewed": ("public_security", "ResidencePermitRenewed"),
    "residence_permit.revoked": ("public_security", "ResidencePermitRevoked"),
    "student.enrolled": ("education", "StudentEnrolled"),
    "student.transferred": ("education", "StudentTransferred"),
    "student.graduated": ("education", "StudentGraduated"),
    "student.withdrawn": ("education", "StudentWithdrawn"),
    "employment.registered": ("social_security", "EmploymentRegistered"),
    "employment.ended": ("social_security", "EmploymentEnded"),
    "unemployment.registered": ("social_security", "UnemploymentRegistered"),
    "unemployment.ended": ("social_security", "UnemploymentEnded"),
    "insurance.enrolled": ("social_security", "InsuranceEnrolled"),
    "insurance.contributed": ("social_security", "InsuranceContributed"),
    "insurance.transferred": ("social_security", "InsuranceTransferred"),
    "insurance.stopped": ("social_security", "InsuranceStopped"),
    "social_security_card.issued": ("social_security", "SocialSecurityCardIssued"),
    "training.completed": ("social_security", "TrainingCompleted"),
    "birth.certified": ("health", "BirthCertified"),
    "death.certified": ("health", "DeathCertified"),
    "health_record.opened": ("health", "HealthRecordOpened"),
    "family_doctor.contracted": ("health", "FamilyDoctorContracted"),
    "vaccination.recorded": ("health", "VaccinationRecorded"),
}
TYPES = sorted(CATALOGUE)


def hints(cls: type[Payload]) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def literal_values(hint: Any) -> tuple[Any, ...] | None:
    hint, _ = unwrap_optional(hint)
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else None


OFFSETS = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]
REGIONS = ["110105", "110103", "110118", "120110", "510107", "510104", "630102", "370983", "220402"]
LIVE = ["110105", "110118", "510107", "630102", "370983"]
TEXT_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))


def texts(max_size: int) -> st.SearchStrategy[str]:
    return st.text(TEXT_CHARS, min_size=1, max_size=max_size).map(str.strip).filter(bool)


def citizen_ids() -> st.SearchStrategy[str]:
    return st.builds(
        make_citizen_id,
        st.sampled_from(LIVE),
        st.one_of(
            st.sampled_from([bounds.EARLIEST_DATE, bounds.LATEST_DATE]),
            st.dates(bounds.EARLIEST_DATE, bounds.LATEST_DATE),
        ),
        st.integers(min_value=0, max_value=999),
    )


def employer_codes() -> st.SearchStrategy[str]:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return st.builds(
        lambda head, tail: head + tail + str(uscc.calc_check_digit(head + tail + "0")),
        st.text("0123456789", min_size=8, max_size=8),
        st.text(alphabet, min_size=9, max_size=9),
    )


def days() -> st.SearchStrategy[str]:
    """Any day of the register's range, its first and last day often."""
    return st.one_of(
        st.sampled_from([bounds.EARLIEST_DATE, bounds.LATEST_DATE]),
        st.dates(min_value=bounds.EARLIEST_DATE, max_value=bounds.LATEST_DATE),
    ).map(date.isoformat)


def periods() -> st.SearchStrategy[str]:
    """Any month of the register's range, its first and last month often."""
    return st.one_of(
        st.sampled_from([bounds.EARLIEST_PERIOD, bounds.LATEST_PERIOD]),
        st.builds("{:04d}-{:02d}".format, st.integers(1870, 2199), st.integers(1, 12)),
    )


SIMPLE: dict[Any, Callable[[], st.SearchStrategy[Any]]] = {
    fields.Day: days,
    fields.BirthDay: days,
    fields.Name: lambda: texts(100),
    fields.Text: lambda: texts(200),
    fields.ShortText: lambda: texts(64),
    fields.Identifier: lambda: st.text(string.ascii_letters + string.digits + "-_./#", min_size=1, max_size=64),
    fields.Money: lambda: st.decimals(min_value=0, max_value=10**11, places=2).map(lambda d: format(d, "f")),
    fields.Period: periods,
    fields.EmployerCode: employer_codes,
    CitizenId: citizen_ids,
    RegionCode: lambda: st.sampled_from(REGIONS),
}


def strategy_for(cls: type[Payload], name: str, hint: Any) -> st.SearchStrategy[Any]:
    inner, optional = unwrap_optional(hint)
    values = literal_values(inner)
    if values is not None:
        base: st.SearchStrategy[Any] = st.sampled_from(values)
    elif inner in SIMPLE:
        base = SIMPLE[inner]()
    elif inner is bool:
        base = st.booleans()
    else:
        metadata = [
            constraint
            for extra in typing.get_args(inner)[1:]
            for constraint in (extra.metadata if isinstance(extra, FieldInfo) else [extra])
        ]
        low = next(m.ge for m in metadata if isinstance(m, annotated_types.Ge))
        high = next(m.le for m in metadata if isinstance(m, annotated_types.Le))
        base = st.integers(min_value=int(low), max_value=int(high))  # type: ignore[call-overload]
    return st.one_of(st.none(), base) if optional else base


def fix_cross_field_rules(payload: dict[str, Any]) -> dict[str, Any]:
    for first, last in (("issued_on", "valid_until"), ("started_on", "ends_on")):
        if first in payload and last in payload:
            payload[first], payload[last] = sorted((payload[first], payload[last]))
    if payload.get("from_region_code") == payload.get("to_region_code") and "to_region_code" in payload:
        payload["to_region_code"] = next(r for r in REGIONS if r != payload["from_region_code"])
    if "name" in payload and "ethnicity" in payload and payload["name"] is payload["ethnicity"] is None:
        payload["name"] = "王晓雯"
    return {k: v for k, v in payload.items() if v is not None}


def payloads(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    cls = EVENT_TYPES[event_type]
    parts = {name: strategy_for(cls, name, hint) for name, hint in hints(cls).items() if name in cls.model_fields}
    return st.fixed_dictionaries(parts).map(fix_cross_field_rules)


EXTREME_OFFSETS = [
    timezone(timedelta(hours=14)),
    timezone(-timedelta(hours=14)),
    timezone(timedelta(hours=23, minutes=59)),
]


def timestamps() -> st.SearchStrategy[str]:
    """Any instant of the register's range, with offsets from -14:00 to +23:59; its first and last often."""
    edges = [
        moment.astimezone(tz)
        for moment in (bounds.EARLIEST_INSTANT, bounds.LATEST_INSTANT)
        for tz in [*OFFSETS, *EXTREME_OFFSETS]
    ]
    inside = st.datetimes(
        min_value=datetime(1870, 1, 2),
        max_value=datetime(2199, 12, 30),
        timezones=st.sampled_from(OFFSETS + EXTREME_OFFSETS),
    )
    return st.one_of(st.sampled_from(edges), inside).map(datetime.isoformat)


def recorded_after_births(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` recorded no earlier than the birth of everyone it names (nobody is recorded before birth)."""
    born = latest_birth(record)
    recorded = datetime.fromisoformat(record["recorded_at"])
    if born is not None and bounds.business_date(recorded) < born:
        record["recorded_at"] = datetime(born.year, born.month, born.day, 23, 59, 59, tzinfo=CHINA).isoformat()
    return record


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(TYPES))
    department = CATALOGUE[event_type][0]
    record: dict[str, Any] = {
        "event_id": str(draw(st.uuids())),
        "event_type": event_type,
        "schema_version": EVENT_TYPES[event_type].schema_version,
        "citizen_id": draw(citizen_ids()),
        "occurred_at": draw(timestamps()),
        "recorded_at": draw(timestamps()),
        "source": {
            "department": department,
            "system": draw(texts(64)),
            "region_code": draw(st.sampled_from(REGIONS)),
        },
        "payload": draw(payloads(event_type)),
    }
    for name in ("correlation_id", "causation_id"):
        if draw(st.booleans()):
            record[name] = str(draw(st.uuids()))
    # A number change or merge names the person's *other* number (§12).
    assume(all(record["payload"].get(f) != record["citizen_id"] for f in EVENT_TYPES[event_type].other_number_fields))
    return recorded_after_births(record)

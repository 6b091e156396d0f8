"""Small event histories for the eligibility tests: real typed events built through ``events.parse_event``.

``History(citizen)`` collects one citizen's events; each method adds one event of the catalogue with a
deterministic ``event_id`` and returns the history, so a case reads as a short story::

    History(MIGRANT).residence("510107", since=date(2023, 1, 1)).permit("510107", issued=date(2023, 7, 1))
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid5

from stdnum.cn import uscc

from events import Event, Payload, department_of, make_citizen_id, parse_event
from events.fields import Department

CHINA = timezone(timedelta(hours=8))
_NAMESPACE = UUID("5b1d0c4e-7f0e-4c55-9d2a-1e6f3a9b7c21")
_COUNTER = itertools.count()

# Citizens of the cases. A migrant worker from Hebei (石家庄长安区), natives of Feicheng (one with an ID from
# before 1992, when the county's code was 370922), and parents and children for the education rule.
MIGRANT = make_citizen_id("130102", date(1990, 5, 17), 123)
FEICHENG_NATIVE = make_citizen_id("370983", date(1998, 3, 2), 45)
FEICHENG_OLD_ID = make_citizen_id("370922", date(1985, 10, 9), 77)
MOTHER = make_citizen_id("130102", date(1988, 2, 3), 42)
FATHER = make_citizen_id("130102", date(1987, 7, 8), 31)


def child_born(birth: date, seq: int = 15) -> str:
    """A child's citizen ID, born on ``birth`` in Hebei (the parents' county)."""
    return make_citizen_id("130102", birth, seq)


def employer_code(region: str, name: str) -> str:
    """A valid unified social credit code for an employer of ``region`` (derived from the name, stable)."""
    digits = "".join(str(ord(c) % 10) for c in name)[:7].ljust(7, "0")
    first17 = f"91{region}MA{digits}"[:17]
    return first17 + str(uscc.calc_check_digit(first17 + "0"))


def _day(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else value


@dataclass
class History:
    """One citizen's events, in the order added (each department's in log order)."""

    citizen: str
    events: list[Event[Payload]] = field(default_factory=list)

    def add(self, event_type: str, payload: dict[str, Any], on: date, *, source_region: str = "110105") -> History:
        moment = datetime(on.year, on.month, on.day, 10, 30, tzinfo=CHINA)
        department: Department = department_of(event_type)
        raw = {
            "event_id": str(uuid5(_NAMESPACE, str(next(_COUNTER)))),
            "event_type": event_type,
            "schema_version": 1,
            "citizen_id": self.citizen,
            "occurred_at": moment.isoformat(),
            "recorded_at": (moment + timedelta(hours=1)).isoformat(),
            "source": {"department": department, "system": "test", "region_code": source_region},
            "payload": {k: v for k, v in payload.items() if v is not None},
        }
        self.events.append(parse_event(raw))
        return self

    @property
    def last_id(self) -> str:
        return str(self.events[-1].event_id)

    # --- public security ---------------------------------------------------------------------------------

    def born(
        self,
        region: str,
        birth: date,
        *,
        urban: bool = True,
        mother: str | None = None,
        father: str | None = None,
    ) -> History:
        return self.add(
            "birth.registered",
            {
                "name": "张小明",
                "sex": "male",
                "birth_date": birth.isoformat(),
                "ethnicity": "汉族",
                "household_id": f"{region}-0001",
                "household_type": "family",
                "relationship": "child",
                "address": "测试地址1号",
                "region_code": region,
                "urban": urban,
                "mother_citizen_id": mother,
                "father_citizen_id": father,
            },
            birth,
        )

    def hukou(
        self,
        region: str,
        on: date,
        *,
        urban: bool = True,
        reason: str = "stable_employment",
        household: str | None = None,
        relationship: str = "head",
        address: str = "测试地址2号",
        household_type: str = "family",
        legacy_nature: str | None = None,
    ) -> History:
        payload: dict[str, Any] = {
            "household_id": household or f"{region}-0002",
            "household_type": household_type,
            "relationship": relationship,
            "address": address,
            "region_code": region,
            "urban": urban,
            "reason": reason,
        }
        if legacy_nature is not None:
            payload["legacy_nature"] = legacy_nature
        return self.add("hukou.registered", payload, on)

    def cancelled(self, reason: str, on: date) -> History:
        return self.add("hukou.cancelled", {"reason": reason}, on)

    def moved_out(self, to: str, on: date) -> History:
        return self.add("hukou.moved_out", {"to_region_code": to, "reason": "迁出"}, on)

    def died(self, on: date) -> History:
        return self.add("hukou.cancelled", {"reason": "death"}, on)

    def residence(
        self,
        region: str,
        since: date,
        *,
        basis: str = "employment",
        tenure: str | None = "rented",
        urban: bool = True,
        on: date | None = None,
        address: str = "测试地址3号",
    ) -> History:
        return self.add(
            "residence.registered",
            {
                "address": address,
                "region_code": region,
                "urban": urban,
                "since": since.isoformat(),
                "basis": basis,
                "tenure": tenure,
            },
            on or since,
        )

    def residence_ended(self, ended_on: date) -> History:
        return self.add("residence.ended", {"ended_on": ended_on.isoformat()}, ended_on)

    def permit(
        self,
        region: str,
        issued: date,
        valid_until: date | None = None,
        *,
        permit_no: str | None = None,
        basis: str = "employment",
    ) -> History:
        return self.add(
            "residence_permit.issued",
            {
                "permit_no": permit_no or f"P{region}{issued:%Y%m%d}",
                "region_code": region,
                "issued_on": issued.isoformat(),
                "valid_until": (valid_until or issued.replace(year=issued.year + 1) - timedelta(days=1)).isoformat(),
                "basis": basis,
            },
            issued,
        )

    def permit_revoked(self, permit_no: str, on: date) -> History:
        return self.add("residence_permit.revoked", {"permit_no": permit_no, "reason": "注销"}, on)

    # --- education ---------------------------------------------------------------------------------------

    def enrolled(self, region: str, stage: str, on: date, *, school: str = "1000000001") -> History:
        return self.add(
            "student.enrolled",
            {
                "student_no": f"S{self.citizen[-8:]}",
                "school_code": school,
                "school_name": "测试学校",
                "region_code": region,
                "stage": stage,
                "enrolled_on": on.isoformat(),
                "migrant_child": True,
            },
            on,
        )

    def transferred(self, region: str, on: date, *, school: str = "1000000002") -> History:
        return self.add(
            "student.transferred",
            {
                "school_code": school,
                "school_name": "测试学校二",
                "region_code": region,
                "transferred_on": on.isoformat(),
            },
            on,
        )

    def withdrawn(self, on: date, reason: str = "moved away") -> History:
        return self.add("student.withdrawn", {"withdrawn_on": on.isoformat(), "reason": reason}, on)

    def graduated(self, stage: str, on: date, qualification: str | None = None) -> History:
        return self.add(
            "student.graduated",
            {"stage": stage, "graduated_on": on.isoformat(), "qualification": qualification},
            on,
        )

    # --- social security ---------------------------------------------------------------------------------

    def job(self, region: str, started: date, *, employer: str = "测试公司") -> History:
        return self.add(
            "employment.registered",
            {
                "employer_code": employer_code(region, employer),
                "employer_name": employer,
                "region_code": region,
                "started_on": started.isoformat(),
                "contract": "open_ended",
            },
            started,
        )

    def job_ended(self, region: str, ended: date, *, employer: str = "测试公司") -> History:
        return self.add(
            "employment.ended",
            {"employer_code": employer_code(region, employer), "ended_on": ended.isoformat()},
            ended,
        )

    def insured(self, scheme: str, region: str, started: date) -> History:
        return self.add(
            "insurance.enrolled", {"scheme": scheme, "region_code": region, "started_on": started.isoformat()}, started
        )

    def paid(self, scheme: str, first: date, months: int) -> History:
        """Contributions for ``months`` months from ``first``'s month, in events of at most 12 months."""
        start = first.year * 12 + first.month - 1
        left = months
        while left > 0:
            chunk = min(12, left)
            year, month = divmod(start, 12)
            last_y, last_m = divmod(start + chunk - 1, 12)
            self.add(
                "insurance.contributed",
                {"scheme": scheme, "period": f"{year:04d}-{month + 1:02d}", "months": chunk, "amount": "100.00"},
                date(last_y, last_m + 1, 28),
            )
            start += chunk
            left -= chunk
        return self

    def insurance_stopped(self, scheme: str, on: date) -> History:
        return self.add("insurance.stopped", {"scheme": scheme, "stopped_on": on.isoformat()}, on)

    def training(self, on: date, certificate_no: str | None = "S0001") -> History:
        return self.add(
            "training.completed",
            {
                "program": "电工职业技能培训",
                "completed_on": on.isoformat(),
                "level": "四级",
                "certificate_no": certificate_no,
            },
            on,
        )

    # --- health ------------------------------------------------------------------------------------------

    def death_certified(self, on: date, region: str) -> History:
        return self.add(
            "death.certified", {"died_on": on.isoformat(), "certificate_no": "D0001", "region_code": region}, on
        )

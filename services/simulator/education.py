"""Education (教育): school careers from kindergarten to university, with transfers and withdrawals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from services.simulator.core import STUDY_CITIES, Core, Pending, Person, School, SchoolPlan

WITHDRAW_REASONS: Final = ("外出务工", "家庭经济困难", "因病退学", "出国留学", "随父母迁居外地")


@dataclass(frozen=True, slots=True)
class _Pupil:
    """Whom a school career is planned for, and where its pending events go."""

    person: Person
    events: list[Pending]
    migrant_until: int | None  # enrolments before this day are a migrant child's
    migrant: bool  # a migrant child when the career begins (transfers are likelier)


class Education(Core):
    """What the education department records: a person's school career, planned before it is emitted."""

    def plan_school(self, p: Person, *, migrant_until: int | None = None) -> SchoolPlan:
        """The school career from preschool to university, as pending events (emitted once departures are known).

        ``migrant_until``: the child is a migrant child (``migrant_child`` true) for enrolments before that day.
        """
        rng = self.rng
        b = p.born
        entry = b.year + 6 + (1 if (b.month, b.day) > (8, 31) else 0)
        plan = SchoolPlan(events=[], work_from=p.birthday(16 + rng.randrange(7)))
        if date(entry + 16, 7, 1).toordinal() < self.start:
            return plan  # even a long school career ended before the window
        city = p.city
        schools = self.schools[city.key]
        district = city.districts.index(p.home.district)
        pupil = _Pupil(p, plan.events, migrant_until, migrant_until is not None and migrant_until > p.first)
        if rng.random() < 0.7:
            self._stage(pupil, "preschool", rng.choice(schools.preschool[district]), entry - 3, 3, None)
        primary = schools.primary[district]
        self._stage(pupil, "primary", rng.choice(primary), entry, 6, "小学毕业", transfers=primary)
        junior = schools.junior[district]
        ended, completed = self._stage(
            pupil, "junior_secondary", rng.choice(junior), entry + 6, 3, "初中毕业", 0.01, junior
        )
        r = rng.random()
        if not completed or r < 0.12 or (pupil.migrant and r < 0.3):
            plan.work_from = max(p.birthday(16), ended + 15)
            return plan
        vocational = r < 0.42 and bool(schools.vocational)
        pool = schools.vocational if vocational else schools.senior
        ended, completed = self._stage(
            pupil,
            "vocational" if vocational else "senior_secondary",
            rng.choice(pool),
            entry + 9,
            3,
            "中专毕业" if vocational else "高中毕业",
            0.03,
        )
        plan.work_from = ended + 15
        if not completed or rng.random() >= (0.25 if vocational else 0.72):
            return plan
        years = 4 if not vocational and rng.random() < 0.65 else 3
        qualification = "学士学位" if years == 4 else "专科毕业"
        if schools.higher and rng.random() < 0.55:
            ended, _ = self._stage(pupil, "higher", rng.choice(schools.higher), entry + 12, years, qualification, 0.03)
            plan.work_from = ended + 15 + rng.randrange(120)
            return plan
        self._study_elsewhere(p, plan, entry + 12, years)
        return plan

    def _stage(
        self,
        pupil: _Pupil,
        name: str,
        school: School,
        year: int,
        years: int,
        qualification: str | None,
        dropout: float = 0.0,
        transfers: list[School] | None = None,
    ) -> tuple[int, bool]:
        """One stage of schooling, begun in September of ``year`` and ``years`` long; returns the day it ended and
        whether it was completed."""
        rng = self.rng
        p = pupil.person
        lo = date(year, 9, 1).toordinal() + rng.randrange(3)
        hi = date(year + years, 6, 25).toordinal() + rng.randrange(12)
        completed = rng.random() >= dropout
        if not completed:
            hi = self.between(lo + 30, hi - 30)
        if hi < self.start or lo > self.end:
            return hi, completed  # over before the window, or after it
        code, school_name, school_district = school
        start_year = self.start_date.year
        enrolled, grade = lo, 1
        if lo < p.first:
            if p.first == self.start:  # at school when the window opens: migrated with the current grade
                grade = min(years, max(1, start_year - year))
            else:  # a child who arrives mid-stage joins a school a few weeks later
                enrolled = p.first + 7 + rng.randrange(30)
                if enrolled >= hi - 30:
                    return hi, completed
                joined = date.fromordinal(enrolled)
                grade = min(years, max(1, joined.year - year + (1 if joined.month >= 9 else 0)))
        student_no = f"G{p.cid}" if name != "higher" else f"{year}{code[-4:]}{self.next_number('student:' + code):05d}"
        pupil.events.append(
            Pending(
                "student.enrolled",
                enrolled,
                {
                    "student_no": student_no,
                    "school_code": code,
                    "school_name": school_name,
                    "region_code": school_district.code_in(max(year, start_year)),
                    "stage": name,
                    "grade": grade,
                    "enrolled_on": self.day_text(enrolled),
                    "migrant_child": pupil.migrant_until is not None and enrolled < pupil.migrant_until,
                },
                migrate=True,
            )
        )
        if transfers and len(transfers) > 1 and years > 1 and rng.random() < (0.15 if pupil.migrant else 0.07):
            moved = year + 1 + rng.randrange(years - 1)
            day = (date(moved, 2, 26) if rng.random() < 0.4 else date(moved, 9, 1)).toordinal() + rng.randrange(5)
            if enrolled < day < hi:
                target = rng.choice([s for s in transfers if s[0] != code])
                pupil.events.append(
                    Pending(
                        "student.transferred",
                        day,
                        {
                            "school_code": target[0],
                            "school_name": target[1],
                            "region_code": target[2].code_in(moved),
                            "transferred_on": self.day_text(day),
                        },
                    )
                )
        if completed:
            payload: dict[str, Any] = {"stage": name, "graduated_on": self.day_text(hi)}
            if qualification:
                payload["qualification"] = qualification
            pupil.events.append(Pending("student.graduated", hi, payload))
        else:
            reason = rng.choice(WITHDRAW_REASONS)
            pupil.events.append(Pending("student.withdrawn", hi, {"withdrawn_on": self.day_text(hi), "reason": reason}))
        return hi, completed

    def _study_elsewhere(self, p: Person, plan: SchoolPlan, year: int, years: int) -> None:
        """University in another city from September of ``year``: away while studying; some move the hukou with
        them, many never come back."""
        rng = self.rng
        lo = date(year, 9, 1).toordinal()
        hi = date(year + years, 6, 30).toordinal()
        plan.work_from = hi + 15 + rng.randrange(120)
        plan.away.append((lo, hi))
        study_city = rng.choice([c for c in STUDY_CITIES if c[:4] != p.city.region_code[:4]])
        returns = rng.random() < 0.55
        if lo - 10 >= self.start and rng.random() < (0.5 if year < 2015 else 0.2):
            plan.hukou_moves.append(
                ("hukou.moved_out", lo - 10, {"to_region_code": study_city, "reason": "考入外地高校"})
            )
            if returns:
                back = hi + 20 + rng.randrange(150)
                plan.hukou_moves.append(
                    ("hukou.registered", back, {"reason": "return", "from_region_code": study_city})
                )
                plan.work_from = back + 10 + rng.randrange(60)
        if not returns:
            plan.left = max(lo - 10, p.first)

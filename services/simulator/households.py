"""Households and life stories: who lives in the simulated cities, and what happens to them.

Six kinds of household: native families, young natives who marry and found a household, elderly couples, migrant
workers on their own, migrant families, and students who come for university. Each story decides the big dates
first (death, departures, settlement), then lets the departments record what happens in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate
from typing import Final

from services.simulator.cities import CITIES, City
from services.simulator.core import ORIGIN_SYSTEM, Event, Home, Person, SchoolPlan
from services.simulator.education import WITHDRAW_REASONS, Education
from services.simulator.health import Health
from services.simulator.numbers import SeveralNumbers
from services.simulator.public_security import PublicSecurity
from services.simulator.social_security import SocialSecurity

_KINDS: Final = (
    ("family", 30),
    ("young", 20),
    ("elderly", 11),
    ("migrant", 17),
    ("migrant_family", 12),
    ("student", 10),
)

_MOVE_REASONS: Final = ("工作调动", "投靠配偶", "购房迁出", "投靠子女")


_KIND_WEIGHTS: Final = tuple(accumulate(w for _, w in _KINDS))


@dataclass(frozen=True, slots=True)
class _Study:
    """Where and when a university student studies."""

    school_code: str
    school_name: str
    region: str
    """The campus's region code when the student enrolled (or when the window opened)."""
    origin: str
    """The region the student came from."""
    campus: Home
    year: int
    enrolled: int
    """The day of enrolment (an ordinal)."""


@dataclass(slots=True)
class _Migrants:
    """A migrant household as its story is decided: where from, where, who, and its fate."""

    city: City
    origin: str
    home: Home
    ethnicity: str
    head: Person
    arrival: int
    settle: int | None
    leave: int | None
    adults: list[tuple[Person, str, int]]  # (person, relationship to the head, since)
    mother: Person | None = None
    father: Person | None = None
    kids: list[tuple[Person, int, bool]] = field(default_factory=list)  # (child, since, born here)


class Simulation(PublicSecurity, Education, SocialSecurity, Health, SeveralNumbers):
    """One run of the simulation: households one after the other, each with the life stories of its members."""

    def households(self, residents: int) -> Iterator[list[Event]]:
        """Generate households until ``residents`` people have been simulated; yield each one's sorted events."""
        self.room = residents
        rng = self.rng
        builders = {
            "family": self.family,
            "young": self.young,
            "elderly": self.elderly,
            "migrant": self.migrant,
            "migrant_family": self.migrant_family,
            "student": self.student,
        }
        while self.room > 0:
            city = rng.choices(self.cities, cum_weights=self.city_weights)[0]
            kind = rng.choices(_KINDS, cum_weights=_KIND_WEIGHTS)[0][0]
            if kind == "student" and not city.universities:
                kind = "migrant"
            self.buffer = []
            builders[kind](city)
            self.renumber()
            self.buffer.sort()  # (occurred_at, serial): the serial is unique, the dicts are never compared
            yield [event for _, _, event in self.buffer]

    def kids_plan(self, mother_born: date, lo: int, hi: int) -> list[date]:
        """Birth dates of a woman's children between days ``lo`` and ``hi`` (one-, two- and three-child eras).

        Never after the window's last day, whatever ``hi`` says (a parent's death may fall after the window, and
        a child born after it would be recorded after the window too: its own city would reject it)."""
        rng = self.rng
        r = rng.random()
        wanted = 1 if r < 0.5 else 2 if r < 0.92 else 3
        births: list[date] = []
        day = max(lo, mother_born.toordinal() + 22 * 365 + rng.randrange(9 * 365))
        latest = min(hi, self.end, mother_born.toordinal() + 40 * 365)
        while len(births) < wanted and day <= latest:
            # Second children were rare for urban couples before the 2016 two-child policy.
            if births and date.fromordinal(day).year < 2016 and rng.random() < 0.6:
                break
            births.append(date.fromordinal(day))
            day += 540 + rng.randrange(6 * 365)
        return births

    def family(self, city: City) -> None:
        """A native household: a couple, their children (some born in the window) and perhaps a grandparent."""
        rng = self.rng
        year0 = self.start_date.year
        home = self.home(city, year0)
        ethnicity = self.pick_ethnicity(city)
        head_born = self.born_in(year0 - 24 - rng.randrange(34))
        head_male = rng.random() < 0.9
        head = self.native(
            city,
            head_male,
            head_born,
            home,
            ethnicity=ethnicity,
        )
        members: list[tuple[Person, str]] = [(head, "head")]
        spouse: Person | None = None
        if self.room > 0 and rng.random() < 0.88:
            spouse_born = self.born_in(head_born.year + (rng.randrange(-2, 6) if head_male else rng.randrange(-5, 3)))
            spouse = self.native(
                city,
                not head_male,
                spouse_born,
                home,
                ethnicity=ethnicity if rng.random() < 0.9 else None,
            )
            members.append((spouse, "spouse"))
        mother, father = (spouse, head) if head_male else (head, spouse)
        births: list[Person] = []
        if mother is not None:
            mother_end = self.births_end(mother)
            surname = (father or mother).surname or None
            for child_born in self.kids_plan(mother.born, mother.born_day, mother_end):
                if self.room <= 0:
                    break
                child = self.native(
                    city,
                    rng.random() < 0.52,
                    child_born,
                    home,
                    ethnicity=ethnicity,
                    surname=surname,
                )
                if child.born_day < self.start:
                    members.append((child, "child"))
                else:
                    births.append(child)
        if self.room > 0 and rng.random() < 0.25 and head_born.year - 22 > year0 - 95:
            elder_born = self.born_in(head_born.year - 22 - rng.randrange(10))
            elder = self.native(
                city,
                rng.random() < 0.4,
                elder_born,
                home,
                ethnicity=ethnicity,
            )
            members.append((elder, "parent"))
        for p, relationship in members:
            self.legacy_hukou(p, home, relationship)
        for child in births:
            assert mother is not None
            self.birth(child, mother, father, home, "child")
        for p, relationship in members:
            self.native_life(p, anchored=relationship in ("head", "spouse"))
        for child in births:
            self.native_life(child)

    def young(self, city: City) -> None:
        """A young native who grows up in the window, marries, founds a household and has children."""
        rng = self.rng
        year0 = self.start_date.year
        parents_home = self.home(city, year0)
        born = self.born_in(year0 - 3 - rng.randrange(20))
        a = self.native(
            city,
            rng.random() < 0.5,
            born,
            parents_home,
        )
        self.legacy_hukou(a, parents_home, "child")
        plan = self.plan_youth(a)
        wedding = max(a.birthday(24 + rng.randrange(9)), plan.work_from + 120 + rng.randrange(700))
        if (
            plan.left is not None
            or self.room <= 0
            or wedding > min(self.end - 60, a.last)
            or any(lo <= wedding <= hi for lo, hi in plan.away)
            or rng.random() < 0.12
        ):
            self.native_life(a, plan)
            return
        wedding_year = date.fromordinal(wedding).year
        home = self.home(city, wedding_year, urban_bias=True)
        b_born = self.born_in(born.year + rng.randrange(-3, 4))
        b, b_plan, b_from = self._spouse(city, a, b_born, home, wedding)
        a_from = parents_home.district.code_in(wedding_year)
        self._couple_registers(a, b, home, wedding, (a_from, b_from))
        mother, father = (b, a) if a.male else (a, b)
        births = self._children(city, mother, father, home, wedding)
        self.native_life(a, plan, anchored=True)
        if b_plan is not None:
            self.native_life(b, b_plan, anchored=True)
        else:
            self.settler_life(b, arrival=wedding)
        for child in births:
            self.native_life(child)

    def _spouse(
        self, city: City, a: Person, born: date, home: Home, wedding: int
    ) -> tuple[Person, SchoolPlan | None, str | None]:
        """``a``'s spouse, born on ``born``: most grew up in the city too (their school career cut at the wedding
        if need be), the others come from elsewhere and move their hukou here on marrying (投靠配偶). With the
        spouse's own plan (``None`` for one from elsewhere) and the region their hukou comes from."""
        rng = self.rng
        wedding_year = date.fromordinal(wedding).year
        if rng.random() >= 0.7:
            origin = rng.choice(city.origins)
            return (
                self.person(city, not a.male, born, division=origin, home=home, first=wedding, origin=origin),
                None,
                origin,
            )
        b_home = self.home(city, self.start_date.year)
        b = self.native(
            city,
            not a.male,
            born,
            b_home,
            ethnicity=a.ethnicity if rng.random() < 0.85 else None,
        )
        self.legacy_hukou(b, b_home, "child")
        plan = self.plan_youth(b)
        if plan.left is not None or plan.work_from > wedding:
            plan = SchoolPlan(
                events=[e for e in plan.events if e.day < wedding - 30],
                work_from=min(plan.work_from, wedding),
                away=[(lo, min(hi, wedding - 60)) for lo, hi in plan.away if lo < wedding - 60],
            )
        return b, plan, b_home.district.code_in(wedding_year)

    def _couple_registers(
        self, a: Person, b: Person, home: Home, wedding: int, came_from: tuple[str | None, str | None]
    ) -> None:
        """The couple's hukou registered in their new home around the wedding: the head's, then the spouse's (each
        from where ``a``'s and ``b``'s was, in ``came_from``)."""
        rng = self.rng
        wedding_year = date.fromordinal(wedding).year
        new_code = home.district.code_in(wedding_year)
        head, spouse = (a, b) if a.male else (b, a)
        for p, relationship, day, reason in (
            (head, "head", wedding - rng.randrange(60), "stable_residence"),
            (spouse, "spouse", wedding + 10 + rng.randrange(50), "family_reunion"),
        ):
            payload = self.hukou_payload(home, relationship, reason, wedding_year)
            previous = came_from[0] if p is a else came_from[1]
            if previous is not None and previous != new_code:
                payload["from_region_code"] = previous
            if self.emit(p, "hukou.registered", max(day, p.first), payload) is not None:
                p.hukou_here = True
                p.home = home
                p.origin = None

    def _children(self, city: City, mother: Person, father: Person, home: Home, wedding: int) -> list[Person]:
        """The couple's children, born into their home while there is room in the simulation."""
        rng = self.rng
        births: list[Person] = []
        mother_end = self.births_end(mother)
        for child_born in self.kids_plan(mother.born, wedding + 280, min(mother_end, father.last + 270)):
            if self.room <= 0:
                break
            child = self.native(
                city,
                rng.random() < 0.52,
                child_born,
                home,
                ethnicity=father.ethnicity if rng.random() < 0.8 else mother.ethnicity,
                surname=father.surname or None,
            )
            births.append(child)
            self.birth(child, mother, father, home, "child")
        return births

    def elderly(self, city: City) -> None:
        """An elderly couple or widow(er) in their own household."""
        rng = self.rng
        year0 = self.start_date.year
        home = self.home(city, year0)
        born = self.born_in(year0 - 56 - rng.randrange(34))
        ethnicity = self.pick_ethnicity(city)
        head = self.native(
            city,
            rng.random() < 0.6,
            born,
            home,
            ethnicity=ethnicity,
        )
        members = [(head, "head")]
        if self.room > 0 and rng.random() < 0.6:
            spouse_born = self.born_in(born.year + rng.randrange(-4, 5))
            spouse = self.native(
                city,
                not head.male,
                spouse_born,
                home,
                ethnicity=ethnicity,
            )
            members.append((spouse, "spouse"))
        for p, relationship in members:
            self.legacy_hukou(p, home, relationship)
            self.native_life(p, anchored=True)

    def migrant(self, city: City) -> None:
        """A migrant worker on their own."""
        self.migrants(city, family=False)

    def migrant_family(self, city: City) -> None:
        """A migrant couple, with the children they bring or have here."""
        self.migrants(city, family=True)

    def migrants(self, city: City, *, family: bool) -> None:
        """Migrants from one of the city's usual places of origin: they arrive (some before the window), register
        their residence, get permits, work; then they settle (落户), leave again, or simply stay on."""
        rng = self.rng
        origin = rng.choice(city.origins)
        if rng.random() < 0.3:
            arrival = self.start - 30 - rng.randrange(3650)  # already here when the window opens
        else:
            arrival = self.between(self.start, self.end - 60)
        arrival_year = date.fromordinal(arrival).year
        home = self.home(city, arrival_year, rented=True, urban_bias=rng.random() < 0.8)
        head_born = self.born_in(arrival_year - 18 - rng.randrange(20 if family else 27))
        ethnicity = self.pick_ethnicity(city)
        head_male = rng.random() < (0.85 if family else 0.6)
        head = self.person(
            city, head_male, head_born, division=origin, home=home, first=arrival, ethnicity=ethnicity, origin=origin
        )
        settle, leave = self._migrants_fate(arrival, head)
        h = _Migrants(city, origin, home, ethnicity, head, arrival, settle, leave, [(head, "head", arrival)])
        if family and self.room > 0:
            self._migrant_family_joins(h)
        if leave is not None:
            for p, _, _ in h.adults:
                self.leave(p, leave)
            for child, _, _ in h.kids:
                self.leave(child, leave)
        new_home: Home | None = None
        reason = ""
        if settle is not None:
            year = date.fromordinal(settle).year
            new_home = self.home(city, year, district=home.district)
            reason = self.settlement_reason(city, year)
            if reason == "collective":
                new_home.household_type = "collective"
        self._born_to_migrants(h, new_home)
        for p, _, since in h.adults:
            basis = "employment" if p is head or rng.random() < 0.6 else "residence"
            self.residence(p, home, since, basis, settle, leave)
        for child, since, _ in h.kids:
            if child.origin is not None and rng.random() < 0.85:
                self.residence(child, home, since + rng.randrange(40), "residence", settle, leave)
        if settle is not None and new_home is not None:
            correlation = self.uuid()
            for p, relationship, _ in h.adults:
                self.settle(p, new_home, settle, reason if p is head else "family_reunion", relationship, correlation)
            for child, _, _ in h.kids:
                if child.origin is not None:
                    self.settle(child, new_home, settle + rng.randrange(30), "family_reunion", "child", correlation)
        for p, _, since in h.adults:
            self.migrant_life(p, since, leave, works=p is head or rng.random() < 0.65)
        for child, since, _ in h.kids:
            self.child_life(child, since=since, settle=settle)

    def _migrants_fate(self, arrival: int, head: Person) -> tuple[int | None, int | None]:
        """The household's fate, as ``(settle, leave)`` days: settle here (落户), leave again, or stay on as
        migrants (both ``None``)."""
        rng = self.rng
        r = rng.random()
        settle: int | None = None
        leave: int | None = None
        if r < 0.24:
            settle = max(arrival, self.start) + 540 + rng.randrange(6 * 365)
            if settle > min(self.end, head.last):
                settle = None
        elif r < 0.7:
            leave = max(arrival, self.start) + 120 + int(rng.expovariate(1 / (3.5 * 365)))
            if leave > self.end:
                leave = None
        return settle, leave

    def _migrant_family_joins(self, h: _Migrants) -> None:
        """The head's spouse joins them (at once or later, if before they leave) and their children are born,
        here or before: the adults, the parents and the children of ``h`` filled in."""
        rng = self.rng
        head, arrival, leave, settle, home = h.head, h.arrival, h.leave, h.settle, h.home
        head_male = head.male
        joins = arrival if rng.random() < 0.6 else arrival + 180 + rng.randrange(700)
        if not ((leave is None or joins < leave - 30) and joins <= self.end - 30):
            return
        spouse_born = self.born_in(head.born.year + (rng.randrange(-1, 5) if head_male else rng.randrange(-4, 2)))
        spouse = self.person(
            h.city,
            not head_male,
            spouse_born,
            division=h.origin,
            home=home,
            first=joins,
            ethnicity=h.ethnicity,
            origin=h.origin,
        )
        h.adults.append((spouse, "spouse", joins))
        mother, father = (spouse, head) if head_male else (head, spouse)
        h.mother, h.father = mother, father
        stay_end = self.end if leave is None else leave - 200
        last_birth = min(stay_end, mother.last - 60, father.last + 270)
        for child_born in self.kids_plan(mother.born, mother.born_day, last_birth):
            if self.room <= 0:
                break
            child_day = child_born.toordinal()
            here = child_day >= joins
            if not here and child_day < joins - 14 * 365:
                continue  # grown up and stayed at home
            settled_first = settle is not None and child_day >= settle
            child = self.person(
                h.city,
                rng.random() < 0.52,
                child_born,
                division=self.native_division(home.district, child_born) if settled_first else h.origin,
                home=home,
                first=max(child_day, joins),
                ethnicity=h.ethnicity,
                surname=father.surname or None,
                origin=None if settled_first else h.origin,
            )
            h.kids.append((child, max(child_day, joins), here))

    def _born_to_migrants(self, h: _Migrants, new_home: Home | None) -> None:
        """The births of the children born here: in the new home if the household had settled by then, else
        certified by the city's hospital and registered at the parents' place of origin."""
        mother, settle, home = h.mother, h.settle, h.home
        for child, _, here in h.kids:
            if not here or mother is None:
                continue
            if new_home is not None and settle is not None and child.born_day >= settle:
                self.birth(child, mother, h.father, new_home, "child")
                child.home = new_home
                continue
            origin_home = Home(
                district=home.district,
                place="",
                urban=False,
                household_id=f"{h.origin}-{self.next_number('household:' + h.origin):08d}",
                household_type="family",
                address=self.origin_address(h.origin),
                clinic=home.clinic,
            )
            self.birth(child, mother, h.father, origin_home, "child", at_origin=h.origin)

    def student(self, city: City) -> None:
        """A student who comes for university; some stay, find work and settle, the others leave."""
        rng = self.rng
        school_code, school_name, district = rng.choice(self.schools[city.key].higher)
        # Students already enrolled when the window opens are among them, as long as they are still studying.
        year = self.start_date.year - 2 + rng.randrange(self.end_date.year - self.start_date.year + 3)
        if date(year, 9, 1).toordinal() > self.end - 10:
            year -= 1
        enrolled = date(year, 9, 1).toordinal()
        if rng.random() < 0.7:
            origin = rng.choice(city.origins)
        else:
            other = rng.choice([c for c in CITIES if c.key != city.key])
            origin = rng.choice(other.districts).code
        born = self.born_in(year - 18 - (1 if rng.random() < 0.3 else 0))
        campus = self.home(city, year, district=district, household="collective", urban_bias=True)
        p = self.person(city, rng.random() < 0.5, born, division=origin, home=campus, first=enrolled, origin=origin)
        years = 4 if rng.random() < 0.75 else 3
        graduated = date(year + years, 6, 20).toordinal() + rng.randrange(15)
        withdrawn = rng.random() < 0.04
        done = graduated if not withdrawn else self.between(max(enrolled, self.start) + 60, graduated - 60)
        stays = rng.random() < 0.55
        if not stays:
            self.leave(p, done + rng.randrange(60))
        study = _Study(
            school_code, school_name, district.code_in(max(year, self.start_date.year)), origin, campus, year, enrolled
        )
        self._enrol(p, study, years)
        self._study_ends(p, done, years, withdrawn)
        if not stays:
            self._graduate_leaves(p, study, done)
            return
        settle_day = done + 30 + rng.randrange(700)
        if rng.random() < 0.6 and settle_day <= min(self.end, p.last):
            new_home = self.home(city, date.fromordinal(settle_day).year, urban_bias=True)
            reason = "talent" if city.key in ("liaoyuan", "chengdu") and rng.random() < 0.5 else "graduate"
            self.settle(p, new_home, settle_day, reason, "head", self.uuid())
        elif not p.hukou_here and p.residence_registered:
            self.permits(p, enrolled, "study", None, None)
        self.card(p, done)
        covered = self.career(p, done + 15 + rng.randrange(120), p.retirement(), legacy=False)
        self.resident_schemes(p, covered, done, since=enrolled)
        self.health(p, arrival=enrolled)
        self.death(p)

    def _enrol(self, p: Person, study: _Study, years: int) -> None:
        """The student's hukou moved to the campus's collective household, or a residence registered there; then
        the enrolment."""
        rng = self.rng
        # Until the 2010s most students moved their hukou into the university's collective household.
        if rng.random() < (0.6 if study.year < 2012 else 0.3):
            payload = self.hukou_payload(study.campus, "other", "collective", max(study.year, self.start_date.year))
            payload["from_region_code"] = study.origin
            if self.emit(p, "hukou.registered", study.enrolled + 5 + rng.randrange(30), payload, migrate=True):
                p.hukou_here = True
        elif self.emit(
            p,
            "residence.registered",
            study.enrolled + 3 + rng.randrange(20),
            {
                "address": study.campus.address,
                "region_code": study.region,
                "urban": study.campus.urban,
                "since": self.day_text(study.enrolled),
                "basis": "study",
                "tenure": "other",
            },
            migrate=True,
        ):
            p.residence_registered = True
        self.emit(
            p,
            "student.enrolled",
            study.enrolled,
            {
                "student_no": f"{study.year}{study.school_code[-4:]}"
                f"{self.next_number('student:' + study.school_code):05d}",
                "school_code": study.school_code,
                "school_name": study.school_name,
                "region_code": study.region,
                "stage": "higher",
                "grade": min(years, max(1, self.start_date.year - study.year)) if study.enrolled < self.start else 1,
                "enrolled_on": self.day_text(study.enrolled),
                "migrant_child": False,
            },
            migrate=True,
        )

    def _study_ends(self, p: Person, done: int, years: int, withdrawn: bool) -> None:
        """Withdrawn on ``done``, or graduated: a bachelor's degree after four years, a diploma after three."""
        if withdrawn:
            self.emit(
                p,
                "student.withdrawn",
                done,
                {"withdrawn_on": self.day_text(done), "reason": self.rng.choice(WITHDRAW_REASONS)},
            )
        else:
            qualification = "学士学位" if years == 4 else "专科毕业"
            self.emit(
                p,
                "student.graduated",
                done,
                {"stage": "higher", "graduated_on": self.day_text(done), "qualification": qualification},
            )

    def _graduate_leaves(self, p: Person, study: _Study, done: int) -> None:
        """A student who does not stay: insured as a student, the hukou moved out (home, or elsewhere) or the
        residence ended, and the rest of their life lived elsewhere."""
        self.resident_schemes(p, None, done, since=study.enrolled)
        if p.hukou_here:
            target = study.origin if self.rng.random() < 0.5 else self.rng.choice(self.elsewhere(p))
            self.emit(p, "hukou.moved_out", p.last, {"to_region_code": target, "reason": "毕业迁出"})
        elif p.residence_registered:
            self.emit(p, "residence.ended", p.last, {"ended_on": self.day_text(p.last)})
        self.health(p, arrival=study.enrolled)
        self.death(p)

    # ---------------------------------------------------------------------------------------------------------
    # Lives
    # ---------------------------------------------------------------------------------------------------------

    def plan_youth(self, p: Person) -> SchoolPlan:
        """A native's school career, and for some young men two years of military service after it.

        Enlisted men have their hukou cancelled for the service and registered again as veterans; they are away
        meanwhile, and start working after it.
        """
        plan = self.plan_school(p)
        rng = self.rng
        work_from = plan.work_from
        if (
            p.male
            and plan.left is None
            and self.start <= work_from <= p.last
            and work_from < p.birthday(20)
            and rng.random() < 0.08
        ):
            enlist = work_from + 30 + rng.randrange(200)
            back = enlist + 2 * 365 + rng.randrange(60)
            plan.away.append((enlist + 1, back - 1))
            plan.hukou_moves.append(("hukou.cancelled", enlist, {"reason": "military_service"}))
            plan.hukou_moves.append(("hukou.registered", back, {"reason": "veteran"}))
            plan.work_from = back + 30 + rng.randrange(150)
        return plan

    def native_life(self, p: Person, plan: SchoolPlan | None = None, *, anchored: bool = False) -> None:
        """School, departures, work, insurance, health and death of someone with a hukou here.

        ``anchored``: a parent of the household, who stays (the children move out, the parents do not).
        """
        rng = self.rng
        if plan is None:
            plan = self.plan_youth(p)
        p.away.extend(plan.away)
        if plan.left is not None:
            self.leave(p, plan.left)
        work_from = plan.work_from
        # A few adults move their hukou away (work elsewhere, joining a spouse), a handful emigrate.
        adult = max(p.first, p.birthday(18), work_from)
        moved: int | None = None
        emigrated: int | None = None
        if not anchored and adult < p.last and plan.left is None:
            r = rng.random()
            if r < 0.05:
                moved = self.between(adult, p.last)
                self.leave(p, moved)
                p.destination = rng.choice(self.elsewhere(p))
            elif r < 0.054:
                emigrated = self.between(adult, p.last)
                self.leave(p, emigrated)
        self.flush(p, plan.events)
        for event_type, day, payload in plan.hukou_moves:
            if event_type == "hukou.registered":
                # Back in the parents' household: from a university elsewhere, or from military service.
                returned = self.hukou_payload(p.home, "child", payload["reason"], date.fromordinal(day).year)
                if "from_region_code" in payload:
                    returned["from_region_code"] = payload["from_region_code"]
                payload = returned
            if self.emit(p, event_type, day, payload) is not None:
                p.hukou_here = event_type == "hukou.registered"
        covered: int | None = None
        pensioner = False
        if work_from <= p.last:
            at_start = p.first == self.start and work_from <= self.start
            retire = p.retirement()
            if at_start and retire <= self.start:
                pensioner = self.pensioner(p)
            else:
                if rng.random() < (0.85 if p.home.urban else 0.6):
                    covered = self.career(
                        p,
                        max(work_from, p.first),
                        retire,
                        legacy=at_start and rng.random() < 0.8,
                        since=work_from,
                        leaving=p.gone is not None,
                    )
                self.card(p, max(work_from, p.first))
        if moved is not None and p.destination is not None:
            reason = rng.choice(_MOVE_REASONS)
            self.emit(p, "hukou.moved_out", moved, {"to_region_code": p.destination, "reason": reason})
        if emigrated is not None and self.emit(p, "hukou.cancelled", emigrated, {"reason": "emigration"}) is not None:
            p.hukou_here = False
        if not pensioner:
            self.resident_schemes(p, covered, work_from)
        self.identity(p)
        self.health(p, arrival=None)
        self.death(p)

    def settler_life(self, p: Person, *, arrival: int) -> None:
        """Someone who married into the city from elsewhere (the hukou moved here on the wedding)."""
        covered = None
        if p.birthday(18) <= p.last:
            covered = self.career(p, max(arrival + 30, p.birthday(18)), p.retirement(), legacy=False)
            self.card(p, arrival)
        self.resident_schemes(p, covered, arrival)
        self.health(p, arrival=arrival)
        self.death(p)

    def migrant_life(self, p: Person, since: int, leave: int | None, *, works: bool) -> None:
        """Work and insurance of a migrant adult, with the pension carried in on arrival and out on leaving."""
        rng = self.rng
        if works and p.birthday(16) <= p.last:
            carried = 0
            if p.born.year < date.fromordinal(since).year - 22 and rng.random() < 0.5:
                carried = 6 + rng.randrange(120)  # contributions paid at home or in an earlier city
            self.career(
                p,
                max(since, p.birthday(16)),
                p.retirement(),
                legacy=since < self.start and rng.random() < 0.85,
                carried=carried,
                leaving=leave is not None,
            )
            if rng.random() < 0.7:
                self.card(p, since + 30)
        elif p.hukou_here:
            self.resident_schemes(p, None, since)  # a settled spouse who does not work
        self.health(p, arrival=since)
        self.death(p)

    def child_life(self, p: Person, *, since: int, settle: int | None) -> None:
        """A migrant's child: school here as a migrant child (until the family settles), resident insurance."""
        plan = self.plan_school(p, migrant_until=settle if settle is not None else self.end + 1)
        p.away.extend(plan.away)
        if plan.left is not None:
            self.leave(p, plan.left)
        self.flush(p, plan.events)
        covered = None
        if plan.work_from <= p.last and p.birthday(18) <= p.last:
            covered = self.career(p, max(plan.work_from, p.birthday(16)), p.retirement(), legacy=False)
        # Migrant children join the city's resident medical insurance on the permit in some cities.
        if settle is not None or self.rng.random() < 0.4:
            self.resident_schemes(p, covered, plan.work_from, since=since + 30 + self.rng.randrange(120))
        self.health(p, arrival=since)
        self.death(p)

    def death(self, p: Person) -> None:
        """Health certifies the death; public security cancels the hukou weeks later, sometimes never.

        The cancellation is public security's own record of the death: it happened (``occurred_at``) on the day
        of death and is recorded (``recorded_at``) when the family deregisters, weeks later. A few records carry
        a clerically wrong date, which the resident view flags as disagreeing claims.
        """
        died = p.died
        if died is None or died > self.end or (p.gone is not None and p.gone < died):
            return
        rng = self.rng
        day = died + rng.randrange(3)
        year = date.fromordinal(died).year
        region = p.home.district.code_in(year)
        correlation = self.uuid()
        number = f"D{region}{year}{self.next_number(f'death:{region}:{year}'):05d}"
        certified = self.emit(
            p,
            "death.certified",
            day,
            {"died_on": self.day_text(died), "certificate_no": number, "region_code": region},
            force=True,
            correlation=correlation,
        )
        if certified is None:
            return
        claimed = died if rng.random() < 0.98 else died + rng.choice((-3, -2, -1, 1, 2, 3))
        if p.hukou_here and rng.random() < 0.85:
            self.emit(
                p,
                "hukou.cancelled",
                claimed,
                {"reason": "death"},
                force=True,
                correlation=correlation,
                causation=certified,
                recorded=day + 7 + int(rng.expovariate(1 / 25)),
            )
        elif p.origin is not None and rng.random() < 0.5:
            # The hukou is at the place the migrant came from: deregistered there, later still.
            self.emit(
                p,
                "hukou.cancelled",
                claimed,
                {"reason": "death"},
                force=True,
                system=ORIGIN_SYSTEM,
                region=p.origin,
                correlation=correlation,
                causation=certified,
                recorded=day + 20 + int(rng.expovariate(1 / 40)),
            )

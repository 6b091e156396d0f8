"""HR and social security (人社): jobs, employee and resident insurance, contributions, transfers, cards, training."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from services.simulator.cities import Employer
from services.simulator.core import DAY_OPEN, DAY_SPAN, Core, Person, money

_TRAININGS: Final = (
    "电工职业技能培训",
    "焊工职业技能培训",
    "育婴员培训",
    "养老护理员培训",
    "中式烹调师培训",
    "电子商务培训",
    "叉车司机培训",
    "美容美发培训",
    "家政服务员培训",
    "计算机操作员培训",
    "汽车维修工培训",
    "创业培训(SYB)",
)

_LEVELS: Final = ("五级/初级工", "四级/中级工", "三级/高级工")

_JOB_END_REASONS: Final = ("劳动合同期满", "个人原因离职", "单位裁员", "协商解除劳动合同", "单位经营调整")

# Resident medical insurance: the individual's yearly premium in CNY (national minimums, roughly).
_RESIDENT_MEDICAL_PREMIUM: Final = {
    2004: 10,
    2007: 20,
    2010: 30,
    2012: 60,
    2014: 90,
    2016: 150,
    2017: 180,
    2018: 220,
    2019: 250,
    2020: 280,
    2021: 320,
    2022: 350,
    2023: 380,
    2024: 400,
    2025: 400,
    2026: 400,
}


def _premium(year: int) -> int:
    """The resident medical insurance premium of ``year``."""
    known = [y for y in _RESIDENT_MEDICAL_PREMIUM if y <= year]
    return _RESIDENT_MEDICAL_PREMIUM[max(known)] if known else 10


_RESIDENT_PENSION_TIERS: Final = (100, 200, 300, 500, 800, 1000, 1500, 2000)

_CARDS_FROM: Final = date(2010, 1, 1).toordinal()

_CARDS_UNTIL: Final = date(2021, 12, 31).toordinal()


@dataclass(slots=True)
class _WorkingLife:
    """What a career carries from one job to the next."""

    factor: float  # the person's wage against the city's average
    cadence: int  # months paid at a time
    wage: dict[int, float]  # the city's average monthly base by year
    carried: int  # pension months carried in from elsewhere
    pension_months: int  # carried in, and paid here since
    covered: int | None = None  # the first day of employee medical insurance
    transferred_in: bool = False


@dataclass(frozen=True, slots=True)
class _Job:
    employer: Employer
    region: str  # the employer's district's code when the job is registered
    contract: str
    start: int
    end: int


class SocialSecurity(Core):
    """What HR and social security records about working lives and insurance."""

    def card(self, p: Person, earliest: int) -> None:
        """The social-security card, issued once (the national roll-out ran through the 2010s)."""
        rng = self.rng
        if rng.random() >= 0.85:
            return
        lo = max(earliest, p.first, _CARDS_FROM)
        hi = min(p.last, _CARDS_UNTIL)
        day = self.between(lo, hi) if lo <= hi else lo + rng.randrange(400)
        number = f"{p.city.key[0].upper()}{self.next_number('card'):08d}"
        self.emit(p, "social_security_card.issued", day, {"card_no": number, "issued_on": self.day_text(day)})

    def contributions(
        self,
        p: Person,
        scheme: str,
        first: int,
        last: int,
        monthly: float,
        cadence: int,
        settle: tuple[int, int] | None = None,
    ) -> int:
        """Contributions to ``scheme`` for months ``first``..``last`` (month numbers ``year * 12 + month - 1``),
        paid in calendar-aligned chunks of ``cadence`` months after each chunk. Returns the months paid.

        ``settle``: ``(day, second)`` the job ends; what is still due then is paid on that day, before it ends.
        """
        rng = self.rng
        paid = 0
        month = max(first, self.start_month)
        end = min(self.end, p.last)
        sec = -1
        while month <= last:
            block_end = min(last, month - month % cadence + cadence - 1)
            months = block_end - month + 1
            pay_month = block_end + 1
            day = date(pay_month // 12, pay_month % 12 + 1, 5 + rng.randrange(20)).toordinal()
            if settle is not None and day >= settle[0]:
                day = settle[0]
                sec = settle[1] - 900 + 60 * (block_end % 12)
            if day > end:
                break
            amount = round(monthly * months * (0.97 + rng.random() * 0.06) * 100)
            period = f"{month // 12:04d}-{month % 12 + 1:02d}"
            if self.emit(
                p,
                "insurance.contributed",
                day,
                {"scheme": scheme, "period": period, "months": months, "amount": money(amount)},
                sec=sec,
            ):
                paid += months
            month = block_end + 1
        return paid

    def career(
        self,
        p: Person,
        lo: int,
        retire: int,
        *,
        legacy: bool,
        since: int | None = None,
        carried: int = 0,
        leaving: bool = False,
    ) -> int | None:
        """Jobs from ``lo`` until retirement (or the person's last day), with employee insurance, contributions,
        unemployment and training.

        ``legacy``: the person already works when ``lo`` comes, in a job taken after ``since`` (the end of school,
        the arrival in the city); if that is before the window, the job is migrated. ``carried``:
        months of pension contributions carried in from the place the person came from. ``leaving``: the person
        leaves the city on ``p.last`` (the job ends then, and the pension may be carried out). Returns the first
        day of employee medical insurance, or ``None``.
        """
        rng = self.rng
        city = p.city
        hi = min(retire, p.last)
        if lo > hi:
            return None
        factor = min(3.0, max(0.6, rng.lognormvariate(0, 0.35)))
        cadence = rng.choices((12, 6, 3), cum_weights=(60, 85, 100))[0]
        working = _WorkingLife(factor, cadence, self.wage[city.key], carried, pension_months=carried)
        # A job lasts 90 days plus an exponential time (mean seven years). A job held on the window's first day
        # began sometime before it; being exponential, what remains of it has the same distribution.
        residual: int | None = None
        if legacy:
            anchor = max(lo, self.start)
            earliest = max(p.birthday(16), lo if since is None else since)
            start = min(anchor, max(earliest, anchor - 30 - rng.randrange(12 * 365)))
            residual = anchor + 90 + int(rng.expovariate(1 / (7 * 365)))
        else:
            start = lo + (0 if rng.random() < 0.3 else rng.randrange(120))
        while start <= hi - 90 or residual is not None:  # nobody takes a new job for the last three months
            end = residual if residual is not None else start + 90 + int(rng.expovariate(1 / (7 * 365)))
            residual = None
            if end < self.start:
                start = end + 20 + int(rng.expovariate(1 / 150))  # over before the window: nothing on record
                continue
            open_end = end >= hi
            if open_end:
                end = hi
            if end <= start:
                break  # no time left for a job
            employer = self.pick_employer(city)
            r = rng.random()
            contract = "fixed_term" if r < 0.6 else "open_ended" if r < 0.82 else "flexible"
            year = date.fromordinal(max(start, self.start)).year
            job = _Job(employer, city.districts[employer.district].code_in(year), contract, start, end)
            # Same-day chains (registration, then enrolments; end, then stops) get increasing times of day.
            sec = DAY_OPEN + rng.randrange(DAY_SPAN - 3600)
            registered = self.emit(
                p,
                "employment.registered",
                start,
                {
                    "employer_code": employer.code,
                    "employer_name": employer.name,
                    "region_code": job.region,
                    "started_on": self.day_text(start),
                    "contract": contract,
                },
                migrate=True,
                sec=sec,
            )
            if registered is None:
                if open_end:
                    break
                start = end + 30
                continue
            retiring = end >= retire
            closing = not open_end or retiring or leaving
            # The end of a job is one chain of a day: dues settled, the job ended, the schemes stopped.
            end_sec = DAY_OPEN + 1800 + rng.randrange(DAY_SPAN - 5400)
            schemes = self._insure(p, job, working, sec, (end, end_sec) if closing else None)
            if rng.random() < 0.1:
                self.training(p, self.between(max(start, self.start), end))
            if not closing:
                break  # still employed when the window closes, or when the person dies
            self._end_job(p, job, working, schemes, end_sec, retiring=retiring, leaving=leaving and open_end)
            if open_end:
                break
            start = self._between_jobs(p, end)
        return working.covered

    def _insure(
        self, p: Person, job: _Job, working: _WorkingLife, sec: int, settle: tuple[int, int] | None
    ) -> list[str]:
        """The employee schemes of ``job`` (most jobs have them): enrolments, the pension carried in on the first,
        and the contributions until the job ends (settled on its last day if it ends in the window). Returns the
        schemes enrolled."""
        rng = self.rng
        start, end, region, contract = job.start, job.end, job.region, job.contract
        schemes: list[str] = []
        if rng.random() >= (0.5 if contract == "flexible" else 0.92):
            return schemes
        enrol = min(start + rng.randrange(20), end)
        effective = max(enrol, self.start)
        effective_date = date.fromordinal(effective)
        if contract == "flexible":  # flexible workers insure themselves, without an employer
            wanted = ["pension_employee", "medical_employee"]
        else:
            wanted = ["pension_employee", "medical_employee", "unemployment", "work_injury"]
            # Maternity insurance was merged into employee medical insurance in 2019.
            if effective_date.year < 2019 and rng.random() < 0.7:
                wanted.append("maternity")
        if enrol != start:
            sec = DAY_OPEN + rng.randrange(DAY_SPAN - 3600)
        for scheme in wanted:
            payload: dict[str, Any] = {"scheme": scheme, "region_code": region, "started_on": self.day_text(enrol)}
            if contract != "flexible":
                payload["employer_code"] = job.employer.code
            enrol_sec = sec + 600 + 120 * len(schemes)
            if self.emit(p, "insurance.enrolled", enrol, payload, migrate=True, sec=enrol_sec):
                schemes.append(scheme)
        if "medical_employee" in schemes and working.covered is None:
            working.covered = effective
        carried = working.carried
        if (
            "pension_employee" in schemes
            and carried
            and not working.transferred_in
            and p.came_from not in (None, region)
        ):
            working.transferred_in = True
            assert p.came_from is not None
            self.emit(
                p,
                "insurance.transferred",
                effective + 30 + rng.randrange(90),
                {
                    "scheme": "pension_employee",
                    "from_region_code": p.came_from,
                    "to_region_code": region,
                    "months_carried": carried,
                },
            )
        first_month = effective_date.year * 12 + effective_date.month - 1
        end_date = date.fromordinal(end)
        last_month = end_date.year * 12 + end_date.month - 1
        pension_rate, medical_rate = (0.20, 0.075) if contract == "flexible" else (0.24, 0.085)
        base = working.wage[effective_date.year] * working.factor
        cadence = working.cadence
        if "pension_employee" in schemes:
            working.pension_months += self.contributions(
                p, "pension_employee", first_month, last_month, base * pension_rate, cadence, settle
            )
        if "medical_employee" in schemes:
            self.contributions(p, "medical_employee", first_month, last_month, base * medical_rate, cadence, settle)
        return schemes

    def _end_job(
        self,
        p: Person,
        job: _Job,
        working: _WorkingLife,
        schemes: list[str],
        end_sec: int,
        *,
        retiring: bool,
        leaving: bool,
    ) -> None:
        """The job's end and its schemes' stops, one chain of its last day. ``leaving``: the person leaves the
        city that day, and may carry the pension out."""
        rng = self.rng
        end, region = job.end, job.region
        if retiring:
            reason = "退休"
        elif leaving:
            reason = "离职返乡" if p.came_from else "个人原因离职"
        else:
            reason = rng.choice(_JOB_END_REASONS)
        self.emit(
            p,
            "employment.ended",
            end,
            {"employer_code": job.employer.code, "ended_on": self.day_text(end), "reason": reason},
            sec=end_sec,
        )
        for index, scheme in enumerate(schemes, start=1):
            sec_stop = end_sec + 300 + 120 * index
            if retiring and scheme in ("pension_employee", "medical_employee"):
                continue  # a pensioner keeps both: the pension is paid out, medical insurance continues
            if leaving and scheme == "pension_employee" and working.pension_months and rng.random() < 0.5:
                target = p.destination or p.came_from or rng.choice(self.elsewhere(p))
                if target != region:
                    self.emit(
                        p,
                        "insurance.transferred",
                        end,
                        {
                            "scheme": scheme,
                            "from_region_code": region,
                            "to_region_code": target,
                            "months_carried": min(1200, working.pension_months),
                        },
                        sec=sec_stop,
                    )
                    continue
            self.emit(
                p,
                "insurance.stopped",
                end,
                {
                    "scheme": scheme,
                    "stopped_on": self.day_text(end),
                    "reason": "退休" if retiring else "劳动关系终止",
                },
                sec=sec_stop,
            )

    def _between_jobs(self, p: Person, end: int) -> int:
        """Between jobs, from the day after ``end``: sometimes straight on, often a gap, sometimes registered
        unemployment (with training). Returns the next job's first day."""
        rng = self.rng
        if rng.random() < 0.25:
            return end + 1
        gap = 20 + int(rng.expovariate(1 / 150))
        next_start = end + gap
        if gap > 45 and rng.random() < 0.45:
            registered_on = end + 3 + rng.randrange(20)
            region_now = p.home.district.code_in(date.fromordinal(max(registered_on, self.start)).year)
            if self.emit(
                p,
                "unemployment.registered",
                registered_on,
                {"region_code": region_now, "registered_on": self.day_text(registered_on)},
            ):
                if rng.random() < 0.35 and next_start - registered_on > 40:
                    self.training(p, self.between(registered_on + 20, next_start - 10))
                stop = min(next_start - 1 - rng.randrange(5), registered_on + 60 + rng.randrange(360))
                if stop > registered_on:
                    self.emit(p, "unemployment.ended", stop, {"ended_on": self.day_text(stop)})
        return next_start

    def training(self, p: Person, day: int) -> None:
        """A completed vocational training, most with a skill level and certificate."""
        rng = self.rng
        payload: dict[str, Any] = {"program": rng.choice(_TRAININGS), "completed_on": self.day_text(day)}
        if rng.random() < 0.7:
            payload["level"] = rng.choice(_LEVELS)
            year = date.fromordinal(day).year
            payload["certificate_no"] = f"S{year}{p.city.region_code[:4]}{self.next_number('training'):07d}"
        self.emit(p, "training.completed", day, payload)

    def pensioner(self, p: Person) -> bool:
        """An urban pensioner's employee schemes, migrated; ``False`` for those without (resident schemes)."""
        rng = self.rng
        if not p.home.urban or rng.random() >= 0.7:
            return False
        region = p.home.district.code_in(self.start_date.year)
        started = max(date(1993, 1, 1).toordinal(), p.birthday(20)) + rng.randrange(2000)
        for scheme in ("pension_employee", "medical_employee"):
            self.emit(
                p,
                "insurance.enrolled",
                started,
                {"scheme": scheme, "region_code": region, "started_on": self.day_text(started)},
                migrate=True,
            )
        return True

    def resident_schemes(self, p: Person, covered: int | None, work_from: int, *, since: int = 0) -> None:
        """Resident medical insurance (a yearly premium) until employee insurance takes over, and the resident
        pension for adults without an employee pension (contributions until 60, then it pays out)."""
        rng = self.rng
        lo = max(p.first, since)
        hi = p.last if covered is None else min(p.last, covered - 1)
        if lo > hi:
            return  # covered by employee insurance from the start
        # Rural co-operative medical insurance reached the villages first; urban resident insurance from 2008.
        opened = date(2004 if not p.home.urban else 2008, 1, 1).toordinal() + rng.randrange(700)
        enrol = max(lo, opened, p.born_day + 10 + rng.randrange(80))
        if enrol <= hi and rng.random() < 0.93:
            effective = date.fromordinal(max(enrol, self.start))
            region = p.home.district.code_in(effective.year)
            payload = {"scheme": "medical_resident", "region_code": region, "started_on": self.day_text(enrol)}
            if self.emit(p, "insurance.enrolled", enrol, payload, migrate=True):
                # The premium is yearly: on joining, for the rest of the year; then each autumn for the next.
                joined = date.fromordinal(enrol)
                self.emit(
                    p,
                    "insurance.contributed",
                    enrol,
                    {
                        "scheme": "medical_resident",
                        "period": f"{joined.year:04d}-{joined.month:02d}",
                        "months": 13 - joined.month,
                        "amount": f"{_premium(joined.year)}.00",
                    },
                    sec=DAY_OPEN + DAY_SPAN,
                )
                last_year = date.fromordinal(min(hi, self.end)).year
                recorded = enrol if enrol >= self.start else self.start
                for year in range(effective.year + 1, last_year + 2):
                    # Collected in the autumn before the year (right after joining, for someone joining late).
                    day = max(date(year - 1, 10, 1).toordinal() + rng.randrange(80), recorded + 1 + rng.randrange(10))
                    if day > hi:
                        break
                    self.emit(
                        p,
                        "insurance.contributed",
                        day,
                        {
                            "scheme": "medical_resident",
                            "period": f"{year:04d}-01",
                            "months": 12,
                            "amount": f"{_premium(year)}.00",
                        },
                    )
                if covered is not None and covered <= p.last:
                    # Employee medical insurance takes over (the day it starts, after the enrolment).
                    self.emit(
                        p,
                        "insurance.stopped",
                        covered,
                        {"scheme": "medical_resident", "stopped_on": self.day_text(covered), "reason": "转入职工医保"},
                        sec=DAY_OPEN + DAY_SPAN,
                    )
        # The resident pension (new rural pension from 2009, urban residents from 2011) for those without an
        # employee pension: contributions until 60, from then on it is paid out.
        if covered is not None or p.birthday(16) > hi or rng.random() < 0.2:
            return
        opened = date(2009 if not p.home.urban else 2011, 7, 1).toordinal() + rng.randrange(900)
        enrol = max(lo, opened, p.birthday(16), work_from)
        if enrol > hi:
            return
        region = p.home.district.code_in(date.fromordinal(max(enrol, self.start)).year)
        payload = {"scheme": "pension_resident", "region_code": region, "started_on": self.day_text(enrol)}
        if not self.emit(p, "insurance.enrolled", enrol, payload, migrate=True):
            return
        tier = rng.choice(_RESIDENT_PENSION_TIERS)
        pays_until = min(hi, p.birthday(60))
        recorded = enrol if enrol >= self.start else self.start
        for year in range(date.fromordinal(max(enrol, self.start)).year, date.fromordinal(pays_until).year + 1):
            day = date(year, 3, 1).toordinal() + rng.randrange(200)
            if recorded < day <= pays_until:
                self.emit(
                    p,
                    "insurance.contributed",
                    day,
                    {"scheme": "pension_resident", "period": f"{year:04d}-01", "months": 12, "amount": f"{tier}.00"},
                )

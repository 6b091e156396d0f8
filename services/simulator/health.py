"""Health (卫健): health records, vaccinations, family doctors (births and deaths are certified in ``households``)."""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from services.simulator.core import Core, Person, years_after

# The national immunisation schedule (国家免疫规划): (vaccine, dose, age in days). Polio changed in 2016 from four
# oral doses to one inactivated dose followed by bivalent oral ones; the simulator follows the change.
_SCHEDULE_COMMON: Final = (
    ("HepB", 1, 0),
    ("BCG", 1, 0),
    ("HepB", 2, 30),
    ("DTaP", 1, 90),
    ("DTaP", 2, 120),
    ("DTaP", 3, 150),
    ("HepB", 3, 180),
    ("MPSV-A", 1, 180),
    ("MMR", 1, 240),
    ("JE-L", 1, 240),
    ("MPSV-A", 2, 270),
    ("DTaP", 4, 540),
    ("MMR", 2, 540),
    ("HepA-L", 1, 540),
    ("JE-L", 2, 730),
    ("MPSV-AC", 1, 1095),
    ("DT", 1, 2190),
    ("MPSV-AC", 2, 2190),
)

_SCHEDULE_POLIO_OLD: Final = (("OPV", 1, 60), ("OPV", 2, 90), ("OPV", 3, 120), ("OPV", 4, 1460))

_SCHEDULE_POLIO_NEW: Final = (("IPV", 1, 60), ("bOPV", 1, 90), ("bOPV", 2, 120), ("bOPV", 3, 1460))

_SCHEDULE_OLD: Final = tuple(sorted(_SCHEDULE_COMMON + _SCHEDULE_POLIO_OLD, key=lambda item: item[2]))

_SCHEDULE_NEW: Final = tuple(sorted(_SCHEDULE_COMMON + _SCHEDULE_POLIO_NEW, key=lambda item: item[2]))

_RECORDS_FROM: Final = date(2009, 7, 1).toordinal()

_COVID_CHILDREN: Final = date(2021, 7, 20).toordinal()

_COVID_ADULTS: Final = date(2021, 3, 15).toordinal()

_COVID_ELDERLY: Final = date(2021, 4, 1).toordinal()


class Health(Core):
    """What the health department records between birth and death."""

    def health(self, p: Person, *, arrival: int | None) -> None:
        """Health record, childhood vaccinations, COVID-19 and influenza doses, family-doctor contracts."""
        self._health_record(p, arrival)
        self._childhood_vaccinations(p)
        self._covid_doses(p)
        self._influenza_doses(p)
        self._family_doctor(p)

    def _health_record(self, p: Person, arrival: int | None) -> None:
        """The electronic health record, opened once."""
        rng = self.rng
        clinic = p.home.clinic
        # The electronic health record: at birth, for residents in the 2009 basic public-health programme, for
        # most migrants some months after they arrive.
        if p.born_day >= p.first:
            opened = p.born_day + 3 + rng.randrange(40)
        elif arrival is not None and arrival >= self.start:
            opened = arrival + 30 + rng.randrange(540) if rng.random() < 0.75 else self.end + 1
        else:
            opened = max(p.first, _RECORDS_FROM) + rng.randrange(1200)
        if opened <= p.last:
            record_no = f"{p.home.district.code}-HR-{self.next_number('record'):08d}"
            self.emit(
                p,
                "health_record.opened",
                opened,
                {"record_no": record_no, "clinic_code": clinic, "opened_on": self.day_text(opened)},
            )

    def _childhood_vaccinations(self, p: Person) -> None:
        """The schedule's doses at their ages, for a child born in the window or shortly before."""
        rng = self.rng
        clinic = p.home.clinic
        # Childhood vaccinations at their ages, a little late at times; a few doses are missed.
        if p.born_day >= self.start - 7 * 365:
            for vaccine, dose, age in _SCHEDULE_NEW if p.born.year >= 2016 else _SCHEDULE_OLD:
                day = p.born_day + age + (rng.randrange(20) if age else 0)
                if day > p.last:
                    break
                if day >= p.first and rng.random() < 0.96:
                    self.emit(
                        p,
                        "vaccination.recorded",
                        day,
                        {
                            "vaccine_code": vaccine,
                            "dose": dose,
                            "administered_on": self.day_text(day),
                            "clinic_code": clinic,
                        },
                    )

    def _covid_doses(self, p: Person) -> None:
        """COVID-19 doses, by age."""
        rng = self.rng
        clinic = p.home.clinic
        # COVID-19 (2021–2022): two inactivated doses, and a booster for adults.
        age = 2021 - p.born.year
        if age >= 3 and rng.random() < (0.9 if age < 60 else 0.75 if age < 80 else 0.45):
            if age < 18:
                first = _COVID_CHILDREN + rng.randrange(130)
            elif age < 60:
                first = _COVID_ADULTS + rng.randrange(170)
            else:
                first = _COVID_ELDERLY + rng.randrange(270)
            second = first + 21 + rng.randrange(40)
            days = [first, second]
            if age >= 18 and rng.random() < 0.7:
                days.append(second + 180 + rng.randrange(150))
            for dose, day in enumerate(days, start=1):
                self.emit(
                    p,
                    "vaccination.recorded",
                    day,
                    {
                        "vaccine_code": "COVID-19-Vero",
                        "dose": dose,
                        "administered_on": self.day_text(day),
                        "clinic_code": clinic,
                    },
                )

    def _influenza_doses(self, p: Person) -> None:
        """A yearly influenza dose for some of the elderly."""
        rng = self.rng
        clinic = p.home.clinic
        # Influenza for the elderly, season by season.
        for season in range(max(2019, self.start_date.year), self.end_date.year + 1):
            if season - p.born.year >= 60 and rng.random() < 0.25:
                day = date(season, 10, 1).toordinal() + rng.randrange(80)
                self.emit(
                    p,
                    "vaccination.recorded",
                    day,
                    {"vaccine_code": "Flu", "dose": 1, "administered_on": self.day_text(day), "clinic_code": clinic},
                )

    def _family_doctor(self, p: Person) -> None:
        """Family-doctor contracts, a year each."""
        rng = self.rng
        clinic = p.home.clinic
        # Family-doctor contracts (from 2016): yearly for the elderly and young children, sometimes for others.
        surnames = p.city.surnames
        for year in range(max(2016, self.start_date.year), self.end_date.year + 1):
            age = year - p.born.year
            chance = 0.75 if age >= 65 else 0.4 if age <= 6 else 0.15 if p.permit_holder else 0.07
            if rng.random() >= chance:
                continue
            day = date(year, 1, 2).toordinal() + rng.randrange(80)
            ends = years_after(date.fromordinal(day), 1).toordinal() - 1
            payload: dict[str, Any] = {
                "clinic_code": clinic,
                "started_on": self.day_text(day),
                "ends_on": self.day_text(ends),
            }
            if rng.random() < 0.85:
                payload["team"] = f"{rng.choice(surnames)}医生团队"
            self.emit(p, "family_doctor.contracted", day, payload)

"""Public security (公安): hukou registrations, births, residence registration and permits, identity.

Public security is the lead department of the reform plans; its events anchor every simulated person (a hukou
here, or a residence registration for those whose hukou is elsewhere).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from services.simulator.cities import City
from services.simulator.core import ORIGIN_SYSTEM, Core, Home, Person, years_after

_CERTIFICATE_SERIES: Final = ((2010, "M"), (2014, "N"), (2016, "O"), (2019, "P"), (2022, "Q"), (10000, "R"))
"""Birth certificates (出生医学证明) are printed in lettered series; ``(first year of the next series, letter)``."""


class PublicSecurity(Core):
    """What public security records about the simulated residents."""

    def legacy_hukou(self, p: Person, home: Home, relationship: str) -> None:
        """The hukou a native already had on the window's first day, with its nature before unification."""
        if p.first != self.start:
            return
        rng = self.rng
        r = rng.random()
        if r < 0.86:
            reason = "birth"
        elif r < 0.92:
            reason = "stable_residence"
        elif r < 0.95 and p.male and p.born_day < self.start - 22 * 365:
            reason = "veteran"
        else:
            reason = "other"
        payload = self.hukou_payload(home, relationship, reason, self.start_date.year)
        if p.born.year < p.city.reform_year:
            if home.urban:
                payload["legacy_nature"] = "non_agricultural" if rng.random() < 0.97 else "blue_seal"
            else:
                payload["legacy_nature"] = "agricultural" if rng.random() < 0.9 else "non_agricultural"
        p.migrate_sec += 1  # first of the person's migrated records
        if self.emit(p, "hukou.registered", self.start, payload, sec=p.migrate_sec) is not None:
            p.hukou_here = True

    def birth(
        self,
        child: Person,
        mother: Person,
        father: Person | None,
        home: Home,
        relationship: str,
        *,
        at_origin: str | None = None,
    ) -> None:
        """Health certifies the birth (the mother is the subject), public security registers the child."""
        rng = self.rng
        born = child.born_day
        correlation = self.uuid()
        certificate: str | None = None
        if rng.random() < 0.985:  # a few births are registered late, without a medical certificate
            year = child.born.year
            letter = next(letter for until, letter in _CERTIFICATE_SERIES if year < until)
            number = f"{letter}{self.next_number('birth-certificate'):09d}"
            payload: dict[str, Any] = {
                "certificate_no": number,
                "child_name": child.name,
                "child_sex": child.sex,
                "birth_date": self.day_text(born),
            }
            if father is not None:
                payload["father_citizen_id"] = father.cid
            if self.emit(mother, "birth.certified", born + rng.randrange(4), payload, correlation=correlation):
                certificate = number
        registered = born + 7 + min(170, int(rng.expovariate(1 / 18)))
        payload = {
            "name": child.name,
            "sex": child.sex,
            "birth_date": self.day_text(born),
            "ethnicity": child.ethnicity,
            "household_id": home.household_id,
            "household_type": home.household_type,
            "relationship": relationship if home.household_type == "family" else "other",
            "address": home.address,
            "region_code": at_origin or home.district.code_in(child.born.year),
            "urban": home.urban,
            "mother_citizen_id": mother.cid,
        }
        if father is not None:
            payload["father_citizen_id"] = father.cid
        if certificate is not None:
            payload["birth_certificate_no"] = certificate
        if at_origin is not None:
            self.emit(
                child,
                "birth.registered",
                registered,
                payload,
                system=ORIGIN_SYSTEM,
                region=at_origin,
                correlation=correlation,
            )
        elif self.emit(child, "birth.registered", registered, payload, correlation=correlation) is not None:
            child.hukou_here = True

    def residence(self, p: Person, home: Home, since: int, basis: str, settle: int | None, leave: int | None) -> None:
        """Residence registration of a migrant, the permits that follow, and the end of the registration."""
        rng = self.rng
        year = date.fromordinal(max(since, self.start)).year
        tenure = "rented" if rng.random() < 0.7 else "employer" if basis == "employment" else "other"
        registered = self.emit(
            p,
            "residence.registered",
            min(since + rng.randrange(15), self.end),
            {
                "address": home.address,
                "region_code": home.district.code_in(year),
                "urban": home.urban,
                "since": self.day_text(since),
                "basis": basis,
                "tenure": tenure,
            },
            migrate=True,
        )
        if registered is None:
            return
        p.residence_registered = True
        self.permits(p, since, basis, settle, leave)
        if leave is not None and settle is None and rng.random() < 0.85:
            self.emit(p, "residence.ended", leave, {"ended_on": self.day_text(leave)})

    def permits(self, p: Person, since: int, basis: str, settle: int | None, leave: int | None) -> None:
        """Residence permits: issued after six months of residence, renewed yearly, lapsing or revoked."""
        rng = self.rng
        city = p.city
        if rng.random() < 0.22:
            return  # never applied
        issued = max(since + 183 + rng.randrange(400), date(city.permit_since, 3, 1).toordinal() + rng.randrange(300))
        until = min(x for x in (settle, leave, p.last) if x is not None)
        if issued > until or issued > self.end:
            return
        year = date.fromordinal(issued).year
        code = p.home.district.code_in(year)
        permit_no = f"{code}{year}{self.next_number(f'permit:{code}:{year}'):05d}"
        valid_until = years_after(date.fromordinal(issued), 1).toordinal() - 1
        lapse = 0.1 if leave is None else 0.05
        # Renewals before the window are folded into the migrated permit: the register holds its current validity.
        while valid_until < self.start:
            if rng.random() < lapse:
                return  # lapsed before the window: nothing left on record
            valid_until = years_after(date.fromordinal(valid_until), 1).toordinal()
        if not self.emit(
            p,
            "residence_permit.issued",
            issued,
            {
                "permit_no": permit_no,
                "region_code": code,
                "issued_on": self.day_text(issued),
                "valid_until": self.day_text(valid_until),
                "basis": basis,
            },
            migrate=True,
        ):
            return
        p.permit_holder = True
        while True:
            renew = valid_until - rng.randrange(30)
            if renew > until or renew > self.end:
                break
            if rng.random() < lapse:
                return  # let it lapse: the view shows it expired
            if rng.random() < 0.004:
                self.emit(p, "residence_permit.revoked", renew, {"permit_no": permit_no, "reason": "提供虚假证明材料"})
                return
            valid_until = years_after(date.fromordinal(valid_until), 1).toordinal()
            self.emit(
                p,
                "residence_permit.renewed",
                renew,
                {"permit_no": permit_no, "valid_until": self.day_text(valid_until)},
            )
        if settle is not None and valid_until >= settle:
            self.emit(
                p, "residence_permit.revoked", settle, {"permit_no": permit_no, "reason": "已在本市落户"}, sec=15 * 3600
            )

    def settlement_reason(self, city: City, year: int) -> str:
        """Why a migrant settles in ``year``, by the city's plan."""
        reason: str = self.rng.choices(city.settlement_reasons, cum_weights=self.reason_weights[city.key])[0][0]
        if reason == "points" and year < city.reform_year:
            return "stable_employment"  # Chengdu's points track exists since its 2017 plan
        return reason

    def settle(self, p: Person, home: Home, day: int, reason: str, relationship: str, correlation: str) -> None:
        """A migrant settles (落户): the hukou is registered here, the residence registration ends."""
        year = date.fromordinal(day).year
        if home.household_type == "collective":
            relationship = "other"
        payload = self.hukou_payload(home, relationship, reason, year)
        if p.origin is not None:
            payload["from_region_code"] = p.origin
        if year < p.city.reform_year:
            payload["legacy_nature"] = "non_agricultural" if self.rng.random() < 0.9 else "blue_seal"
        if self.emit(p, "hukou.registered", day, payload, sec=14 * 3600, correlation=correlation) is None:
            return
        if p.residence_registered:
            self.emit(
                p, "residence.ended", day, {"ended_on": self.day_text(day)}, sec=16 * 3600, correlation=correlation
            )
            p.residence_registered = False
        p.hukou_here = True
        p.home = home
        p.origin = None

    def identity(self, p: Person) -> None:
        """A rare correction of a registered name or ethnicity."""
        rng = self.rng
        if rng.random() >= 0.006 or p.first > p.last:
            return
        day = self.between(p.first, p.last)
        if rng.random() < 0.7 or len(p.city.ethnicities) == 1:
            name, _ = self.name(p.city, p.male, p.born.year, p.ethnicity, p.surname or None)
            if name != p.name:
                p.name = name
                self.emit(p, "identity.corrected", day, {"name": name})
        else:
            p.ethnicity = rng.choice([e for e, _ in p.city.ethnicities if e != p.ethnicity])
            self.emit(p, "identity.corrected", day, {"ethnicity": p.ethnicity})

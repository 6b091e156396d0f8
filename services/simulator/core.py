"""The machinery shared by the simulator's departments: people, homes, random sources and the one ``emit``.

Days are ``date.toordinal()`` numbers throughout (cheap to compare and add); ``emit`` turns a day into the RFC
3339 timestamps of the envelope. Every event of the simulation goes through ``Core.emit``, which is where the
presence rules live: nothing is recorded about a person before they arrive (or are born), after they die or
leave, or while they are away, except what ``force`` allows (a death certificate, a later cancellation).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import Any, Final

from events.citizen_id import lookup_division, make_citizen_id
from events.fields import Department
from events.registry import REGISTRY
from services.simulator.cities import (
    CITIES,
    ETHNIC_SURNAMES,
    GIVEN_FEMALE,
    GIVEN_MALE,
    TIBETAN_NAMES,
    City,
    District,
    Employer,
    is_urban,
)

Event = dict[str, Any]
"""An envelope as a JSON-ready dict (CONTRACT §2)."""

EVENT_TYPES: Final[dict[str, Department]] = {
    event_type: REGISTRY.department_of(event_type) for event_type in REGISTRY.event_types
}
"""Every event type the simulator writes, with its department (the whole catalogue of CONTRACT §4)."""

_VERSIONS: Final[dict[str, int]] = {event_type: REGISTRY.latest_version(event_type) for event_type in EVENT_TYPES}
_CARRIES_IDENTITY: Final = frozenset({"hukou.registered", "residence.registered"})
"""Registrations that carry the person's identity (their v2): everyone who settles or registers residence here,
and every register migrated when the window opens (natives born before it have no ``birth.registered``)."""

# Events happen in office hours (08:00–17:00); same-day chains add at most an hour, and the source system records
# an event within five hours, so ``recorded_at`` never spills into the next day.
DAY_OPEN: Final = 8 * 3600
DAY_SPAN: Final = 9 * 3600
_RECORD_DELAY: Final = 5 * 3600

_MIGRATION_HOURS: Final = (1 * 3600, 2 * 3600)
"""The registers existing on the window's first day are migrated that night, before office hours: migrated
records come before anything that happens on that day."""

# RFC 4122 variant: the first hex digit of the fourth group is one of 8, 9, a, b.
_UUID_VARIANT: Final = {f"{n:x}": "89ab"[n & 3] for n in range(16)}

ORIGIN_SYSTEM: Final = "hukou-national"
"""``source.system`` of events recorded at a migrant's hukou place, outside the simulated city."""

STUDY_CITIES: Final = ("110108", "310110", "420111", "610113", "320102", "500106", "430104", "120104")
"""Where natives go to university elsewhere (and some move on to): 北京海淀, 上海杨浦, 武汉洪山, 西安雁塔,
南京玄武, 重庆沙坪坝, 长沙岳麓, 天津南开."""


def words(text: str) -> tuple[str, ...]:
    """A word list written as one space-separated string."""
    return tuple(text.split())


_ROADS: Final = words(
    "人民路 建设路 解放路 和平路 文化路 长江路 新华路 光明路 幸福路 滨河路 中山路 北京路 青年路 胜利路 团结路"
)
_VILLAGES: Final = words("红星 新民 和平 胜利 前进 光明 团结 东风 幸福 友谊 永安 太平 丰收 兴隆 长青")
_NUMERALS: Final = words("一 二 三 四 五 六 七 八 九 十 十一 十二 十三 十四 十五 十六 十七 十八 十九 二十")


class SeededRandom(random.Random):
    """``random.Random`` with a lean ``randrange``.

    The standard one validates its arguments in Python and draws by rejection sampling, which made it the single
    most expensive call of the simulation; scaling ``random()`` is several times faster, and its bias (below
    2⁻⁴⁰ for the ranges used here) is irrelevant for a simulation. Still fully determined by the seed. ``step``
    is not supported (the simulator never uses it).
    """

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        """A random integer in ``[0, start)`` or ``[start, stop)``."""
        if stop is None:
            return int(self.random() * start)
        return start + int(self.random() * (stop - start))


@lru_cache(maxsize=1)
def clock_faces() -> tuple[str, ...]:
    """``"HH:MM:SS"`` for every second of a day, built once: formatting timestamps is the hot path."""
    minutes = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
    seconds = [f"{s:02d}" for s in range(60)]
    return tuple(m + s for m in minutes for s in seconds)


def years_after(day: date, years: int) -> date:
    """The same day ``years`` later (earlier if negative); 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


def iso_date(day: int) -> str:
    """``YYYY-MM-DD`` of a day number."""
    return date.fromordinal(day).isoformat()


def money(cents: int) -> str:
    """A CNY amount as the contract's decimal string (``"1234.50"``)."""
    return f"{cents // 100}.{cents % 100:02d}"


def short_place(place: str) -> str:
    """A street or town without its suffix (``玉林街道`` → ``玉林``), as schools are named."""
    for suffix in ("街道", "镇", "乡"):
        if place.endswith(suffix) and len(place) > len(suffix) + 1:
            return place[: -len(suffix)]
    return place


@dataclass(slots=True, eq=False)
class Home:
    """Where a person lives: a hukou household here, or a rented place of a migrant (``household_id`` empty)."""

    district: District
    place: str
    urban: bool
    household_id: str
    household_type: str
    address: str
    clinic: str


@dataclass(slots=True, eq=False)
class Person:
    """A simulated resident. Days are ``date.toordinal()`` numbers."""

    city: City
    cid: str
    name: str
    surname: str
    male: bool
    born: date
    born_day: int
    ethnicity: str
    first: int
    """First day the person can be the subject of an event of the city."""
    last: int
    """Last such day: the window's end, the day before death, or the day of leaving."""
    died: int | None
    home: Home
    origin: str | None = None
    """Division code of the hukou outside the city, while there is one (migrants and their children)."""
    came_from: str | None = None
    """Division code of the place the person came from (kept after settling)."""
    hukou_here: bool = False
    residence_registered: bool = False
    gone: int | None = None
    """Day the person left the city for good."""
    destination: str | None = None
    """Division code of where the person went on leaving, if known (the pension may follow)."""
    away: list[tuple[int, int]] = field(default_factory=list)
    migrate_sec: int = 0
    """Time of day of the person's next migrated record (they are written one after the other)."""
    permit_holder: bool = False

    @property
    def sex(self) -> str:
        """``male`` or ``female``, as the contract spells it."""
        return "male" if self.male else "female"

    def birthday(self, age: int) -> int:
        """The day the person turns ``age``."""
        return years_after(self.born, age).toordinal()

    def retirement(self) -> int:
        """Statutory retirement day: 60 for men, 55 for women."""
        return self.birthday(60 if self.male else 55)


@dataclass(slots=True)
class Pending:
    """An event planned before the person's presence interval is final (see ``plan_school``)."""

    event_type: str
    day: int
    payload: dict[str, Any]
    migrate: bool = False


@dataclass(slots=True)
class SchoolPlan:
    """A school career planned ahead (``Education.plan_school``), with what it implies for the rest of life."""

    events: list[Pending]
    work_from: int
    """First day of working life (after the last stage, or a withdrawal)."""
    away: list[tuple[int, int]] = field(default_factory=list)
    left: int | None = None
    """Day the person left for good (studied elsewhere and stayed there)."""
    hukou_moves: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    """Public-security events of the school career (moving the hukou to a university elsewhere and back)."""


School = tuple[str, str, District]
"""``(school code, school name, district)``."""


@dataclass(slots=True)
class Schools:
    """A city's schools: per district for the early stages, city-wide for the later ones."""

    preschool: list[list[School]]
    primary: list[list[School]]
    junior: list[list[School]]
    senior: list[School]
    vocational: list[School]
    higher: list[School]


def build_schools(city: City) -> Schools:
    """The city's schools with codes and names: a kindergarten and primary school per street or town, junior
    secondary schools for half of them, numbered senior secondary schools, and the city's own institutions."""
    numbers: dict[int, int] = {}

    def code(index: int) -> str:
        numbers[index] = numbers.get(index, 0) + 1
        return f"{city.school_prefix}{city.districts[index].code[2:]}{numbers[index]:02d}"

    def label(district: District) -> str:
        return city.name + ("" if district.name == city.name else district.name)

    preschool: list[list[School]] = []
    primary: list[list[School]] = []
    junior: list[list[School]] = []
    for index, district in enumerate(city.districts):
        places = district.places
        primary.append([(code(index), f"{label(district)}{short_place(p)}小学", district) for p in places])
        junior.append(
            [
                (code(index), f"{label(district)}{short_place(p)}中学", district)
                for p in places[: max(2, len(places) // 2)]
            ]
        )
        preschool.append([(code(index), f"{label(district)}{short_place(p)}幼儿园", district) for p in places])
    senior: list[School] = []
    for k in range(max(3, len(city.districts) * 2)):
        index = k % len(city.districts)
        senior.append((code(index), f"{city.name}第{_NUMERALS[k % 20]}高级中学", city.districts[index]))
    vocational = [(code(i), name, city.districts[i]) for name, i in city.vocational_schools]
    higher = [(code(i), name, city.districts[i]) for name, i in city.universities]
    return Schools(preschool, primary, junior, senior, vocational, higher)


def wage_table(city: City) -> dict[int, float]:
    """Average monthly contribution base per year: fast growth until the early 2010s, slower since."""
    table = {2006: float(city.wage_2006)}
    for year in range(2007, 2101):
        table[year] = table[year - 1] * (1.10 if year <= 2013 else 1.07 if year <= 2019 else 1.045)
    for year in range(2005, 1899, -1):
        table[year] = table[year + 1] / 1.08
    return table


class Core:
    """State of one run: the random sources, the counters behind every number, the current household's events.

    The department mixins (``PublicSecurity``, ``Education``, ``SocialSecurity``, ``Health``) add what each
    department records; ``households.Simulation`` combines them into life stories.
    """

    def __init__(self, seed: int, years: int, end: date, cities: Sequence[City]) -> None:
        if not cities:
            raise ValueError("at least one city is needed")
        self.rng = SeededRandom(f"renkou-simulator/{seed}")
        # A separate source for event IDs, so that the life stories depend only on the story generator.
        self.ids = random.Random(f"renkou-simulator/event-ids/{seed}")
        self.random = self.rng.random
        self.id_bits = self.ids.getrandbits
        self.end_date = end
        self.end = end.toordinal()
        self.start_date = years_after(end, -years) + timedelta(days=1)
        self.start = self.start_date.toordinal()
        self.start_month = self.start_date.year * 12 + self.start_date.month - 1
        self.cities = tuple(cities)
        self.city_weights = list(accumulate(c.weight for c in self.cities))
        self.clock = clock_faces()
        self.iso: dict[int, str] = {}
        self.buffer: list[tuple[str, int, Event]] = []
        self.count = 0
        self.room = 0
        self.used_ids: set[tuple[str, int, int]] = set()
        self.counters: dict[str, int] = {}
        self.schools = {c.key: build_schools(c) for c in self.cities}
        self.district_weights = {c.key: list(accumulate(d.weight for d in c.districts)) for c in self.cities}
        self.employer_weights = {c.key: list(accumulate(e.weight for e in c.employers)) for c in self.cities}
        self.ethnicity_weights = {c.key: list(accumulate(w for _, w in c.ethnicities)) for c in self.cities}
        self.reason_weights = {c.key: list(accumulate(w for _, w in c.settlement_reasons)) for c in self.cities}
        self.wage = {c.key: wage_table(c) for c in self.cities}

    def next_number(self, key: str) -> int:
        """The next number of the series ``key`` (household IDs per division, permits per division and year…)."""
        number = self.counters.get(key, 0) + 1
        self.counters[key] = number
        return number

    def uuid(self) -> str:
        """A version-4 UUID drawn from the seeded ID generator."""
        h = f"{self.id_bits(128):032x}"  # the same drawing as in ``emit``
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

    def day_text(self, day: int) -> str:
        """``YYYY-MM-DD`` of a day number (cached: the same few thousand days come up again and again)."""
        text = self.iso.get(day)
        if text is None:
            text = self.iso[day] = iso_date(day)
        return text

    def between(self, lo: int, hi: int) -> int:
        """A uniformly random day in ``[lo, hi]`` (``lo`` if the range is empty)."""
        return lo + self.rng.randrange(hi - lo + 1) if hi > lo else lo

    def emit(
        self,
        p: Person,
        event_type: str,
        day: int,
        payload: dict[str, Any],
        *,
        sec: int = -1,
        migrate: bool = False,
        force: bool = False,
        system: str | None = None,
        region: str | None = None,
        correlation: str | None = None,
        causation: str | None = None,
        recorded: int | None = None,
    ) -> str | None:
        """Add one event to the current household; return its ``event_id``, or ``None`` if it cannot happen.

        An event before the window is dropped, unless ``migrate``: then it describes a state that still holds on
        the window's first day and is recorded when the registers are migrated, in the first hours of that day.
        Outside the person's presence (before arrival, after death or leaving, while away) an event is dropped
        unless ``force`` (death certificates and later cancellations). ``recorded``: the day the source system
        recorded the event, if not the day it happened (it is dropped if that is after the window).
        """
        if day < self.start:
            if not migrate or p.first != self.start:
                return None
            day = self.start
            p.migrate_sec += 97  # keeps the migrated records of one person in the order they were written
            sec = p.migrate_sec
        if day > self.end or (recorded is not None and not day < recorded <= self.end):
            return None
        if not force:
            if day < p.first or day > p.last:
                return None
            if p.away:
                for lo, hi in p.away:
                    if lo <= day <= hi:
                        return None
        # The hot path of the whole simulation: plain arithmetic on ``random()`` and pre-built clock faces.
        random = self.random
        if sec < 0:
            sec = DAY_OPEN + int(random() * DAY_SPAN)
        text = self.iso.get(day)
        if text is None:
            text = self.iso[day] = iso_date(day)
        clock = self.clock
        occurred = f"{text}T{clock[sec]}+08:00"
        h = f"{self.id_bits(128):032x}"
        event_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
        department = EVENT_TYPES[event_type]
        city = p.city
        event: Event = {
            "event_id": event_id,
            "event_type": event_type,
            "schema_version": _VERSIONS[event_type],
            "citizen_id": p.cid,
            "occurred_at": occurred,
            "recorded_at": f"{text}T{clock[sec + 60 + int(random() * _RECORD_DELAY)]}+08:00"
            if recorded is None
            else f"{self.day_text(recorded)}T{clock[DAY_OPEN + int(random() * DAY_SPAN)]}+08:00",
            "source": {
                "department": department,
                "system": system or city.systems[department],
                "region_code": region or city.region_code,
            },
        }
        if event_type in _CARRIES_IDENTITY:
            identity = {"name": p.name, "sex": p.sex, "birth_date": p.born.isoformat(), "ethnicity": p.ethnicity}
            payload = {**payload, **identity}
        if correlation is not None:
            event["correlation_id"] = correlation
        if causation is not None:
            event["causation_id"] = causation
        event["payload"] = payload
        self.count += 1
        self.buffer.append((occurred, self.count, event))
        return event_id

    def flush(self, p: Person, pending: Iterable[Pending]) -> None:
        """Emit events planned earlier, now that the person's presence is known."""
        for item in pending:
            self.emit(p, item.event_type, item.day, item.payload, migrate=item.migrate)

    # ---------------------------------------------------------------------------------------------------------
    # People and homes
    # ---------------------------------------------------------------------------------------------------------

    def pick_district(self, city: City) -> District:
        """A district, weighted by its share of the households."""
        return self.rng.choices(city.districts, cum_weights=self.district_weights[city.key])[0]

    def pick_ethnicity(self, city: City) -> str:
        """An ethnicity, weighted by the city's make-up."""
        return self.rng.choices(city.ethnicities, cum_weights=self.ethnicity_weights[city.key])[0][0]

    def pick_employer(self, city: City) -> Employer:
        """An employer, weighted by its size."""
        return self.rng.choices(city.employers, cum_weights=self.employer_weights[city.key])[0]

    def address(self, city: City, district: District, place: str, year: int, urban: bool) -> str:
        """A street address (urban) or a village address (rural), with the district's name of ``year``."""
        rng = self.rng
        area = city.address_prefix + district.name_in(year) + place
        if urban:
            return (
                f"{area}{rng.choice(_ROADS)}{rng.randrange(1, 400)}号{rng.randrange(1, 30)}栋"
                f"{rng.randrange(1, 5)}单元{rng.randrange(1, 26)}{rng.randrange(1, 5):02d}室"
            )
        return f"{area}{rng.choice(_VILLAGES)}村{rng.randrange(1, 13)}组{rng.randrange(1, 120)}号"

    def origin_address(self, origin: str) -> str:
        """A village address at a migrant's hukou place."""
        division = lookup_division(origin)
        area = division.name if division else origin
        rng = self.rng
        return (
            f"{area}{rng.choice(_VILLAGES)}镇{rng.choice(_VILLAGES)}村{rng.randrange(1, 13)}组{rng.randrange(1, 120)}号"
        )

    def home(
        self,
        city: City,
        year: int,
        *,
        district: District | None = None,
        household: str = "family",
        rented: bool = False,
        urban_bias: bool = False,
    ) -> Home:
        """A new home in ``city`` as of ``year``. A rented place (of a migrant) has no hukou household."""
        rng = self.rng
        district = district or self.pick_district(city)
        places = district.places
        index = rng.randrange(len(places))
        if urban_bias and not is_urban(places[index]):
            streets = [i for i, p in enumerate(places) if is_urban(p)]
            if streets:
                index = rng.choice(streets)
        place = places[index]
        urban = is_urban(place)
        household_id = ""
        if not rented:
            code = district.code_in(year)
            household_id = f"{code}-{self.next_number('household:' + code):08d}"
        return Home(
            district=district,
            place=place,
            urban=urban,
            household_id=household_id,
            household_type=household,
            address=self.address(city, district, place, year, urban),
            clinic=f"{city.clinic_prefix}{district.code}{index * 10 + 1:05d}",
        )

    def name(self, city: City, male: bool, year: int, ethnicity: str, surname: str | None = None) -> tuple[str, str]:
        """A plausible ``(name, family name)`` for someone born in ``year`` (Tibetans have no family name)."""
        rng = self.rng
        if ethnicity == "藏族" and not surname:
            return rng.choice(TIBETAN_NAMES) + rng.choice(TIBETAN_NAMES), ""
        if not surname:
            ethnic = ETHNIC_SURNAMES.get(ethnicity)
            surname = rng.choice(ethnic) if ethnic and rng.random() < 0.8 else rng.choice(city.surnames)
        era = "old" if year < 1970 else "mid" if year < 1995 else "new"
        pool = GIVEN_MALE[era] if male else GIVEN_FEMALE[era]
        single = rng.random() < (0.45 if era == "old" else 0.25)
        given = rng.choice(pool) if single else rng.choice(pool) + rng.choice(pool)
        return surname + given, surname

    def citizen_id(self, division: str, born: date, male: bool) -> str:
        """A citizen ID never handed out before in this run (sequence odd for men, even for women)."""
        rng = self.rng
        day = born.toordinal()
        parity = 1 if male else 0
        # A random sequence number first; should that keep colliding, the first free one.
        candidates = [rng.randrange(500) * 2 + parity for _ in range(20)] + list(range(parity, 1000, 2))
        for seq in candidates:
            key = (division, day, seq)
            if key not in self.used_ids:
                self.used_ids.add(key)
                # ``today`` pinned to the window's end: the wall clock must never change the output.
                return make_citizen_id(division, born, seq, today=self.end_date)
        raise RuntimeError(f"all 500 sequence numbers of {division} {born.isoformat()} are taken")

    def death_day(self, born: date, lo: int) -> int | None:
        """When someone alive on day ``lo`` dies (``None``: not in the window), from Gompertz-like mortality."""
        rng = self.rng
        day = lo
        age = (date.fromordinal(lo) - born).days // 365
        while day <= self.end:
            hazard = 0.006 if age == 0 else min(0.45, 0.00003 * math.exp(0.088 * age))
            if rng.random() < hazard:
                return max(day + rng.randrange(365), born.toordinal() + 1)
            day += 365
            age += 1
        return None

    def person(
        self,
        city: City,
        male: bool,
        born: date,
        *,
        division: str,
        home: Home,
        first: int | None = None,
        ethnicity: str | None = None,
        surname: str | None = None,
        origin: str | None = None,
    ) -> Person:
        """Create a resident (counted against the run's ``residents``) with a unique citizen ID and a fate."""
        self.room -= 1
        ethnicity = ethnicity or self.pick_ethnicity(city)
        name, family_name = self.name(city, male, born.year, ethnicity, surname)
        born_day = born.toordinal()
        first_day = max(self.start, born_day, first if first is not None else self.start)
        died = self.death_day(born, first_day)
        last = self.end if died is None else min(self.end, died - 1)
        p = Person(
            city=city,
            cid=self.citizen_id(division, born, male),
            name=name,
            surname=family_name,
            male=male,
            born=born,
            born_day=born_day,
            ethnicity=ethnicity,
            first=first_day,
            last=last,
            died=died,
            home=home,
            origin=origin,
            came_from=origin,
        )
        p.migrate_sec = _MIGRATION_HOURS[0] + self.rng.randrange(_MIGRATION_HOURS[1] - _MIGRATION_HOURS[0])
        return p

    def born_in(self, year: int) -> date:
        """A random day of ``year``."""
        return date(year, 1, 1) + timedelta(days=self.rng.randrange(365))

    def births_end(self, mother: Person) -> int:
        """The last day ``mother`` may give birth in the simulation: the window's end, or 60 days before her death."""
        return self.end if mother.died is None else mother.died - 60

    def native(
        self,
        city: City,
        male: bool,
        born: date,
        home: Home,
        *,
        ethnicity: str | None = None,
        surname: str | None = None,
    ) -> Person:
        """A resident born in the city, living in ``home``: numbered by the home's district (``native_division``)."""
        return self.person(
            city,
            male,
            born,
            division=self.native_division(home.district, born),
            home=home,
            ethnicity=ethnicity,
            surname=surname,
        )

    @staticmethod
    def native_division(district: District, born: date) -> str:
        """The division code in a native's citizen ID.

        Numbers were first issued in 1985: residents born earlier got the code in force then, often one created
        long after their birth, which is valid (CONTRACT §5); later-born residents, the code of their birth year.
        """
        return district.code_in(max(born.year, 1985))

    @staticmethod
    def leave(p: Person, day: int) -> None:
        """The person leaves the city for good on ``day`` (events of that day still happen)."""
        p.last = min(p.last, day)
        p.gone = day if p.gone is None else min(p.gone, day)

    def elsewhere(self, p: Person) -> list[str]:
        """Division codes someone may move to: the other seed cities and the big university cities."""
        return [c.districts[0].code for c in CITIES if c.key != p.city.key] + list(STUDY_CITIES)

    @staticmethod
    def hukou_payload(home: Home, relationship: str, reason: str, year: int) -> dict[str, Any]:
        """The payload of a ``hukou.registered`` into ``home`` in ``year``."""
        return {
            "household_id": home.household_id,
            "household_type": home.household_type,
            "relationship": relationship,
            "address": home.address,
            "region_code": home.district.code_in(year),
            "urban": home.urban,
            "reason": reason,
        }

"""The simulated city: deterministic life histories of residents of the five seed cities, as department events.

>>> from services.simulator import simulate, simulate_bytes, summary
>>> events = list(simulate(300, years=20, seed=7))      # envelope dicts, each accepted by events.parse_event
>>> for department, key, value in simulate_bytes(300):  # ready for Kafka: keyed by citizen ID, compact JSON
...     ...

The generator is pure: no I/O, no clock, no global state; the same arguments give the same bytes on every
machine. Publishing (and the ``renkou simulate`` command) lives elsewhere.
"""

from __future__ import annotations

from services.simulator.cities import CITIES, City, District, Employer, city_by_key
from services.simulator.generator import DEFAULT_END, EVENT_TYPES, simulate, simulate_bytes, summary

__all__ = [
    "CITIES",
    "DEFAULT_END",
    "EVENT_TYPES",
    "City",
    "District",
    "Employer",
    "city_by_key",
    "simulate",
    "simulate_bytes",
    "summary",
]

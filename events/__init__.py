"""renkou events: the envelope, the catalogue of department events, and the one function that admits them.

::

    from events import parse_event, InvalidEvent

    event = parse_event(raw_bytes)  # raises InvalidEvent naming every failed rule
    event.payload                   # the typed payload, always of the latest schema version
    event.canonical_bytes()         # deterministic JSON, the input of the hash chain

Dependencies point inward: this package imports nothing from ``projections`` or ``services``.
"""

from __future__ import annotations

from events.citizen_id import (
    CitizenId,
    CitizenIdError,
    RegionCode,
    birth_date_of,
    division_of,
    make_citizen_id,
    normalize_citizen_id,
    sex_of,
    upgrade_legacy,
)
from events.envelope import (
    ACCESS_LOG_TOPIC,
    ANCHOR_TOPIC,
    DEAD_LETTER_TOPIC,
    RESIDENT_VIEW_TOPIC,
    Event,
    EventEnvelope,
    Payload,
    Source,
    consumer_view_topic,
    department_topics,
    topic_for,
)
from events.fields import DEPARTMENTS, Department
from events.parsing import InvalidEvent, new_event, parse_event
from events.registry import REGISTRY, EventRegistry, department_of, register_upcaster

EVENT_TYPES = REGISTRY.event_types
"""Event type → latest payload class, for every type of the catalogue (read-only)."""

EDUCATION: Department = "education"
HEALTH: Department = "health"
PUBLIC_SECURITY: Department = "public_security"
SOCIAL_SECURITY: Department = "social_security"

__all__ = [
    "ACCESS_LOG_TOPIC",
    "ANCHOR_TOPIC",
    "DEAD_LETTER_TOPIC",
    "DEPARTMENTS",
    "EDUCATION",
    "EVENT_TYPES",
    "HEALTH",
    "PUBLIC_SECURITY",
    "REGISTRY",
    "RESIDENT_VIEW_TOPIC",
    "SOCIAL_SECURITY",
    "CitizenId",
    "CitizenIdError",
    "Department",
    "Event",
    "EventEnvelope",
    "EventRegistry",
    "InvalidEvent",
    "Payload",
    "RegionCode",
    "Source",
    "birth_date_of",
    "consumer_view_topic",
    "department_of",
    "department_topics",
    "division_of",
    "make_citizen_id",
    "new_event",
    "normalize_citizen_id",
    "parse_event",
    "register_upcaster",
    "sex_of",
    "topic_for",
    "upgrade_legacy",
]

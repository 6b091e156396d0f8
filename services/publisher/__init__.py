"""The publisher SDK for Python department systems: typed events to Kafka with the backbone's guarantees.

::

    from events import new_event
    from events.public_security import ResidenceRegistered
    from services.publisher import Publisher, Outbox

    event = new_event(ResidenceRegistered(...), citizen_id=..., occurred_at=..., system="hukou-core",
                      region_code="110105")
    credentials = KafkaCredentials("demo-public_security", password)   # the department's principal (§10)
    async with Publisher("127.0.0.1:9092", credentials=credentials) as publisher:
        receipt = await publisher.publish(event)   # idempotent, acks=all, keyed by citizen ID

Or, transactionally with the department's own data: ``Outbox.add(conn, event)`` inside the department's
transaction, and ``python -m services.publisher.relay`` publishing the outbox (see ``outbox`` and ``relay``).
"""

from __future__ import annotations

from services.publisher.outbox import Outbox, OutboxConflict
from services.publisher.producer import Publisher, PublishError, Receipt, Record
from services.publisher.relay import OutboxRelay

__all__ = ["Outbox", "OutboxConflict", "OutboxRelay", "PublishError", "Publisher", "Receipt", "Record"]

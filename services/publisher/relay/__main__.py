"""``python -m services.publisher.relay --dsn DSN --table SCHEMA.TABLE``: run the outbox relay."""

from __future__ import annotations

from services.publisher.relay import main

main()

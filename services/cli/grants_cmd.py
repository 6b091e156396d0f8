"""renkou grants add|list|revoke (query API grants) — being built; registers nothing yet."""

from __future__ import annotations


def register(app: object) -> None:
    """Add this module's commands to the root renkou app."""
    return None

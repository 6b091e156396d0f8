"""renkou audit timeline|verify — being built; registers nothing yet."""

from __future__ import annotations


def register(app: object) -> None:
    """Add this module's commands to the root renkou app."""
    return None

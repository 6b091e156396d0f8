"""Operator tasks as library functions: rebuild into a shadow schema, verify, swap, audit, status, dead letters.

The ``renkou`` CLI (``services/cli/ops_cmd.py``, ``audit_cmd.py``, ``dlq_cmd.py``) is a thin shell around these;
tests call them directly. Each takes ``Settings`` (or an open asyncpg connection) and raises
``OperationError`` — whose ``code`` is the exit code the CLI uses — with a one-line, operator-readable message.

* ``replay``: the projection rebuilt from offset 0 of the department topics into a shadow schema, resumable.
* ``verify``: the shadow brought to exactly the live checkpoints and compared with the live schema row by row.
* ``swap``: the shadow made live in one transaction; the old schema kept until ``drop_schema``.
* ``audit``: one resident's archived timeline; every hash chain of the archive and the access log recomputed.
* ``status``: checkpoints against log ends, lag, dead letters, last batch.
* ``dlq``: dead letters listed, shown, and re-driven (same ``event_id``, so they apply once).
"""

from __future__ import annotations

from services.operations.base import BadInputError, NotFoundError, OperationError, UnavailableError

__all__ = ["BadInputError", "NotFoundError", "OperationError", "UnavailableError"]

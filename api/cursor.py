"""The cursor of GET /v1/jobs: a position in the newest-first order, (created_at, id) of the
last job of a page. Every string of the documented shape is a position, so none is refused
once it matches CURSOR_PATTERN."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

# Microseconds since the Unix epoch (16 digits reach the year 2286), "_", the job id as hex.
CURSOR_PATTERN = r"^[0-9]{1,16}_[0-9a-f]{32}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    """The position just after the job created at `created_at` with id `job_id`."""
    return f"{(created_at - _EPOCH) // _MICROSECOND}_{job_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """(created_at, id) of a cursor that matches CURSOR_PATTERN."""
    micros, job_hex = cursor.split("_")
    return _EPOCH + int(micros) * _MICROSECOND, uuid.UUID(hex=job_hex)

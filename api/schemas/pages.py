"""Paging: the query string of a list read a page at a time (pydantic)."""

from __future__ import annotations

from pydantic import Field

from api.cursor import CURSOR_PATTERN
from api.schemas.bases import StrictModel


class CursorQuery(StrictModel):
    """The paging part of a list's query string: page size and a keyset cursor."""

    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(
        default=None,
        pattern=CURSOR_PATTERN,
        description="next_cursor from the previous page (a position in the list).",
    )

"""Lists and paging: the envelope every list is answered in, a page of a longer list, and the
query string that asks for one (pydantic).

Each list subclasses Listing[X] or Page[X] under a name of its own (JobList, KeyList, ...): the
OpenAPI component is named after the class, and the document keeps those names."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from api.cursor import CURSOR_PATTERN
from api.schemas.bases import StrictModel

Item = TypeVar("Item")


class Listing(BaseModel, Generic[Item]):
    """`{"object": "list", "data": [...]}`: a whole list, in one answer."""

    object: Literal["list"] = "list"
    data: list[Item]


class Page(Listing[Item], Generic[Item]):
    """One page of a longer list, read by keyset cursor: next_cursor leads to the next."""

    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class CursorQuery(StrictModel):
    """The paging part of a list's query string: page size and a keyset cursor."""

    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(
        default=None,
        pattern=CURSOR_PATTERN,
        description="next_cursor from the previous page (a position in the list).",
    )

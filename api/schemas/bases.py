"""The base classes of request and row models: closed bodies, PATCH bodies, answers read from a
database row (pydantic)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A request body or query string: an unknown field is refused."""

    model_config = ConfigDict(extra="forbid")


class PatchModel(StrictModel):
    """A PATCH body: a field given as null clears it, an absent field is kept."""

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class RowModel(BaseModel):
    """A response model read straight from a database row."""

    model_config = ConfigDict(from_attributes=True)

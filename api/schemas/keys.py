"""Request and response models of API keys, /v1/keys (pydantic); the admin's key routes answer
with the same KeyOut."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal, Self

from pydantic import Field, model_validator

from api.schemas.bases import RowModel, StrictModel
from api.schemas.fields import NAME_PATTERN, FutureDatetime, json_int
from api.schemas.pages import Listing


class KeyCreate(StrictModel):
    """Body of POST /v1/keys. At most one of expires_at and expires_in_days."""

    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=NAME_PATTERN)
    expires_at: FutureDatetime | None = None
    expires_in_days: json_int(ge=1, le=3650) | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> Self:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        return self

    def expiry(self) -> datetime | None:
        if self.expires_in_days is not None:
            return datetime.now(UTC) + timedelta(days=self.expires_in_days)
        return self.expires_at


class KeyOut(RowModel):
    """An API key as listed: never its hash, and its plaintext only once, at creation."""

    id: uuid.UUID
    object: Literal["api_key"] = "api_key"
    user_id: uuid.UUID
    name: str | None
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rpm_limit: int | None = Field(description="Requests per minute; null: the default.")
    tpm_limit: int | None = Field(description="Estimated tokens per minute; null: the default.")


class KeyCreated(KeyOut):
    key: str = Field(description="The plaintext key. It is shown only in this answer.")


class KeyList(Listing[KeyOut]):
    pass

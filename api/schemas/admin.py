"""Request and response models of the operator's admin API, /v1/admin (pydantic): users, their
budgets, and the limits of their keys (a key itself is answered as keys.py's KeyOut)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from api.schemas.bases import PatchModel, RowModel, StrictModel
from api.schemas.fields import NAME_PATTERN, FutureDatetime, Usd, UsdOut, json_int
from api.schemas.keys import KeyCreate
from api.schemas.pages import Listing

# Postgres INTEGER columns: a larger number would fail in the database, not here.
MAX_INT4 = 2**31 - 1

BudgetUsd = Annotated[
    Usd,
    Field(
        description='Decimal dollars, e.g. "12.50" (a string keeps it exact; a number is '
        "rounded to 10 decimal places); null: no ceiling."
    ),
]
RateLimit = json_int(ge=1, le=MAX_INT4)


class AdminKeyCreate(KeyCreate):
    """Body of POST /v1/admin/users/<id>/keys: a key may also get its own rate limits."""

    rpm_limit: RateLimit | None = None
    tpm_limit: RateLimit | None = None


class KeyUpdate(PatchModel):
    """Body of PATCH /v1/admin/keys/<id>."""

    rpm_limit: RateLimit | None = None
    tpm_limit: RateLimit | None = None
    expires_at: FutureDatetime | None = None


class UserCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    daily_budget_usd: BudgetUsd | None = None
    monthly_budget_usd: BudgetUsd | None = None


class UserUpdate(PatchModel):
    """Body of PATCH /v1/admin/users/<id>."""

    daily_budget_usd: BudgetUsd | None = None
    monthly_budget_usd: BudgetUsd | None = None


# Offset paging, for GET /v1/admin/users only: the other lists page by cursor (CursorQuery).
class PageQuery(StrictModel):
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_INT4)


class UserOut(RowModel):
    id: uuid.UUID
    object: Literal["user"] = "user"
    name: str
    daily_budget_usd: UsdOut | None = Field(description="Dollars per UTC day; null: none.")
    monthly_budget_usd: UsdOut | None = Field(description="Dollars per month; null: none.")
    created_at: datetime


class UserPage(Listing[UserOut]):
    has_more: bool = Field(description="Whether users follow this page (at offset + limit).")
    limit: int
    offset: int

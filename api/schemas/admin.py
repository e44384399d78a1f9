"""Request and response models of the operator's admin API, /v1/admin (pydantic): users, their
budgets, team and fair share, and the limits of their keys (a key itself is answered as keys.py's
KeyOut)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from api.schemas.bases import PatchModel, RowModel, StrictModel
from api.schemas.fields import NAME_PATTERN, FutureDatetime, Usd, UsdOut, json_int
from api.schemas.keys import KeyCreate
from api.schemas.pages import Listing
from shared.input_safety.user_settings import ScreeningMode

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
# Shares are relative: a thousand steps are resolution enough, and the bound keeps a typo from
# handing one user nearly every slot.
MAX_WEIGHT = 1000
Weight = json_int(ge=1, le=MAX_WEIGHT)
MaxConcurrency = json_int(ge=1, le=MAX_INT4)


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


# Not nullable: left out means kept, and null is refused as the wrong type.
_NOT_NULLABLE = ("weight", "scrub_pii", "restore_pii", "keep_original_prompts")


def _weight_default_undocumented(schema: dict[str, Any]) -> None:
    for name in _NOT_NULLABLE:
        schema["properties"][name].pop("default", None)


class UserUpdate(PatchModel):
    """Body of PATCH /v1/admin/users/<id>; weight and the booleans may not be null."""

    # Those in _NOT_NULLABLE: their None default only marks "left out" (pydantic never
    # validates a default), so the document leaves it out.
    model_config = ConfigDict(json_schema_extra=_weight_default_undocumented)

    daily_budget_usd: BudgetUsd | None = None
    monthly_budget_usd: BudgetUsd | None = None
    weight: Weight = Field(
        default=None,
        description="The user's share of the worker slots, against the other users with queued "
        "jobs of the same priority; every user starts at 1.",
    )
    max_concurrency: MaxConcurrency | None = Field(
        default=None,
        description="At most this many of the user's jobs dispatched or running at once, across "
        "all workers; null: no cap.",
    )
    team_id: uuid.UUID | None = Field(
        default=None,
        description="The team (from /v1/admin/teams) whose budgets are checked with the user's "
        "own from the next job on; null: in no team.",
    )
    scrub_pii: bool = Field(
        default=None,
        description="Scrub PII from every prompt of the user before it reaches a provider "
        "(README: 'Input safety').",
    )
    restore_pii: bool = Field(
        default=None,
        description="Scrub PII and put the originals back into every answer of the user.",
    )
    keep_original_prompts: bool = Field(
        default=None,
        description="The stored jobs keep the original prompt (scrubbed only on its way to the "
        "provider); false: they keep the scrubbed one.",
    )
    injection_screening: ScreeningMode | None = Field(
        default=None,
        description="Screen every prompt of the user for injection: 'flag' or 'reject'; null: "
        "off (a job may still ask).",
    )


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
    weight: int = Field(description="Share of the worker slots within a priority class.")
    max_concurrency: int | None = Field(
        description="Cap on the user's dispatched, unfinished jobs; null: none."
    )
    team_id: uuid.UUID | None = Field(description="The user's team; null: none.")
    scrub_pii: bool = Field(description="Every prompt of the user is PII-scrubbed.")
    restore_pii: bool = Field(description="Every answer of the user is PII-restored.")
    keep_original_prompts: bool = Field(description="Stored jobs keep the original prompt.")
    injection_screening: ScreeningMode | None = Field(
        description="'flag', 'reject' or null (off) for every prompt of the user."
    )
    created_at: datetime


class UserPage(Listing[UserOut]):
    has_more: bool = Field(description="Whether users follow this page (at offset + limit).")
    limit: int
    offset: int

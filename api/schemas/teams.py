"""Request and response models of the operator's teams, /v1/admin/teams (pydantic)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.admin import BudgetUsd
from api.schemas.bases import PatchModel, RowModel, StrictModel
from api.schemas.fields import NAME_PATTERN, UsdOut
from api.schemas.pages import Listing


class TeamCreate(StrictModel):
    """Body of POST /v1/admin/teams."""

    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    daily_budget_usd: BudgetUsd | None = None
    monthly_budget_usd: BudgetUsd | None = None


class TeamUpdate(PatchModel):
    """Body of PATCH /v1/admin/teams/<id>; a budget given as null is cleared."""

    daily_budget_usd: BudgetUsd | None = None
    monthly_budget_usd: BudgetUsd | None = None


class TeamOut(RowModel):
    id: uuid.UUID
    object: Literal["team"] = "team"
    name: str
    daily_budget_usd: UsdOut | None = Field(
        description="Dollars per UTC day for all members together; null: none."
    )
    monthly_budget_usd: UsdOut | None = Field(
        description="Dollars per month for all members together; null: none."
    )
    created_at: datetime


class TeamList(Listing[TeamOut]):
    """Every team, in creation order."""

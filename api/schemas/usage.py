"""Query and response models of usage: the caller's, GET /v1/usage, and everyone's, GET
/v1/admin/usage (pydantic)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, Field, RootModel, model_validator

from api.schemas.bases import RowModel, StrictModel
from api.schemas.fields import IsoDate, UsdOut

MAX_USAGE_DAYS = 366


class UsageQuery(StrictModel):
    """GET /v1/usage: inclusive UTC dates; the last 30 days by default."""

    # Bounded so that the day after `end` and 29 days before it are always valid dates.
    start: IsoDate | None = Field(
        default=None,
        description="First UTC day, YYYY-MM-DD. Default: 29 days before end.",
    )
    end: IsoDate | None = Field(
        default=None,
        description="Last UTC day (inclusive). Default: today, or start if that is later.",
    )

    @model_validator(mode="after")
    def _fill_and_check(self) -> Self:
        today = datetime.now(UTC).date()
        if self.end is None:
            self.end = today if self.start is None else max(today, self.start)
        if self.start is None:
            self.start = self.end - timedelta(days=29)
        if self.end < self.start:
            raise ValueError("end must not be before start")
        if (self.end - self.start).days + 1 > MAX_USAGE_DAYS:
            raise ValueError(f"the range covers at most {MAX_USAGE_DAYS} days")
        return self


GROUP_BY_DOC = (
    "Sum per `model`, `tag` (a job with several tags counts in full under each, so the rows "
    "can add up to more than the totals; key null: untagged jobs), `team` (the team charged "
    "when the job was admitted; key null: no team) or `day` (UTC)."
)


class UsageGroupQuery(UsageQuery):
    """GET /v1/usage: without group_by, rows per UTC day and model (UsageOut); with it, one row
    per group (UsageGroups)."""

    group_by: Literal["model", "tag", "team", "day"] | None = Field(
        default=None, description=GROUP_BY_DOC
    )


class AdminUsageQuery(UsageQuery):
    """GET /v1/admin/usage: every user's usage, or one user's or one team's."""

    group_by: Literal["model", "tag", "team", "day", "user"] = Field(
        default="user", description=GROUP_BY_DOC + " Or `user` (the default)."
    )
    user_id: uuid.UUID | None = Field(default=None, description="Only this user's usage.")
    team_id: uuid.UUID | None = Field(
        default=None, description="Only the usage charged to this team."
    )


class UsageRow(RowModel):
    date: date
    model: str
    provider: str
    requests: int = Field(description="Billed attempts.")
    input_tokens: int
    output_tokens: int
    cost_usd: UsdOut


class UsageTotals(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: UsdOut


class UsageOut(BaseModel):
    object: Literal["usage"] = "usage"
    start: date
    end: date
    data: list[UsageRow] = Field(description="One row per UTC day and model, by date, model.")
    totals: UsageTotals


class UsageGroup(RowModel):
    key: str | None = Field(
        description="The group: a model, a tag, a team id, a UTC date (YYYY-MM-DD) or a user "
        "id; null: the untagged jobs (tag) or the usage no team was charged for (team)."
    )
    name: str | None = Field(description="The team's or user's name; null for other groups.")
    requests: int = Field(description="Billed attempts.")
    input_tokens: int
    output_tokens: int
    cost_usd: UsdOut


class UsageGroups(BaseModel):
    object: Literal["usage.groups"] = "usage.groups"
    group_by: str
    start: date
    end: date
    data: list[UsageGroup] = Field(description="One row per group, by key (null last).")
    totals: UsageTotals = Field(
        description="Each billed attempt once (by tag, the rows may add up to more)."
    )


class UsageAnswer(RootModel[UsageOut | UsageGroups]):
    """Rows per UTC day and model, or per group when group_by is given."""

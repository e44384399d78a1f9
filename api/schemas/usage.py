"""Query and response models of the caller's usage, GET /v1/usage (pydantic)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

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

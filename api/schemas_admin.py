"""Request and response models of the key, admin, usage and webhook-endpoint routes (pydantic)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from api.schemas_fields import HttpUrlText, IsoDate, Usd, UsdOut, json_int
from shared.webhook_events import EVENT_TYPES

# Postgres INTEGER columns: a larger number would fail in the database, not here.
MAX_INT4 = 2**31 - 1
MAX_USAGE_DAYS = 366
# PostgreSQL text cannot hold NUL; names refuse the other control characters too.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*$"
TEXT_PATTERN = r"^[^\x00]*$"


def _in_future(value: datetime) -> datetime:
    if value <= datetime.now(UTC):
        raise ValueError("must be in the future")
    return value


FutureDatetime = Annotated[AwareDatetime, AfterValidator(_in_future)]
BudgetUsd = Annotated[
    Usd,
    Field(
        description='Decimal dollars, e.g. "12.50" (a string keeps it exact; a number is '
        "rounded to 10 decimal places); null: no ceiling."
    ),
]
RateLimit = json_int(ge=1, le=MAX_INT4)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Patch(_Body):
    """A PATCH body: a field given as null clears it, an absent field is kept."""

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class _Row(BaseModel):
    """A response model read straight from a database row."""

    model_config = ConfigDict(from_attributes=True)


# --- API keys -----------------------------------------------------------------------------


class KeyCreate(_Body):
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


class AdminKeyCreate(KeyCreate):
    """Body of POST /v1/admin/users/<id>/keys: a key may also get its own rate limits."""

    rpm_limit: RateLimit | None = None
    tpm_limit: RateLimit | None = None


class KeyUpdate(_Patch):
    """Body of PATCH /v1/admin/keys/<id>."""

    rpm_limit: RateLimit | None = None
    tpm_limit: RateLimit | None = None
    expires_at: FutureDatetime | None = None


class KeyOut(_Row):
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


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]


# --- Users (admin) ------------------------------------------------------------------------


class UserCreate(_Body):
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    daily_budget_usd: BudgetUsd | None = None
    monthly_budget_usd: BudgetUsd | None = None


class UserUpdate(_Patch):
    """Body of PATCH /v1/admin/users/<id>."""

    daily_budget_usd: BudgetUsd | None = None
    monthly_budget_usd: BudgetUsd | None = None


class PageQuery(_Body):
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_INT4)


class UserOut(_Row):
    id: uuid.UUID
    object: Literal["user"] = "user"
    name: str
    daily_budget_usd: UsdOut | None = Field(description="Dollars per UTC day; null: none.")
    monthly_budget_usd: UsdOut | None = Field(description="Dollars per month; null: none.")
    created_at: datetime


class UserPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[UserOut]
    has_more: bool = Field(description="Whether users follow this page (at offset + limit).")
    limit: int
    offset: int


# --- Usage --------------------------------------------------------------------------------


class UsageQuery(_Body):
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


class UsageRow(_Row):
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


# --- Webhook endpoints --------------------------------------------------------------------

EventType = Literal["job.succeeded", "job.failed", "job.cancelled"]


def _as_set(events: list[EventType]) -> list[str]:
    return [e for e in EVENT_TYPES if e in events]


WebhookUrl = Annotated[
    HttpUrlText,
    Field(
        description="http(s) URL (ASCII: a DNS name, an IPv4 address or a bracketed IPv6 "
        "address). It must be, and resolve to, a public address."
    ),
]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=16), AfterValidator(_as_set)]


class WebhookCreate(_Body):
    url: WebhookUrl
    event_types: EventTypes
    description: str | None = Field(default=None, max_length=500, pattern=TEXT_PATTERN)
    enabled: bool = True


_NOT_NULLABLE = ("url", "event_types", "enabled")


def _undocumented_defaults(schema: dict[str, Any]) -> None:
    for name in _NOT_NULLABLE:
        schema["properties"][name].pop("default", None)


class WebhookUpdate(_Patch):
    """Body of PATCH /v1/webhooks/<id>; only description may be null (cleared)."""

    # url, event_types and enabled are not nullable: left out means kept, and null is refused
    # as the wrong type. Their None default only marks "left out" (pydantic never validates a
    # default), so the document leaves it out.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_undocumented_defaults)

    url: WebhookUrl = None  # type: ignore[assignment]
    event_types: EventTypes = None  # type: ignore[assignment]
    description: str | None = Field(default=None, max_length=500, pattern=TEXT_PATTERN)
    enabled: bool = None  # type: ignore[assignment]


class WebhookOut(_Row):
    id: uuid.UUID
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why delivery disabled it, if it did.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation also signs."
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_...). Shown only in this answer.")


class WebhookList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookOut]

"""Response model of the callback secret, /v1/callback-secret (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class CallbackSecretOut(BaseModel):
    """Signs deliveries to your jobs' callback_url (Standard Webhooks, like endpoint secrets)."""

    object: Literal["callback_secret"] = "callback_secret"
    secret: str = Field(description="whsec_...")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation also signs."
    )

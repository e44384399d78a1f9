"""Response models of the model catalogue, GET /v1/models (pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.pages import Listing


class ModelOut(BaseModel):
    """A model promptq serves, with its price and default fallbacks."""

    id: str
    object: Literal["model"] = "model"
    provider: str = Field(description="Who serves it: 'openai' or 'anthropic'.")
    input_usd_per_mtok: str = Field(description="Decimal US dollars per million input tokens.")
    output_usd_per_mtok: str = Field(description="Decimal US dollars per million output tokens.")
    fallbacks: list[str] = Field(description="Models a job falls back to, in order.")


class ModelList(Listing[ModelOut]):
    pass

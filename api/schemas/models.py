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
    context_window: int = Field(description="Tokens of prompt and answer together.")
    structured_output: bool = Field(
        description='Native structured outputs: `model: "auto"` gives it JSON response_formats.'
    )


class ModelList(Listing[ModelOut]):
    pass

"""GET /v1/models: the models promptq serves, their provider, prices and default fallbacks."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api import openapi
from api.auth import current_user
from api.schemas.models import ModelList, ModelOut
from shared.pricing import PRICE_TABLE

bp = Blueprint("models", __name__, url_prefix="/v1/models")


@bp.get("")
@openapi.operation(
    summary="List the models promptq serves", responses={200: ModelList}, tags=["models"]
)
def list_models() -> Response:
    current_user()
    catalogue = ModelList(
        data=[
            ModelOut(
                id=price.model,
                provider=price.provider,
                input_usd_per_mtok=str(price.input_per_mtok),
                output_usd_per_mtok=str(price.output_per_mtok),
                fallbacks=list(price.fallbacks),
                context_window=price.context_window,
                structured_output=price.structured_output,
            )
            for price in PRICE_TABLE.values()
        ]
    )
    return jsonify(catalogue.model_dump(mode="json"))

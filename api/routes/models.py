"""GET /v1/models: the models promptq serves, their provider, prices and default fallbacks."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.auth import current_user
from shared.pricing import PRICE_TABLE

bp = Blueprint("models", __name__, url_prefix="/v1/models")


@bp.get("")
def list_models() -> Response:
    current_user()
    return jsonify(
        {
            "object": "list",
            "data": [
                {
                    "id": price.model,
                    "object": "model",
                    "provider": price.provider,
                    "input_usd_per_mtok": str(price.input_per_mtok),
                    "output_usd_per_mtok": str(price.output_per_mtok),
                    "fallbacks": list(price.fallbacks),
                }
                for price in PRICE_TABLE.values()
            ],
        }
    )

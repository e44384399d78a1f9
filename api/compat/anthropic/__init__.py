"""The Anthropic-compatible Message Batches API under /anthropic/v1, so that
`Anthropic(base_url=".../anthropic", api_key=<promptq key>)` works unchanged (the key in
Anthropic's X-Api-Key header). Its errors are in Anthropic's shape (errors.py); its batches are
promptq's native batches (routes/message_batches.py)."""

from __future__ import annotations

from flask import Blueprint

from api.auth import accept_x_api_key
from api.compat.anthropic.errors import register_error_handlers
from api.compat.anthropic.routes import message_batches

bp = Blueprint("anthropic", __name__, url_prefix="/anthropic/v1")
bp.register_blueprint(message_batches.bp)
accept_x_api_key(bp)
register_error_handlers(bp)

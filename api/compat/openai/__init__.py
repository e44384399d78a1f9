"""The OpenAI-compatible Files and Batches API under /openai/v1, so that
`OpenAI(base_url=".../openai/v1", api_key=<promptq key>)` works unchanged. Its errors are in
OpenAI's shape (errors.py); its batches are promptq's native batches (routes/batches.py)."""

from __future__ import annotations

from flask import Blueprint

from api.compat.openai.errors import register_error_handlers
from api.compat.openai.routes import batches, files

bp = Blueprint("openai", __name__, url_prefix="/openai/v1")
bp.register_blueprint(files.bp)
bp.register_blueprint(batches.bp)
register_error_handlers(bp)

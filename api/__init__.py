"""The HTTP edge: validates, authenticates, writes rows and publishes. It never calls a model.

The route modules are imported inside create_app, so `import api.cli` (the `promptq` command)
does not pay for every route's imports."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from shared.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """The Flask app factory (gunicorn target: api.wsgi:app)."""
    from flask import Flask

    from api.compat import anthropic as anthropic_compat
    from api.compat import openai as openai_compat
    from api.errors import register_error_handlers
    from api.request_observability import register_request_observability
    from api.request_scope import register_request_scope
    from api.routes import (
        admin,
        admin_teams,
        admin_usage,
        audit,
        batches,
        callback_secret,
        docs,
        health,
        job_streams,
        jobs,
        keys,
        metrics,
        models,
        usage,
        webhooks,
    )
    from shared.logging import configure_logging
    from shared.settings import get_settings

    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    register_error_handlers(app)
    register_request_scope(app)
    register_request_observability(app)
    routes = (
        health,
        metrics,
        jobs,
        job_streams,
        models,
        batches,
        keys,
        usage,
        webhooks,
        callback_secret,
        admin,
        admin_teams,
        admin_usage,
        audit,
        docs,
        openai_compat,
        anthropic_compat,
    )
    for route in routes:
        app.register_blueprint(route.bp)
    return app

"""The HTTP edge: validates, authenticates, writes rows and publishes. It never calls a model."""

from __future__ import annotations

from flask import Flask

from api.errors import register_error_handlers
from api.request_scope import register_request_scope
from api.routes import admin, batches, docs, health, jobs, keys, models, usage, webhooks
from shared.logging import configure_logging
from shared.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> Flask:
    """The Flask app factory (gunicorn target: api.wsgi:app)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    register_error_handlers(app)
    register_request_scope(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(models.bp)
    app.register_blueprint(batches.bp)
    app.register_blueprint(keys.bp)
    app.register_blueprint(usage.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(docs.bp)
    return app

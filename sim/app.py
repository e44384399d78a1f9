"""Flask app factory for the provider simulator."""

from flask import Flask

from sim.anthropic_routes import create_anthropic_blueprint
from sim.config import SimConfig
from sim.control_routes import create_control_blueprint
from sim.openai_routes import create_openai_blueprint
from sim.stats import RequestStats


def create_app(config: SimConfig | None = None) -> Flask:
    """A simulator app with its own counters, so parallel test servers never share state."""
    config = config or SimConfig()
    stats = RequestStats()
    app = Flask(__name__)
    app.register_blueprint(create_openai_blueprint(config, stats))
    app.register_blueprint(create_anthropic_blueprint(config, stats))
    app.register_blueprint(create_control_blueprint(stats))
    return app

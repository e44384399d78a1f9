"""Flask app factory for the provider simulator."""

from flask import Flask

from sim.anthropic_routes import create_anthropic_blueprint
from sim.config import SimConfig
from sim.control_routes import create_control_blueprint
from sim.faults import FaultInjector
from sim.openai_routes import create_openai_blueprint
from sim.request_log import RequestLog
from sim.stats import RequestStats

# Where the app keeps its FaultInjector, so the server that runs it can release hangs on stop.
FAULTS_EXTENSION = "sim.faults"


def create_app(config: SimConfig | None = None) -> Flask:
    """A simulator app with its own counters and fault rules, so parallel test servers never
    share state."""
    config = config or SimConfig()
    stats = RequestStats()
    log = RequestLog()
    injector = FaultInjector(config)
    app = Flask(__name__)
    app.extensions[FAULTS_EXTENSION] = injector
    app.register_blueprint(create_openai_blueprint(injector, stats, log))
    app.register_blueprint(create_anthropic_blueprint(injector, stats, log))
    app.register_blueprint(create_control_blueprint(stats, injector, log))
    return app

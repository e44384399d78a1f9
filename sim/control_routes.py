"""Simulator-only endpoints: liveness for process supervisors, counters for tests."""

from flask import Blueprint, Response, jsonify

from sim.stats import RequestStats


def create_control_blueprint(stats: RequestStats) -> Blueprint:
    """GET /health, GET /sim/stats and POST /sim/reset."""
    blueprint = Blueprint("control", __name__)

    @blueprint.get("/health")
    def health() -> Response:
        return jsonify(status="ok")

    @blueprint.get("/sim/stats")
    def get_stats() -> Response:
        return jsonify(stats.snapshot())

    @blueprint.post("/sim/reset")
    def reset_stats() -> Response:
        stats.reset()
        return jsonify(stats.snapshot())

    return blueprint

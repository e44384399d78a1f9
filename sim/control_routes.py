"""Simulator-only endpoints: liveness for process supervisors, counters and fault rules for
tests."""

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError

from sim.faults import FaultInjector, FaultRules
from sim.request_log import RequestLog
from sim.stats import RequestStats


def create_control_blueprint(
    stats: RequestStats, injector: FaultInjector, log: RequestLog
) -> Blueprint:
    """GET /health, GET /sim/stats, GET /sim/requests, POST /sim/reset and
    GET/PUT/DELETE /sim/faults."""
    blueprint = Blueprint("control", __name__)

    @blueprint.get("/health")
    def health() -> Response:
        return jsonify(status="ok")

    @blueprint.get("/sim/stats")
    def get_stats() -> Response:
        return jsonify(stats.snapshot())

    @blueprint.get("/sim/requests")
    def get_requests() -> Response:
        return jsonify(requests=log.snapshot())

    @blueprint.post("/sim/reset")
    def reset_stats() -> Response:
        stats.reset()
        log.clear()
        return jsonify(stats.snapshot())

    @blueprint.get("/sim/faults")
    def get_faults() -> Response:
        return _rules_body(injector)

    @blueprint.put("/sim/faults")
    def put_faults() -> Response | tuple[Response, int]:
        try:
            rules = FaultRules.model_validate_json(request.get_data())
        except ValidationError as exc:
            details = exc.errors(include_url=False, include_context=False, include_input=False)
            error = {"code": "invalid_fault_rules", "message": str(exc), "details": details}
            return jsonify(error=error), 400
        injector.set_rules(rules.rules)
        return _rules_body(injector)

    @blueprint.delete("/sim/faults")
    def clear_faults() -> Response:
        injector.set_rules(())
        return _rules_body(injector)

    return blueprint


def _rules_body(injector: FaultInjector) -> Response:
    return jsonify(FaultRules(rules=injector.rules).model_dump(mode="json"))

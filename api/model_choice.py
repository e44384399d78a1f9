"""`model: "auto"` at admission: the routed chain for a job body (shared/model_routing.py), with
the fleet's model health read once per request, however many jobs a batch holds."""

from __future__ import annotations

import redis
from flask import g

from api.schemas.jobs import JobCreate
from shared.logging import get_logger
from shared.model_health import ModelHealth, read_health
from shared.model_routing import Routing, candidates, health_key, route
from shared.pricing import PRICE_TABLE
from shared.redis_client import get_redis
from shared.settings import Settings

log = get_logger(__name__)


def routed(body: JobCreate, settings: Settings) -> Routing:
    """The chain an auto job walks, and why."""
    policy, models = candidates(body.routing_policy, settings.routing_policies)
    return route(
        policy,
        models,
        body.contents(),
        body.effective_max_tokens(),
        body.needs_structured_output(),
        _health(),
    )


def _health() -> dict[str, ModelHealth]:
    if "model_health" not in g:
        try:
            g.model_health = read_health(get_redis(), (health_key(p) for p in PRICE_TABLE.values()))
        except redis.RedisError:
            # The choice goes on by price alone; the admission that follows needs Redis anyway.
            log.warning("model_choice.health_unavailable", exc_info=True)
            g.model_health = {}
    health: dict[str, ModelHealth] = g.model_health
    return health

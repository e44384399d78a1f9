"""Exact-match response cache in Redis, keyed by the job's owner, model and the canonical
request.

Only deterministic requests (temperature 0) of jobs that opted in are cached: any other reply
is one sample of many, and replaying it would change what the user asked for. Entries are the
owner's alone: a hit served across tenants would tell one that another sent the very same
prompt (its `cached: true`, its zero cost), however alike the answers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

import redis

from worker.providers.base import ProviderRequest, ProviderResponse

# v3: keyed by owner too; entries of the earlier, shared keys are left to expire, never read.
PREFIX = "promptq:cache:v3:"


def cacheable(request: ProviderRequest, opted_in: bool) -> bool:
    return opted_in and request.temperature == 0


def cache_key(owner: str, request: ProviderRequest, response_format: dict[str, Any] | None) -> str:
    canonical = json.dumps(
        {"owner": owner, "request": asdict(request), "response_format": response_format},
        sort_keys=True,
        separators=(",", ":"),
    )
    return PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def lookup(client: redis.Redis, key: str) -> ProviderResponse | None:
    raw = client.get(key)
    return ProviderResponse(**json.loads(raw)) if raw else None


def store(client: redis.Redis, key: str, response: ProviderResponse, ttl_s: int) -> None:
    client.set(key, json.dumps(asdict(response)), ex=ttl_s)

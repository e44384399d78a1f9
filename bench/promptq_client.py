"""The bench's own calls to promptq's HTTP API: batches for bulk admission, single jobs, polls."""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from devstack.processes import wait_until

MAX_BATCH = 10_000
MODEL = "gpt-4o-mini"


def job_body(tag: str, n: int, priority: str = "normal", model: str = MODEL) -> dict[str, Any]:
    # Distinct content per job: the response cache never answers for the provider.
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"bench {tag} {n}"}],
        "max_tokens": 32,
        "priority": priority,
    }


def batch_bodies(
    count: int, tag: str, priority: str = "normal", models: tuple[str, ...] = (MODEL,)
) -> list[bytes]:
    """POST /v1/batches bodies for `count` jobs, at most 10,000 a batch, encoded up front so
    the timing covers promptq's work only; models alternate job by job."""
    bodies = []
    for start in range(0, count, MAX_BATCH):
        jobs = [
            {
                "custom_id": f"{tag}-{n}",
                **job_body(tag, n, priority, models[n % len(models)]),
            }
            for n in range(start, min(count, start + MAX_BATCH))
        ]
        bodies.append(json.dumps({"jobs": jobs}).encode())
    return bodies


def post_batch(api_url: str, key: str, body: bytes) -> float:
    """Send one batch; seconds until its 202."""
    started = time.monotonic()
    response = requests.post(
        f"{api_url}/v1/batches",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=300,
    )
    elapsed = time.monotonic() - started
    if response.status_code != 202:
        raise RuntimeError(f"batch refused: {response.status_code} {response.text[:500]}")
    return elapsed


def submit(session: requests.Session, api_url: str, key: str, body: dict[str, Any]) -> str:
    """POST one job; its id."""
    response = session.post(
        f"{api_url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    if response.status_code != 202:
        raise RuntimeError(f"job refused: {response.status_code} {response.text[:500]}")
    return response.json()["id"]


def wait_succeeded(
    session: requests.Session, api_url: str, key: str, job_id: str, interval: float
) -> str:
    """Poll GET /v1/jobs/<id> every `interval` seconds until the job is final; its status."""
    seen: dict[str, str] = {}

    def final() -> bool:
        response = session.get(
            f"{api_url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        seen["status"] = response.json()["status"]
        return seen["status"] in ("succeeded", "failed", "cancelled")

    wait_until(final, timeout=60, interval=interval, what=f"job {job_id}")
    return seen["status"]

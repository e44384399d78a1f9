"""What an operator sees of a real stack (gunicorn with two processes, a job worker, a webhook
worker, the simulator): /ready before and after a job worker runs, /metrics of the API and of
each worker after successes, retried failures and a webhook, and the JSON log lines of every
process, joined by one X-Request-ID from the API to the worker to the webhook attempt."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from devstack.processes import wait_until
from shared import worker_heartbeats
from shared.queueing import JOB_QUEUE_ORDER, MAINTENANCE_QUEUE, WEBHOOK_QUEUE
from tests.conftest import Services
from tests.support.stack import RunningStack, start_stack
from tests.support.webhook_receiver import Delivery, WebhookReceiver

pytestmark = pytest.mark.e2e

HEALTHY = "gpt-4o-mini"
# Every other call to it fails with a 5xx (the simulator's exact rate), so its jobs succeed on
# a retry and its failed attempts show in the metrics.
FLAKY = "claude-haiku-4-5"
JOBS_PER_MODEL = 4
REQUEST_ID = f"obs-{uuid.uuid4().hex}"
PROMPT = f"observability prompt {uuid.uuid4().hex}"
WAIT_S = 30
# The simulator stands in for the providers and logs as werkzeug does; everything else is ours.
PROMPTQ_PROCESSES = ("api", "worker", "webhooks", "beat")
ENV = {
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "RETRY_BASE_S": "0.05",
    "RETRY_CAP_S": "0.2",
    # Short, so a worker stopped by an earlier module no longer counts for /ready.
    "READY_WORKER_HEARTBEAT_S": "3",
    "ADMIN_API_KEY": f"admin-{uuid.uuid4().hex}",
}


@dataclass
class Observed:
    stack: RunningStack
    key: str
    callback_secret: str
    jobs: list[dict[str, Any]]
    traced_job: str
    unready: requests.Response
    ready: requests.Response
    delivery: Delivery


def _metrics(url: str) -> dict[str, Any]:
    """Families by name (counters without `_total`, as the parser names them)."""
    text = requests.get(url, timeout=5).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def _samples(family: Any, name: str, **labels: str) -> list[Sample]:
    return [
        s
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def _value(family: Any, name: str, **labels: str) -> float:
    return sum(s.value for s in _samples(family, name, **labels))


def _job(model: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"{PROMPT} {model} {n}"}],
        "max_tokens": 16,
        **extra,
    }


@pytest.fixture(scope="module")
def observed(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    log_dir: Path = tmp_path_factory.mktemp("observability-stack")
    stack = start_stack(
        services.database_url, services.redis_url, log_dir, extra_env=ENV, workers=0, beat=True
    )
    receiver = WebhookReceiver()
    try:
        # No job worker yet: heartbeats left by other modules' workers are cleared first.
        redis.Redis.from_url(services.redis_url).delete(worker_heartbeats.HEARTBEATS_KEY)
        unready = requests.get(f"{stack.api_url}/ready", timeout=5)
        stack.start_worker("worker", concurrency=4)
        stack.start_webhook_worker()
        wait_until(
            lambda: requests.get(f"{stack.api_url}/ready", timeout=5).status_code == 200,
            timeout=WAIT_S,
            what="/ready with a job worker",
        )
        ready = requests.get(f"{stack.api_url}/ready", timeout=5)
        stack.set_faults({"model": FLAKY, "kind": "server_error", "rate": 0.5})

        name = f"observer-{uuid.uuid4().hex[:8]}"
        stack.cli("users", "create", name)
        key = stack.cli("keys", "create", name)
        route = receiver.route("/callback")
        route.secret = stack.get(key, "/v1/callback-secret")["secret"]
        headers = {"Authorization": f"Bearer {key}"}
        refused = requests.post(
            f"{stack.api_url}/v1/jobs", json={"model": HEALTHY}, headers=headers, timeout=10
        )
        assert refused.status_code == 422, refused.text
        traced = requests.post(
            f"{stack.api_url}/v1/jobs",
            json=_job(HEALTHY, 0, callback_url=route.url),
            headers={**headers, "X-Request-ID": REQUEST_ID},
            timeout=10,
        )
        assert traced.status_code == 202, traced.text
        assert traced.headers["X-Request-ID"] == REQUEST_ID
        ids = [traced.json()["id"]]
        ids += [stack.submit(key, _job(HEALTHY, n))["id"] for n in range(1, JOBS_PER_MODEL)]
        ids += [stack.submit(key, _job(FLAKY, n))["id"] for n in range(JOBS_PER_MODEL)]
        jobs = [stack.wait_final(key, job_id, timeout=WAIT_S) for job_id in ids]
        wait_until(lambda: route.received(), timeout=WAIT_S, what="the callback")
        yield Observed(stack, key, route.secret, jobs, ids[0], unready, ready, route.received()[0])
    finally:
        receiver.close()
        stack.stop()


def test_ready_names_the_missing_worker_then_passes(observed: Observed) -> None:
    assert observed.unready.status_code == 503
    error = observed.unready.json()["error"]
    assert error["code"] == "not_ready"
    assert "workers" in error["message"]
    assert error["details"]["postgres"] == "ok"
    assert error["details"]["redis"] == "ok"
    assert error["details"]["workers"].startswith("unavailable")
    assert observed.ready.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "workers": "ok"},
    }


def test_api_metrics_sum_every_gunicorn_process(observed: Observed) -> None:
    stack = observed.stack
    assert all(job["status"] == "succeeded" for job in observed.jobs)
    # Two scrapes, likely answered by different processes, see the same sums.
    for _ in range(2):
        api = _metrics(f"{stack.api_url}/metrics")
        admitted = api["promptq_jobs_admitted"]
        assert admitted.type == "counter"
        total = 2 * JOBS_PER_MODEL
        assert _value(admitted, "promptq_jobs_admitted_total", priority="normal", source="job") == (
            total
        )
        refused = api["promptq_jobs_refused"]
        assert _value(refused, "promptq_jobs_refused_total", reason="validation_error") == 1
        requests_family = api["promptq_http_requests"]
        assert (
            _value(
                requests_family,
                "promptq_http_requests_total",
                method="POST",
                route="/v1/jobs",
                status="202",
            )
            == total
        )
        assert api["promptq_http_request_duration_seconds"].type == "histogram"
        depth = api["promptq_queue_depth"]
        assert depth.type == "gauge"
        queues = {s.labels["queue"] for s in depth.samples}
        assert queues == {MAINTENANCE_QUEUE, *JOB_QUEUE_ORDER, WEBHOOK_QUEUE}
        assert api["promptq_backlog_depth"].type == "gauge"


def test_worker_metrics_follow_the_jobs_and_attempts(observed: Observed) -> None:
    stack, key = observed.stack, observed.key
    worker = _metrics(stack.metrics_urls["worker"])
    attempts = [
        attempt
        for job in observed.jobs
        for attempt in stack.get(key, f"/v1/jobs/{job['id']}/attempts")["data"]
    ]
    failed = [a for a in attempts if a["outcome"] == "failed"]
    assert failed, "the flaky model failed no call"
    assert {a["model"] for a in failed} == {FLAKY}

    duration = worker["gen_ai_client_operation_duration_seconds"]
    assert duration.type == "histogram"
    labels = {"gen_ai_operation_name": "chat"}
    for model, provider in ((HEALTHY, "openai"), (FLAKY, "anthropic")):
        calls = [a for a in attempts if a["model"] == model]
        ok = [a for a in calls if a["outcome"] == "succeeded"]
        bad = [a for a in calls if a["outcome"] == "failed"]
        model_labels = {**labels, "gen_ai_provider_name": provider, "gen_ai_request_model": model}
        name = "gen_ai_client_operation_duration_seconds_count"
        assert _value(duration, name, **model_labels, error_type="") == len(ok)
        assert _value(duration, name, **model_labels, error_type="server_error") == len(bad)
        attempts_family = worker["promptq_attempts"]
        assert _value(attempts_family, "promptq_attempts_total", model=model, outcome="failed") == (
            len(bad)
        )
        finished = worker["promptq_jobs_finished"]
        assert _value(finished, "promptq_jobs_finished_total", status="succeeded", model=model) == (
            JOBS_PER_MODEL
        )
        cost = sum(Decimal(j["cost_usd"]) for j in observed.jobs if j["model"] == model)
        billed = _value(worker["promptq_cost_usd"], "promptq_cost_usd_total", model=model)
        assert billed == pytest.approx(float(cost), rel=1e-9)

    tokens = worker["gen_ai_client_token_usage"]
    assert tokens.type == "histogram"
    for token_type, field in (("input", "input_tokens"), ("output", "output_tokens")):
        used = sum(job["usage"][field] for job in observed.jobs)
        assert used > 0
        assert _value(tokens, "gen_ai_client_token_usage_sum", gen_ai_token_type=token_type) == used

    total = 2 * JOBS_PER_MODEL
    wait = worker["promptq_job_queue_wait_seconds"]
    assert _value(wait, "promptq_job_queue_wait_seconds_count", priority="normal") == total
    e2e = worker["promptq_job_end_to_end_seconds"]
    assert (
        _value(e2e, "promptq_job_end_to_end_seconds_count", priority="normal", status="succeeded")
        == total
    )
    breaker = worker["promptq_breaker_state"]
    assert breaker.type == "gauge"
    assert _value(breaker, "promptq_breaker_state", provider="openai", model=HEALTHY) == 0
    permits = worker["promptq_permits_in_use"]
    assert _value(permits, "promptq_permits_in_use", provider="openai", model=HEALTHY) == 0

    hooks = _metrics(stack.metrics_urls["webhooks"])
    deliveries = hooks["promptq_webhook_deliveries"]
    assert _value(deliveries, "promptq_webhook_deliveries_total", outcome="delivered") == 1
    latency = hooks["promptq_webhook_delivery_duration_seconds"]
    assert (
        _value(latency, "promptq_webhook_delivery_duration_seconds_count", outcome="delivered") == 1
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    parsed = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{path.name}:{number} is not JSON: {line[:200]!r}")
    return parsed


def test_every_log_line_is_json_and_one_request_id_runs_through(observed: Observed) -> None:
    stack = observed.stack
    logs = {name: _lines(stack.log_dir / f"{name}.log") for name in PROMPTQ_PROCESSES}
    assert logs["beat"], "beat wrote nothing"
    traced = [
        (name, line)
        for name, lines in logs.items()
        for line in lines
        if line.get("request_id") == REQUEST_ID
    ]
    events = {(name, line["event"]) for name, line in traced}
    assert ("api", "http.access") in events
    assert ("api", "job.accepted") in events
    assert ("worker", "job.finished") in events
    assert ("webhooks", "webhook.attempt") in events
    for name, line in traced:
        if name == "worker":
            assert line["job_id"] == observed.traced_job
            assert line["user_id"]
        if (name, line["event"]) == ("worker", "job.finished"):
            assert (line["model"], line["attempt"]) == (HEALTHY, 1)
    # The receiver was told it too.
    assert observed.delivery.headers["x-request-id"] == REQUEST_ID

    # A request without one gets one made up; one that is not a safe token is replaced.
    made = requests.get(f"{stack.api_url}/health", timeout=5).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    given = requests.get(
        f"{stack.api_url}/health", headers={"X-Request-ID": "two words"}, timeout=5
    ).headers["X-Request-ID"]
    assert given != "two words"
    assert re.fullmatch(r"[0-9a-f]{32}", given)

    everything = "\n".join(
        (stack.log_dir / f"{name}.log").read_text() for name in PROMPTQ_PROCESSES
    )
    secrets = {
        "the user's key": observed.key,
        "the callback secret": observed.callback_secret,
        "the admin key": ENV["ADMIN_API_KEY"],
        "the OpenAI key": stack.env["OPENAI_API_KEY"],
        "the Anthropic key": stack.env["ANTHROPIC_API_KEY"],
        "a prompt": PROMPT,
    }
    leaked = [what for what, secret in secrets.items() if secret in everything]
    assert not leaked, f"found in the logs: {leaked}"

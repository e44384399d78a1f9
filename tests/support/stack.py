"""A running promptq stack (simulator, gunicorn, celery workers, beat) for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devstack.processes import BIN, ManagedProcess, free_port, http_ok, wait_until
from devstack.stack import api_process, beat_process, sim_process, simulator_env, worker_process
from shared.models import FINAL_STATUSES
from shared.queueing import WEBHOOK_QUEUE


@dataclass
class RunningStack:
    api_url: str
    sim_url: str
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    # Each worker's /metrics, by process name.
    metrics_urls: dict[str, str] = field(default_factory=dict)

    def worker(
        self, name: str, concurrency: int | None = None, queues: tuple[str, ...] | None = None
    ) -> ManagedProcess:
        """Launch (not wait for) a Celery worker with a /metrics port of its own."""
        port = free_port()
        process = worker_process(
            self.env,
            self.log_dir,
            name=name,
            concurrency=concurrency,
            metrics_port=port,
            **({"queues": queues} if queues else {}),
        )
        self.metrics_urls[name] = f"http://127.0.0.1:{port}/metrics"
        self.processes[name] = process.start()
        return process

    def cli(self, *args: str) -> str:
        """Run the `promptq` admin CLI against this stack's database."""
        done = subprocess.run(
            [str(BIN / "promptq"), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def submit(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(
            f"{self.api_url}/v1/jobs",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return response.json()

    def wait_final(self, key: str, job_id: str, timeout: float = 30) -> dict[str, Any]:
        """Poll GET /v1/jobs/<id> until the job reaches a final state."""
        seen: dict[str, Any] = {}

        def final() -> bool:
            response = requests.get(
                f"{self.api_url}/v1/jobs/{job_id}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=5,
            )
            seen.update(response.json())
            return seen.get("status") in FINAL_STATUSES

        wait_until(final, timeout=timeout, interval=0.1, what=f"job {job_id} to finish")
        return seen

    def start_worker(self, name: str, concurrency: int = 4) -> ManagedProcess:
        """Start one more Celery worker process and wait until it consumes."""
        process = self.worker(name, concurrency)
        wait_until(lambda: "ready." in process.log_text(), timeout=60, what=f"worker {name}")
        return process

    def start_webhook_worker(self, name: str = "webhooks", concurrency: int = 8) -> ManagedProcess:
        """Start a Celery worker on the webhooks queue and wait until it consumes."""
        process = self.worker(name, concurrency, (WEBHOOK_QUEUE,))
        wait_until(lambda: "ready." in process.log_text(), timeout=60, what=f"worker {name}")
        return process

    def start_beat(self) -> ManagedProcess:
        """Start Celery beat (the sweeper's schedule)."""
        self.processes["beat"] = beat_process(self.env, self.log_dir).start()
        return self.processes["beat"]

    def set_faults(self, *rules: dict[str, Any]) -> None:
        """Replace the simulator's runtime fault rules (PUT /sim/faults)."""
        response = requests.put(f"{self.sim_url}/sim/faults", json={"rules": rules}, timeout=5)
        assert response.status_code == 200, response.text

    def clear_faults(self) -> None:
        requests.delete(f"{self.sim_url}/sim/faults", timeout=5).raise_for_status()

    def sim_stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.sim_url}/sim/stats", timeout=5)
        response.raise_for_status()
        return response.json()

    def get(self, key: str, path: str) -> dict[str, Any]:
        """GET an API path (e.g. /v1/jobs/<id>/attempts) as `key`; the JSON body of a 200."""
        response = requests.get(
            f"{self.api_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()


def start_stack(
    database_url: str,
    redis_url: str,
    log_dir: Path,
    sim_latency_ms: float = 0.0,
    *,
    extra_env: Mapping[str, str] | None = None,
    workers: int = 1,
    concurrency: int = 4,
    beat: bool = False,
    sim_hang_s: float | None = None,
    webhook_workers: int = 0,
) -> RunningStack:
    """Start the simulator, the API under gunicorn, `workers` Celery workers (named worker,
    worker2, ...), `webhook_workers` on the webhooks queue (webhooks, webhooks2, ...) and
    optionally beat, with `extra_env` over the defaults; wait until ready. PUBLIC_BASE_URL is
    the API's address."""
    sim_port, api_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **simulator_env(sim_url),
        "LOG_JSON": "true",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
        **(extra_env or {}),
    }
    stack = RunningStack(f"http://127.0.0.1:{api_port}", sim_url, env, log_dir)
    try:
        stack.processes["sim"] = sim_process(sim_port, log_dir, sim_latency_ms, sim_hang_s).start()
        stack.processes["api"] = api_process(api_port, env, log_dir).start()
        names = ["worker", *(f"worker{n}" for n in range(2, workers + 1))][:workers]
        for name in names:
            stack.worker(name, concurrency)
        hook_names = ["webhooks", *(f"webhooks{n}" for n in range(2, webhook_workers + 1))]
        for name in hook_names[:webhook_workers]:
            stack.worker(name, 8, (WEBHOOK_QUEUE,))
        names += hook_names[:webhook_workers]
        if beat:
            stack.start_beat()
        wait_until(lambda: http_ok(f"{sim_url}/health"), timeout=30, what="the simulator")
        wait_until(lambda: http_ok(f"{stack.api_url}/health"), timeout=30, what="the API")
        for name in names:
            process = stack.processes[name]
            wait_until(lambda p=process: "ready." in p.log_text(), timeout=60, what=name)
        if workers:
            # PostgreSQL, Redis and a job worker's heartbeat, as the API sees them.
            wait_until(lambda: http_ok(f"{stack.api_url}/ready"), timeout=30, what="/ready")
    except BaseException:
        stack.stop()
        raise
    return stack

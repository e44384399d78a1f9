"""Flower as promptq runs it (worker/flower_config.py): it wants credentials, lists the job and
webhook workers, and reads the length of each of the five queues from Redis."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from devstack.processes import BIN, free_port, http_ok, wait_until
from devstack.stack import FLOWER_CONFIG, ROOT, flower_process
from shared.queueing import (
    DELIVER_WEBHOOK_TASK,
    MAINTENANCE_QUEUE,
    SWEEP_TASK,
    WEBHOOK_QUEUE,
    producer_app,
)
from tests.conftest import Account, Services
from tests.support.stack import RunningStack, start_stack
from tests.support.workers import worker_alive

pytestmark = pytest.mark.e2e

AUTH = ("ops", secrets.token_urlsafe(12))
QUEUES = ("promptq.maintenance", "jobs.high", "jobs.normal", "jobs.low", "webhooks")
WAIT_S = 60


@dataclass
class Watched:
    """A stack and the Flower over it, whose logs and state are in the stack's log_dir."""

    stack: RunningStack
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_flower(self) -> None:
        process = flower_process(self.port, self.stack.env, self.stack.log_dir)
        self.stack.processes["flower"] = process.start()
        wait_until(lambda: http_ok(f"{self.url}/healthcheck"), timeout=WAIT_S, what="Flower")


@pytest.fixture
def watched(clean: Services, tmp_path: Path) -> Iterator[Watched]:
    """A stack with a job worker and a webhook worker, and Flower over it."""
    extra = {"FLOWER_BASIC_AUTH": ":".join(AUTH)}
    stack = start_stack(
        clean.database_url, clean.redis_url, tmp_path, extra_env=extra, webhook_workers=1
    )
    try:
        running = Watched(stack, free_port())
        running.start_flower()
        yield running
    finally:
        stack.stop()
        # Messages no worker will take; the next test's `clean` would flush them too.
        redis.Redis.from_url(clean.redis_url).delete(*QUEUES)


def _get(url: str, auth: tuple[str, str] | None = AUTH) -> requests.Response:
    return requests.get(url, auth=auth, timeout=10)


def _job(priority: str, text: str) -> dict[str, object]:
    return {
        "model": "gpt-4o-mini",
        "priority": priority,
        "messages": [{"role": "user", "content": f"flower {priority} {text}"}],
    }


def _shows_task(flower: str, job_id: str) -> bool:
    """Flower's task list holds the run_job task of this job."""
    tasks = _get(f"{flower}/api/tasks").json()
    return any(job_id in str(task.get("args")) for task in tasks.values())


def test_flower_wants_credentials_and_shows_workers_tasks_and_queues(
    watched: Watched, make_account: Callable[[str], Account]
) -> None:
    """401 without credentials or with wrong ones, on the UI and the API; with them both
    workers are listed, a task it saw survives its restart, and each queue's length is the
    number of messages waiting in it."""
    stack, flower = watched.stack, watched.url
    for path in ("/", "/workers", "/api/workers", "/api/queues/length", "/broker"):
        assert _get(f"{flower}{path}", auth=None).status_code == 401, path
        assert _get(f"{flower}{path}", auth=("ops", "wrong")).status_code == 401, path

    names: set[str] = set()

    def both_listed() -> bool:
        names.update(_get(f"{flower}/api/workers?refresh=1").json())
        return {n.split("@")[0] for n in names} >= {"worker", "webhooks"}

    wait_until(both_listed, timeout=WAIT_S, what="Flower to list both workers")
    assert _get(f"{flower}/workers").ok

    # A task seen now is still shown by the next Flower (persistent state in FLOWER_DB). Flower
    # turns the workers' task events on every 5 s; a task that ran before goes unseen.
    worker = stack.processes["worker"]
    wait_until(
        lambda: "Events of group {task} enabled by remote" in worker.log_text(),
        timeout=WAIT_S,
        what="Flower to turn task events on",
    )
    key = make_account("flower").key
    done = stack.submit(key, _job("high", "seen"))["id"]
    assert stack.wait_final(key, done)["status"] == "succeeded"
    wait_until(lambda: _shows_task(flower, done), timeout=WAIT_S, what="Flower to see the task")
    stack.processes["flower"].stop()
    watched.start_flower()
    assert _shows_task(flower, done), "the restarted Flower forgot the task"

    # Flower names the queues it measures after the workers' active queues, as it last heard
    # them; under load one inspect round may miss a worker, and once they stop it never hears.
    def every_queue_heard() -> bool:
        workers = _get(f"{flower}/api/workers?refresh=1").json()
        heard = {q["name"] for info in workers.values() for q in info.get("active_queues", [])}
        return heard == set(QUEUES)

    wait_until(every_queue_heard, timeout=WAIT_S, what="Flower to hear every worker's queues")

    # Nothing consumes from here on, so every message stays where it was put.
    stack.processes["worker"].stop()
    stack.processes["webhooks"].stop()
    # A heartbeat as of a live worker: the API dispatches into the broker's window, not into
    # PostgreSQL's backlog.
    worker_alive(slots=8)
    expected = dict.fromkeys(QUEUES, 0)
    for priority, count in (("high", 1), ("normal", 2), ("low", 3)):
        for n in range(count):
            stack.submit(key, _job(priority, str(n)))
        expected[f"jobs.{priority}"] = count
    producer = producer_app()
    for name, queue, count in (
        (SWEEP_TASK, MAINTENANCE_QUEUE, 4),
        (DELIVER_WEBHOOK_TASK, WEBHOOK_QUEUE, 5),
    ):
        for _ in range(count):
            producer.send_task(name, args=[], queue=queue, exchange="", routing_key=queue)
        expected[queue] = count

    lengths: dict[str, int] = {}

    def counted() -> bool:
        answer = _get(f"{flower}/api/queues/length").json()["active_queues"]
        lengths.clear()
        lengths.update({q["name"]: q["messages"] for q in answer})
        return lengths == expected

    try:
        wait_until(counted, timeout=WAIT_S, what="Flower's queue lengths")
    except TimeoutError:
        assert lengths == expected
    broker_page = _get(f"{flower}/broker")
    assert broker_page.ok
    for queue in QUEUES:
        assert queue in broker_page.text


def test_flower_refuses_to_start_without_credentials(services: Services) -> None:
    """One line on stderr naming the setting, and a failing exit code, before it listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env |= {"REDIS_URL": services.redis_url, "FLOWER_BASIC_AUTH": ""}
    done = subprocess.run(
        [
            *(str(BIN / "celery"), "-A", "worker.celery_app", "flower"),
            *(f"--conf={FLOWER_CONFIG}", f"--port={free_port()}"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("flower: FLOWER_BASIC_AUTH is not set"), done.stderr
    assert "Traceback" not in done.stderr, done.stderr

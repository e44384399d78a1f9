"""`make dev` with DATABASE_URL / REDIS_URL unset: embedded PostgreSQL and Valkey come up, the
printed curl submits a job that a real worker runs, the `promptq` CLI finds the servers through
`.env`, Flower wants the printed credentials, a second start keeps the demo key, Ctrl-C stops
everything; a taken port stops it before anything starts."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devstack.__main__ import StartupFailed, _demo_key
from devstack.processes import BIN, free_port, refused, wait_until
from devstack.stack import ROOT
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

UNSET = (
    "DATABASE_URL",
    "REDIS_URL",
    "TEST_DATABASE_URL",
    "TEST_REDIS_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "FLOWER_BASIC_AUTH",
    "API_PORT",
    "SIM_PORT",
    "FLOWER_PORT",
)
USER_LINES = "# the developer's own\nLOG_LEVEL=INFO\n"


@dataclass
class Dev:
    """One `python -m devstack` run on fixed ports, data folder and env file."""

    tmp_path: Path
    api_port: int
    sim_port: int
    flower_port: int
    # The job worker's /metrics; the webhook worker's is the next port.
    metrics_port: int
    runs: int = 0
    popen: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.tmp_path / "data"

    @property
    def env_file(self) -> Path:
        return self.tmp_path / ".env"

    @property
    def out_path(self) -> Path:
        return self.tmp_path / f"dev-{self.runs}.out"

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in UNSET}

    def launch(self) -> subprocess.Popen[bytes]:
        self.runs += 1
        argv = [str(BIN / "python"), "-m", "devstack", "--data-dir", str(self.data_dir)]
        argv += ["--api-port", str(self.api_port), "--sim-port", str(self.sim_port)]
        argv += ["--flower-port", str(self.flower_port), "--env-file", str(self.env_file)]
        argv += ["--metrics-port", str(self.metrics_port)]
        with self.out_path.open("wb") as out:
            self.popen = subprocess.Popen(
                argv, cwd=ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )
        return self.popen

    def start(self) -> str:
        """Launch it and wait for its banner; the output so far."""
        popen = self.launch()
        wait_until(
            lambda: "Ctrl-C stops everything." in self.output() or popen.poll() is not None,
            timeout=120,
            what="make dev to print its banner",
        )
        assert popen.poll() is None, self.output()
        return self.output()

    def output(self) -> str:
        return self.out_path.read_text()

    def stop(self) -> int:
        """Ctrl-C; its exit code, once every port it used is closed."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGINT)
        code = self.popen.wait(timeout=90)
        for port in (self.api_port, self.sim_port, self.flower_port):
            assert refused(f"http://127.0.0.1:{port}/"), f"port {port} answers after Ctrl-C"
        assert not (self.data_dir / "postgres" / "postmaster.pid").exists(), "PostgreSQL runs"
        return code


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    running = Dev(tmp_path, free_port(), free_port(), free_port(), free_port())
    yield running
    if running.popen is not None and running.popen.poll() is None:
        running.popen.send_signal(signal.SIGINT)
        running.popen.wait(timeout=90)


def _banner_value(output: str, pattern: str) -> str:
    found = re.search(pattern, output, re.M)
    assert found, output
    return found.group(1)


def test_make_dev_on_embedded_services(dev: Dev) -> None:
    """The stack `make dev` starts on embedded servers serves the curl it prints; the CLI run
    from beside the env file reaches its database; Flower wants the printed credentials; the
    env file keeps the developer's lines and loses make dev's block at Ctrl-C; a second start
    prints the same demo key and Flower credentials."""
    dev.env_file.write_text(USER_LINES)
    output = dev.start()
    assert "Starting embedded PostgreSQL and Valkey" in output
    submit = _banner_value(output, r"^\s*(curl -s -X POST .*)$")
    poll = _banner_value(output, r"^\s*(curl -s http\S+/v1/jobs/<id> .*)$")
    key = _banner_value(output, r"Demo API key: (\S+) \(new\)")
    flower_auth = (
        _banner_value(output, r"Flower .*\(user (\S+),"),
        _banner_value(output, r"Flower .*, password (\S+)\)"),
    )

    # The CLI finds the embedded servers through the env file make dev wrote.
    written = dev.env_file.read_text()
    assert written.startswith(USER_LINES), written
    assert "DATABASE_URL=postgresql+psycopg://" in written and "REDIS_URL=redis://" in written
    created = subprocess.run(
        [str(BIN / "promptq"), "users", "create", "alice"],
        cwd=dev.tmp_path,
        env=dev.env(),
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"[0-9a-f-]{36}\n", created.stdout), created.stdout

    flower = f"http://127.0.0.1:{dev.flower_port}"
    assert requests.get(f"{flower}/api/workers", timeout=5).status_code == 401
    assert requests.get(f"{flower}/api/workers", auth=flower_auth, timeout=5).ok

    accepted = json.loads(subprocess.check_output(["bash", "-c", submit]))
    assert accepted["status"] == "queued"
    poll_cmd = poll.replace("<id>", accepted["id"])
    seen: dict[str, object] = {}

    def finished() -> bool:
        seen.update(json.loads(subprocess.check_output(["bash", "-c", poll_cmd])))
        return seen["status"] in ("succeeded", "failed")

    wait_until(finished, timeout=60, what="the printed job to finish")
    assert seen["status"] == "succeeded", seen
    # The metrics the banner names, the job's among them.
    for url in re.findall(r"(http://\S+/metrics)", _banner_value(output, r"^\s*Metrics (.*)$")):
        assert requests.get(url, timeout=5).ok, url
    worker_metrics = f"http://127.0.0.1:{dev.metrics_port}/metrics"
    assert 'promptq_jobs_finished_total{model="gpt-4o-mini",status="succeeded"} 1.0' in (
        requests.get(worker_metrics, timeout=5).text
    )
    assert "Simulated reply from gpt-4o-mini" in seen["result"]["content"]  # type: ignore[index]
    assert dev.stop() == 0, dev.output()
    assert dev.env_file.read_text() == USER_LINES

    again = dev.start()
    assert "Starting embedded PostgreSQL and Valkey" in again
    assert f"Demo API key: {key} (the same as last time)" in again
    assert f"(user {flower_auth[0]}, password {flower_auth[1]})" in again
    assert dev.stop() == 0, dev.output()


def test_make_dev_fails_at_once_on_a_taken_port(dev: Dev) -> None:
    """One line naming the port and how to choose another, before any server starts."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        dev.api_port = taken.getsockname()[1]
        began = time.monotonic()
        code = dev.launch().wait(timeout=30)
        took = time.monotonic() - began
    assert code == 1, dev.output()
    assert dev.output().splitlines() == [
        f"make dev: port {dev.api_port} (the API) is already in use; stop what listens there "
        f"or choose another port: make dev API_PORT={dev.api_port + 1}"
    ], dev.output()
    assert took < 15, f"took {took:.1f}s to refuse"
    assert not dev.data_dir.exists(), "something started before the port check"


def test_demo_key_is_kept_while_the_api_accepts_it(stack: RunningStack, tmp_path: Path) -> None:
    """A stored key the API refuses is replaced (the user is created if missing); a stored
    key it accepts is kept; an answer other than 200 or 401 stops make dev."""
    path = tmp_path / "demo-key"
    path.write_text("pq_not-a-key\n")
    first, kept = _demo_key(stack.api_url, stack.env, path)
    assert not kept and first != "pq_not-a-key" and path.read_text().strip() == first
    assert requests.get(
        f"{stack.api_url}/v1/models", headers={"Authorization": f"Bearer {first}"}, timeout=5
    ).ok
    assert _demo_key(stack.api_url, stack.env, path) == (first, True)

    listed = stack.cli("keys", "list", "demo").splitlines()
    key_id = next(line.split("\t")[0] for line in listed if line.split("\t")[1] == first[:10])
    stack.cli("keys", "revoke", key_id)
    # The API trusts a key it looked up for up to KEY_CACHE_S.
    replaced: list[tuple[str, bool]] = []

    def made_anew() -> bool:
        replaced.append(_demo_key(stack.api_url, stack.env, path))
        return not replaced[-1][1]

    wait_until(made_anew, timeout=15, what="the revoked demo key to be replaced")
    assert replaced[-1][0] != first

    # Not the API (404): nothing is known about the key, so make dev stops rather than guess.
    with pytest.raises(StartupFailed):
        _demo_key(stack.sim_url, stack.env, path)

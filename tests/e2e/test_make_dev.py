"""`make dev` with DATABASE_URL / REDIS_URL unset: embedded PostgreSQL and Valkey come up, the
printed curl submits a job that a real worker runs, and Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from devstack.processes import BIN, free_port, wait_until
from devstack.stack import ROOT

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
)


def _refused(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        return True
    return False


def test_make_dev_on_embedded_services(tmp_path: Path) -> None:
    """The stack `make dev` starts on embedded servers serves the curl it prints."""
    api_port, sim_port, flower_port = free_port(), free_port(), free_port()
    data_dir = tmp_path / "data"
    out_path = tmp_path / "dev.out"
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    with out_path.open("wb") as out:
        dev = subprocess.Popen(
            [
                *(str(BIN / "python"), "-m", "devstack", "--data-dir", str(data_dir)),
                *("--api-port", str(api_port), "--sim-port", str(sim_port)),
                *("--flower-port", str(flower_port)),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: "Ctrl-C stops everything." in out_path.read_text() or dev.poll() is not None,
            timeout=120,
            what="make dev to print its banner",
        )
        output = out_path.read_text()
        assert dev.poll() is None, output
        assert "Starting embedded PostgreSQL and Valkey" in output
        submit = re.search(r"^\s*(curl -s -X POST .*)$", output, re.M)
        poll = re.search(r"^\s*(curl -s http\S+/v1/jobs/<id> .*)$", output, re.M)
        assert submit and poll, output

        accepted = json.loads(subprocess.check_output(["bash", "-c", submit.group(1)]))
        assert accepted["status"] == "queued"
        poll_cmd = poll.group(1).replace("<id>", accepted["id"])
        seen: dict[str, object] = {}

        def finished() -> bool:
            seen.update(json.loads(subprocess.check_output(["bash", "-c", poll_cmd])))
            return seen["status"] in ("succeeded", "failed")

        wait_until(finished, timeout=60, what="the printed job to finish")
        assert seen["status"] == "succeeded", seen
        assert "Simulated reply from gpt-4o-mini" in seen["result"]["content"]  # type: ignore[index]
        assert requests.get(f"http://127.0.0.1:{flower_port}/healthcheck", timeout=5).ok
    finally:
        dev.send_signal(signal.SIGINT)
        code = dev.wait(timeout=90)
    assert code == 0, out_path.read_text()
    for url in (f"http://127.0.0.1:{p}/" for p in (api_port, sim_port, flower_port)):
        assert _refused(url), f"{url} still answers after Ctrl-C"
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "embedded PostgreSQL still runs"

"""Schemathesis fuzzes the API through the OpenAPI document it serves, on a real gunicorn over the
real PostgreSQL and Redis: no 5xx, every status, content type, header and body as documented,
schema-valid data accepted and invalid data refused, requests without a key refused.

FUZZ_MAX_EXAMPLES sets the examples per operation and phase (default 10: the quick run of
`make test`); FUZZ_MIN_REQUESTS the fewest requests the run must make (default 40); FUZZ_SEED
the seed (default 1, so a failure replays). `make fuzz` runs the big size (over 2,000 requests).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.processes import BIN, free_port, http_ok, wait_until
from devstack.stack import api_process
from tests.conftest import Account, Services

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))
MIN_REQUESTS = int(os.environ.get("FUZZ_MIN_REQUESTS", "40"))
SEED = os.environ.get("FUZZ_SEED", "1")
ADMIN_KEY = "pq_admin_" + secrets.token_urlsafe(16)
# gunicorn's access log: ... "GET /v1/models?x=1 HTTP/1.1" 200 512 "-" "schemathesis/4.32.5"


@dataclass(frozen=True)
class RunningApi:
    url: str
    log_path: Path


@pytest.fixture
def api(services: Services, tmp_path: Path) -> Iterator[RunningApi]:
    """gunicorn serving the API (no worker: nothing here waits for a job to run)."""
    port = free_port()
    env = {
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "LOG_JSON": "true",
        "ADMIN_API_KEY": ADMIN_KEY,
    }
    process = api_process(port, env, tmp_path / "logs").start()
    running = RunningApi(f"http://127.0.0.1:{port}", process.log_path)
    try:
        wait_until(lambda: http_ok(f"{running.url}/health"), timeout=30, what="the API")
        yield running
    finally:
        process.stop()


def _schemathesis(api: RunningApi, key: str, workdir: Path) -> tuple[dict[str, Any], str]:
    report_path = workdir / "schemathesis-report.json"
    done = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{api.url}/openapi.json",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            SEED,
            "--report",
            "json",
            "--report-json-path",
            str(report_path),
        ],
        cwd=workdir,
        env={**os.environ, "PROMPTQ_FUZZ_KEY": key, "PROMPTQ_FUZZ_ADMIN_KEY": ADMIN_KEY},
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(report_path.read_text()), done.stdout + done.stderr


def _requests_per_operation(log_path: Path, document: dict[str, Any]) -> Counter[str]:
    """What gunicorn answered to Schemathesis, counted by documented operation."""
    operations = [
        (method.upper(), re.compile("^" + re.sub(r"\{\w+\}", "[^/?]+", path) + r"(\?|$)"), path)
        for path, item in document["paths"].items()
        for method in item
    ]
    counts: Counter[str] = Counter()
    for line in log_path.read_text(errors="replace").splitlines():
        # gunicorn's access lines are JSON (api/gunicorn_logging.py); only Schemathesis's count.
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") != "http.access" or not str(entry.get("user_agent") or "").startswith(
            "schemathesis/"
        ):
            continue
        name = next(
            (
                f"{method} {path}"
                for method, pattern, path in operations
                if method == entry["method"] and pattern.match(entry["path"])
            ),
            "(not a documented operation)",
        )
        counts[name] += 1
    return counts


@pytest.mark.e2e
def test_fuzz_the_served_document(
    api: RunningApi, make_account: Callable[[str], Account], tmp_path: Path
) -> None:
    """Every generated request to every operation is answered as the document says it will be."""
    account = make_account("fuzz")
    document = requests.get(f"{api.url}/openapi.json", timeout=10).json()
    report, output = _schemathesis(api, account.key, tmp_path)
    per_operation = _requests_per_operation(api.log_path, document)
    print(
        f"fuzz: {report['test_cases']['generated']} test cases generated, "
        f"{per_operation.total()} requests answered in {report['running_time']:.1f}s, "
        f"seed {report['seed']}: {dict(per_operation)}"
    )
    assert report["failures"] == [] and report["errors"] == [], output
    assert report["exit_code"] == 0, output
    operations = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item}
    assert report["operations"]["tested"] == report["operations"]["total"] == len(operations)
    assert {op for op in operations if per_operation[op] == 0} == set()
    assert report["test_cases"]["generated"] >= MIN_REQUESTS
    assert per_operation.total() >= MIN_REQUESTS

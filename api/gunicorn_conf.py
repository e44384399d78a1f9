"""gunicorn's configuration for the API (`gunicorn --config python:api.gunicorn_conf ...`).

- Metrics: every worker process writes its counters to files in one directory, emptied when
  gunicorn starts and pruned of a process when it exits, so a scrape of any process sums all
  (prometheus_client's multiprocess mode; the variable must be set before it is imported).
- Logs: gunicorn's error and access lines in the same JSON as the app's (LOG_JSON).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from shared.settings import get_settings

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_settings = get_settings()
_metrics_dir = Path(
    _settings.prometheus_multiproc_dir
    or os.environ.get(_MULTIPROC_ENV)
    or tempfile.mkdtemp(prefix="promptq-metrics-")
)
os.environ[_MULTIPROC_ENV] = str(_metrics_dir)

logger_class = "api.gunicorn_logging.JsonGunicornLogger"


def on_starting(server: Any) -> None:
    # Counters of a previous run would be summed into this one's. Only prometheus_client's own
    # files go: the folder is the operator's choice and may hold anything else.
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

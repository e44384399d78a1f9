"""gunicorn's configuration for the API (`gunicorn --config python:api.gunicorn_conf ...`).

- Metrics: every worker process writes its counters to files in one directory, emptied when
  gunicorn starts and pruned of a process when it exits, so a scrape of any process sums all
  (prometheus_client's multiprocess mode; the variable must be set before it is imported).
- Logs: gunicorn's error and access lines in the same JSON as the app's (LOG_JSON).
- Shutdown: a stopping worker answers its parked long-polls at once; gunicorn would otherwise cut
  them at --graceful-timeout, and their clients would see a broken connection, not the job.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
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
# How soon a stopping worker notices it is stopping.
_STOP_POLL_S = 0.2


def on_starting(server: Any) -> None:
    # Counters of a previous run would be summed into this one's. Only prometheus_client's own
    # files go: the folder is the operator's choice and may hold anything else.
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    # gunicorn's SIGTERM handler only clears `worker.alive`; a thread (a greenlet under gevent)
    # watches it, since no hook runs when a graceful stop begins.
    from api.job_waits import get_job_waits

    def answer_waiters_at_stop() -> None:
        while worker.alive:
            time.sleep(_STOP_POLL_S)
        get_job_waits().close()

    threading.Thread(target=answer_waiters_at_stop, name="long-poll-stop", daemon=True).start()

"""A job worker's heartbeat thread (shared/worker_heartbeats.py): every third of the readiness
bound, so one missed beat does not make the API unready."""

from __future__ import annotations

import threading

from shared import worker_heartbeats
from shared.logging import get_logger
from shared.redis_client import get_redis
from shared.settings import Settings

log = get_logger(__name__)


class Heartbeat:
    def __init__(self, settings: Settings, hostname: str, slots: int) -> None:
        self._interval_s = settings.ready_worker_heartbeat_s / 3
        self._hostname = hostname
        self._slots = slots
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        try:
            worker_heartbeats.gone(get_redis(), self._hostname)
        except Exception:
            log.warning("heartbeat.goodbye_failed", exc_info=True)

    def _run(self) -> None:
        while True:
            try:
                worker_heartbeats.beat(
                    get_redis(), self._hostname, self._slots, self._interval_s * 3
                )
            except Exception as exc:
                # Redis away: the next beat says it again; readiness meanwhile says why.
                log.warning("heartbeat.failed", error=repr(exc))
            if self._stop.wait(self._interval_s):
                return

"""Long-polls (GET /v1/jobs/<id>?wait=N): one Redis subscriber per API process wakes the requests
waiting on a job as soon as it is announced final (shared/job_announcements.py).

A waiter registers before it reads the job, so an announcement between its read and its wait is
not missed, holds no database connection while it waits, and reads again only when woken or at
its deadline. Announcements sent while the subscriber was not subscribed (Redis restarting) are
lost, so every (re)subscription wakes every waiter to re-read: a few extra queries, no lost wake-up.
The subscriber is a thread, a greenlet under gunicorn's gevent worker (the API's serving model:
a waiter costs a greenlet, not one of a few threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache

import redis

from api import metrics
from shared import job_announcements
from shared.logging import get_logger
from shared.models import FINAL_STATUSES, Job
from shared.redis_client import get_redis

log = get_logger(__name__)
# How long the subscriber blocks on its socket per read, and waits before resubscribing.
READ_S = 5.0
RESUBSCRIBE_S = 0.5


class JobWaits:
    """The waiters of one process, by job id, and the subscriber that wakes them."""

    def __init__(self, client: Callable[[], redis.Redis]) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}
        self._subscriber: threading.Thread | None = None
        # Every (re)subscription, counted: how a test tells a reconnect from a wake-up.
        self.subscriptions = 0
        # Set when the process stops: waiters answer at once rather than be cut at its exit.
        self.closing = False

    @contextmanager
    def watching(self, job_id: str) -> Iterator[threading.Event]:
        """An event set whenever `job_id` is announced final (or announcements may have been
        missed) while the block runs."""
        woken = threading.Event()
        with self._lock:
            self._waiting.setdefault(job_id, set()).add(woken)
            if self._subscriber is None:
                self._subscriber = threading.Thread(
                    target=self._subscribe_forever, name="job-waits", daemon=True
                )
                self._subscriber.start()
        try:
            yield woken
        finally:
            with self._lock:
                events = self._waiting.get(job_id)
                if events is not None:
                    events.discard(woken)
                    if not events:
                        del self._waiting[job_id]

    def close(self) -> None:
        """Answer every waiter now, and every later one at once (the process is stopping)."""
        self.closing = True
        self._wake(None)

    def waiting(self) -> int:
        with self._lock:
            return sum(len(events) for events in self._waiting.values())

    def _wake(self, job_ids: list[str] | None) -> None:
        with self._lock:
            if job_ids is None:
                events = [e for waiting in self._waiting.values() for e in waiting]
            else:
                events = [e for job_id in job_ids for e in self._waiting.get(job_id, ())]
        for event in events:
            event.set()

    def _subscribe_forever(self) -> None:
        while True:
            try:
                self._subscribe_once()
            except (redis.RedisError, OSError) as error:
                log.warning("job_waits.subscriber_lost", error=str(error))
            self._wake(None)
            time.sleep(RESUBSCRIBE_S)

    def _subscribe_once(self) -> None:
        client = self._client()
        with client.pubsub() as pubsub:
            pubsub.subscribe(job_announcements.channel(client))
            while True:
                message = pubsub.get_message(timeout=READ_S)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self.subscriptions += 1
                    self._wake(None)
                elif message["type"] == "message":
                    self._wake(job_announcements.decode(message["data"]))


@lru_cache(maxsize=1)
def get_job_waits() -> JobWaits:
    return JobWaits(get_redis)


def wait_until_final(
    read: Callable[[], Job], release: Callable[[], None], job_id: str, wait_s: float
) -> Job:
    """The job once final, or as it is after `wait_s` seconds. `read` loads it afresh (it raises
    for a job the caller may not see); `release` gives the database connection back before the
    wait."""
    deadline = time.monotonic() + wait_s
    waits = get_job_waits()
    with metrics.long_polls_waiting.track_inprogress(), waits.watching(job_id) as woken:
        job = read()
        while job.status not in FINAL_STATUSES:
            release()
            left = deadline - time.monotonic()
            if left <= 0 or waits.closing:
                break
            if woken.wait(left):
                woken.clear()
            job = read()
    return job

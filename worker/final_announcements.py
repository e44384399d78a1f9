"""Announces the jobs this worker finished (shared/job_announcements.py) from a thread of its own
(worker/background_batches.py), so a final write costs the task no Redis round trip. An
announcement lost with the process only delays a long-poll to its deadline, where it re-reads."""

from __future__ import annotations

from functools import lru_cache

from shared import job_announcements
from shared.redis_client import get_redis
from worker.background_batches import BackgroundBatches

# At most this many job ids per PUBLISH (about 37 bytes each).
BATCH = 200


def _publish(job_ids: list[str]) -> None:
    client = get_redis()
    client.publish(job_announcements.channel(client), job_announcements.encode(job_ids))


@lru_cache(maxsize=1)
def get_final_announcer() -> BackgroundBatches:
    return BackgroundBatches("final-announcements", _publish, BATCH)

"""Unmarks the jobs whose messages this worker received (shared/outbox.py), from a thread of its
own, many jobs to one ZREM (worker/background_batches.py).

A received message no longer waits in the broker, so its job must lose its outbox mark: then the
sweeper republishes it if the worker dies before claiming it. Celery announces receipts on its
consumer's event loop, and a Redis round trip there, once per message, held up every other
message and the acks. Receipts still in memory when the process dies, and those of a round trip
that failed, leave marks behind; the sweeper recognises those by their age.
"""

from __future__ import annotations

from functools import lru_cache

from shared import outbox
from worker.background_batches import BackgroundBatches

# At most this many job ids per ZREM.
BATCH = 500


def receipt_unmarker() -> BackgroundBatches:
    return BackgroundBatches("receipt-unmarks", outbox.forget, BATCH)


@lru_cache(maxsize=1)
def get_receipt_unmarker() -> BackgroundBatches:
    return receipt_unmarker()

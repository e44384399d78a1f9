"""The writer of one streamed job's live events (shared/token_streams.py): the answer's text as
the model sends it, the word that an attempt's text is void, and the end of each run.

Watching is a side channel: the job's result, cost and attempts never depend on it. A Redis
failure stops the writing for the rest of the run (one slow write, not one per token) and is
logged; the job goes on and its result event still comes from Postgres.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis

from shared import token_streams
from shared.logging import get_logger
from shared.settings import Settings
from worker.providers.base import ProviderError

log = get_logger(__name__)
# What a later run says when the run before it died mid-answer (its worker lost the lease).
WORKER_LOST = "worker_lost"


class TokenStream:
    def __init__(self, client: redis.Redis, job_id: uuid.UUID, settings: Settings) -> None:
        self._client = client
        self._key = token_streams.stream_key(job_id)
        self._maxlen = settings.token_stream_maxlen
        self._ttl_s = settings.token_stream_ttl_s
        self._broken = False

    def text(self, piece: str) -> None:
        self._add(token_streams.TOKEN, {"text": piece})

    def retry(self, model: str, error: ProviderError) -> None:
        self._add(token_streams.RETRY, {"model": model, "error": error.code})

    def fallback(self, failed: str, next_model: str, error: ProviderError) -> None:
        self._add(token_streams.FALLBACK, {"from": failed, "to": next_model, "error": error.code})

    def ended(self) -> None:
        self._add(token_streams.ENDED, {})

    def resume(self, model: str) -> None:
        """At the start of a redelivered run: if the stream stops at text, the run before died
        mid-answer, and its text is void before this run's comes."""
        try:
            last = self._client.xrevrange(self._key, count=1)
        except redis.RedisError:
            self._fail("resume")
            return
        if last and token_streams.decode(last[0][1])[0] == token_streams.TOKEN:
            self._add(token_streams.RETRY, {"model": model, "error": WORKER_LOST})

    def _add(self, kind: str, data: dict[str, Any]) -> None:
        if self._broken:
            return
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(
            self._key, token_streams.encode(kind, data), maxlen=self._maxlen, approximate=True
        )
        pipe.expire(self._key, self._ttl_s)
        try:
            pipe.execute()
        except redis.RedisError:
            self._fail(kind)

    def _fail(self, what: str) -> None:
        self._broken = True
        log.warning("token_stream.write_failed", what=what, exc_info=True)

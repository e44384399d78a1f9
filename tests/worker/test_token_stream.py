"""The writer of a streamed job's events, on a real Redis: entries as the relay reads them, a
bounded length and a lifetime, the void mark a redelivered run leaves after a dead run's text,
and a Redis failure that never reaches the job."""

from __future__ import annotations

import json
import socket
import time
import uuid

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared import token_streams
from shared.settings import Settings
from tests.conftest import Services
from worker.providers.base import ServerError
from worker.token_stream import WORKER_LOST, TokenStream


def _entries(client: redis.Redis, job_id: uuid.UUID) -> list[tuple[str, dict[str, object]]]:
    rows = client.xrange(token_streams.stream_key(job_id))
    decoded = (token_streams.decode(fields) for _, fields in rows)
    return [(kind, json.loads(data)) for kind, data in decoded]


def test_events_are_appended_in_order_with_a_lifetime(clean: Services) -> None:
    """Text, a retry, a fallback and the end of a run, in order; the stream expires after
    TOKEN_STREAM_TTL_S."""
    client = redis.Redis.from_url(clean.redis_url)
    job_id = uuid.uuid4()
    stream = TokenStream(client, job_id, Settings(token_stream_ttl_s=120))
    stream.text("Hel")
    stream.retry("gpt-4o-mini", ServerError("boom"))
    stream.text("Hello")
    stream.fallback("gpt-4o-mini", "claude-haiku-4-5", ServerError("boom"))
    stream.ended()
    assert _entries(client, job_id) == [
        ("token", {"text": "Hel"}),
        ("retry", {"model": "gpt-4o-mini", "error": "server_error"}),
        ("token", {"text": "Hello"}),
        ("fallback", {"from": "gpt-4o-mini", "to": "claude-haiku-4-5", "error": "server_error"}),
        ("ended", {}),
    ]
    assert 0 < client.ttl(token_streams.stream_key(job_id)) <= 120


def test_the_stream_keeps_about_maxlen_entries(clean: Services) -> None:
    """MAXLEN ~ trims the oldest entries, so one long answer cannot grow without bound."""
    client = redis.Redis.from_url(clean.redis_url)
    job_id = uuid.uuid4()
    stream = TokenStream(client, job_id, Settings(token_stream_maxlen=100))
    for n in range(1000):
        stream.text(str(n))
    length = client.xlen(token_streams.stream_key(job_id))
    # Approximate trimming removes whole nodes: a little over the cap, never the thousand.
    assert 100 <= length < 300
    assert _entries(client, job_id)[-1] == ("token", {"text": "999"})


def test_a_redelivered_run_voids_a_dead_runs_text(clean: Services) -> None:
    """A run that starts after a run died mid-answer marks the text so far void; after a run
    that ended cleanly (or one that wrote nothing) it adds nothing."""
    client = redis.Redis.from_url(clean.redis_url)
    died, ended, empty = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    TokenStream(client, died, Settings()).text("half an ans")
    TokenStream(client, died, Settings()).resume("gpt-4o-mini")
    finished = TokenStream(client, ended, Settings())
    finished.text("all")
    finished.ended()
    TokenStream(client, ended, Settings()).resume("gpt-4o-mini")
    TokenStream(client, empty, Settings()).resume("gpt-4o-mini")
    assert _entries(client, died)[-1] == ("retry", {"model": "gpt-4o-mini", "error": WORKER_LOST})
    assert _entries(client, ended)[-1] == ("ended", {})
    assert _entries(client, empty) == []


def test_a_redis_failure_costs_one_slow_write_and_never_raises() -> None:
    """Against a Redis that never answers, the first write waits out the socket timeout and
    is swallowed; the rest of the run writes nothing and so waits for nothing."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        # No client-side retries: one write is one wait of the socket timeout.
        client = redis.Redis(
            port=silent.getsockname()[1], socket_timeout=0.3, retry=Retry(NoBackoff(), 0)
        )
        stream = TokenStream(client, uuid.uuid4(), Settings())
        started = time.monotonic()
        stream.text("lost")
        first = time.monotonic()
        for _ in range(10):
            stream.text("lost too")
        stream.ended()
        rest = time.monotonic()
    assert first - started >= 0.3
    assert rest - first < 0.1

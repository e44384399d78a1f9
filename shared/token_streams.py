"""A streamed job's live events in Redis, as the worker writes them and the API relays them.

One Redis stream per job, under `promptq:tokens:<job id>`. Each entry has a `kind` and a JSON
`data` field:

    token     {"text": "..."}                        a piece of the answer, as the model sent it
    retry     {"model": "...", "error": "<code>"}    the text so far is void; `model` is tried
                                                     again (error: why the last attempt failed)
    fallback  {"from": "...", "to": "...",           the text so far is void; the next model
               "error": "<code>"}                    answers instead
    ended     {}                                     a run of the job ended (finished,
                                                     requeued or abandoned): look at the job

The first three are relayed to clients as Server-Sent Events of the same names; `ended` only
tells the relay to read the job. Postgres stays the truth: the stream is bounded (MAXLEN ~),
expires TOKEN_STREAM_TTL_S after its last entry, and losing it loses no result.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

PREFIX = "promptq:tokens:"
TOKEN = "token"
RETRY = "retry"
FALLBACK = "fallback"
ENDED = "ended"
# The kinds clients see, as SSE event names.
RELAYED = frozenset({TOKEN, RETRY, FALLBACK})


def stream_key(job_id: uuid.UUID | str) -> str:
    return f"{PREFIX}{job_id}"


def encode(kind: str, data: dict[str, Any]) -> dict[str, str]:
    """The fields of one entry."""
    return {"kind": kind, "data": json.dumps(data, separators=(",", ":"), ensure_ascii=False)}


def decode(fields: dict[bytes, bytes]) -> tuple[str, str]:
    """An entry's kind and its data, still JSON text (the relay sends it on as it is)."""
    return fields[b"kind"].decode(), fields[b"data"].decode()

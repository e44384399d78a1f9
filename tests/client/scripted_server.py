"""A tiny HTTP server answering from a script, recording every request: lets unit tests see what
the client sends and how it reacts to 429/503 answers, without a promptq stack."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()
    # Sent as it is (each piece flushed on its own) instead of `body` as JSON.
    raw: tuple[str, ...] | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class Seen:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    answers: list[Answer]
    seen: list[Seen] = field(default_factory=list)


@contextmanager
def scripted(answers: Iterable[Answer]) -> Iterator[tuple[str, Script]]:
    """A server on 127.0.0.1 giving `answers` in order (the last one again once used up)."""
    script = Script(list(answers))
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        with lock:
            index = min(len(script.seen), len(script.answers) - 1)
            script.seen.append(
                Seen(
                    time.monotonic(),
                    request.method,
                    request.full_path.rstrip("?"),
                    {k.lower(): v for k, v in request.headers.items()},
                    request.get_data(),
                )
            )
        answer = script.answers[index]
        response = Response(
            json.dumps(answer.body) if answer.raw is None else iter(answer.raw),
            answer.status,
            headers=list(answer.headers),
            content_type=answer.content_type,
        )
        return response(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", script
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()

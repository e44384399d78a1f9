"""A webhook receiver on a real socket for in-process tests: it records every request and
answers with whatever the test set last; `verifies` checks a recorded request with both the
official Standard Webhooks library and promptq's own helper."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import standardwebhooks
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from shared.webhook_signature import verify

# Loopback receivers are allowed; three attempts 0 s, 30 s and 120 s apart, without jitter, so
# every scheduled time is exact.
WEBHOOK_ENV = {
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOK_SCHEDULE_S": "0,30,120",
    "WEBHOOK_JITTER": "0",
    "WEBHOOK_TIMEOUT_S": "5",
    "WEBHOOK_LEASE_S": "30",
    "PUBLIC_BASE_URL": "http://localhost",
}


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


class Receiver:
    """A webhook receiver on a real socket: records every request and answers each with the
    answer the test set last (200 "ok" until then)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answer: tuple[int, dict[str, str], str] = (200, {}, "ok")
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def url(self) -> str:
        return f"{self.base}/hook"

    def answer(self, status: int, headers: dict[str, str] | None = None, body: str = "") -> None:
        with self._lock:
            self._answer = (status, headers or {}, body)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        received = Received(
            path=request.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=request.get_data(),
        )
        with self._lock:
            self.received.append(received)
            status, headers, body = self._answer
        return Response(body, status=status, headers=headers)(environ, start_response)


def verifies(secret: str, request: Received) -> bool:
    """The official Standard Webhooks library and promptq's verify both accept the request."""
    try:
        standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    except standardwebhooks.WebhookVerificationError:
        return False
    verify(secret, request.headers, request.body)
    return True

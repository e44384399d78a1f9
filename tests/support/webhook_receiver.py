"""A real HTTP webhook receiver for end-to-end tests: a threaded werkzeug server on 127.0.0.1
whose answers are scripted per path, and which checks every delivery it gets with the official
Standard Webhooks library, as a customer's receiver would.

    receiver = WebhookReceiver()
    route = receiver.route("/hooks", [Reply(500), Reply(500)], then=Reply(200))
    ... register route.url, then: route.secret = <the endpoint's whsec_ secret>
    receiver.close()

register_endpoint() and deliveries() are the API calls around it: register a route as an
endpoint of a running stack, and read back what promptq says it delivered.

Each route answers its n-th request with replies[n] (or, with per_message=True, the n-th
request carrying the same webhook-id gets replies[n]), and `then` once the list is used up.
A Reply with hang_s holds the request that long before answering; release() ends every hold
at once (and makes later holds return at once), so a test decides when a receiver recovers.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from shared.webhook_events import EVENT_TYPES
from tests.support.stack import RunningStack

# Long enough to outlast any webhook timeout a test uses; release() cuts it short.
HOLD_S = 60.0
ALL_EVENTS: tuple[str, ...] = EVENT_TYPES


@dataclass(frozen=True)
class Reply:
    """One scripted answer: hold the request for hang_s (0: answer at once), then answer."""

    status: int = 200
    body: str = "ok"
    headers: tuple[tuple[str, str], ...] = ()
    hang_s: float = 0.0


OK = Reply()
HANG = Reply(hang_s=HOLD_S)


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, "moved", (("Location", location),))


@dataclass(frozen=True)
class Delivery:
    """One request as it arrived: its webhook-id, whether its signature verified with the
    route's secret (error says why not), the body and its parsed JSON (None if not JSON)."""

    path: str
    webhook_id: str | None
    verified: bool
    error: str | None
    body: bytes
    payload: Any
    headers: dict[str, str]


@dataclass
class Route:
    """A path of the receiver, its script, its secret and what it got."""

    receiver: WebhookReceiver
    path: str
    replies: Sequence[Reply]
    then: Reply
    per_message: bool
    secret: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    answered: int = 0
    _seen: Counter[str | None] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        return f"{self.receiver.base_url}{self.path}"

    def ids(self) -> list[str | None]:
        """The webhook-id of every request, in the order they arrived."""
        with self.receiver.lock:
            return [d.webhook_id for d in self.deliveries]

    def received(self) -> list[Delivery]:
        with self.receiver.lock:
            return list(self.deliveries)

    def answered_count(self) -> int:
        """Requests answered (a held one counts once its hold ended)."""
        with self.receiver.lock:
            return self.answered

    def _next_reply(self, webhook_id: str | None) -> Reply:
        # Called with the receiver's lock held.
        index = self._seen[webhook_id] if self.per_message else len(self.deliveries)
        self._seen[webhook_id] += 1
        return self.replies[index] if index < len(self.replies) else self.then


class WebhookReceiver:
    """The server and its routes; requests to an unknown path get 404 and are recorded too."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.routes: dict[str, Route] = {}
        self.unrouted: list[str] = []
        self._released = threading.Event()
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        # A short poll interval keeps close() (and so each test's teardown) quick.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def route(
        self,
        path: str,
        replies: Iterable[Reply] = (),
        *,
        then: Reply = OK,
        per_message: bool = False,
        secret: str | None = None,
    ) -> Route:
        route = Route(self, path, tuple(replies), then, per_message, secret)
        with self.lock:
            self.routes[path] = route
        return route

    def release(self) -> None:
        """End every hold now and skip any later one."""
        self._released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self._thread.join(5)
        self.server.server_close()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self.lock:
            route = self.routes.get(request.path)
            if route is None:
                self.unrouted.append(request.path)
                return Response("no such route", 404)(environ, start_response)
            webhook_id = headers.get("webhook-id")
            reply = route._next_reply(webhook_id)
            route.deliveries.append(_check(route, webhook_id, body, headers))
        if reply.hang_s > 0:
            self._released.wait(reply.hang_s)
        with self.lock:
            route.answered += 1
        response = Response(reply.body, reply.status, headers=list(reply.headers))
        return response(environ, start_response)


def _check(route: Route, webhook_id: str | None, body: bytes, headers: dict[str, str]) -> Delivery:
    """Verify with the official library, exactly as a receiver following the spec would."""
    verified, error, payload = False, None, None
    if route.secret is None:
        error = "the route has no secret to verify with"
    else:
        try:
            payload = Webhook(route.secret).verify(body, headers)
            verified = True
        # A malformed signature header or body makes the library raise ValueError instead.
        except (WebhookVerificationError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
    if payload is None:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
    return Delivery(route.path, webhook_id, verified, error, body, payload, headers)


def register_endpoint(
    stack: RunningStack, key: str, route: Route, event_types: Sequence[str] = ALL_EVENTS
) -> str:
    """Register `route` as a webhook endpoint of `key`'s user (POST /v1/webhooks) and give it
    the secret from the 201; the endpoint's id."""
    response = requests.post(
        f"{stack.api_url}/v1/webhooks",
        json={"url": route.url, "event_types": list(event_types)},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    route.secret = response.json()["secret"]
    return response.json()["id"]


def deliveries(stack: RunningStack, key: str, endpoint_id: str) -> list[dict[str, Any]]:
    """GET /v1/webhooks/<id>/deliveries: the endpoint's messages, newest first, with attempts."""
    return stack.get(key, f"/v1/webhooks/{endpoint_id}/deliveries?limit=100")["data"]

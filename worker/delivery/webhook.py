"""One webhook attempt: sign the message, POST it through the SSRF-guarded connection, and
classify the answer. Success is a 2xx within the timeout; nothing else is, redirects included."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpcore2

from shared.errors import UrlNotAllowedError
from shared.repositories.webhook_attempt_results import AttemptReport
from shared.repositories.webhook_delivery_leases import ClaimedAttempt
from shared.ssrf import TargetPolicy, UnresolvableHostError
from shared.webhook_signature import sign_headers
from worker.delivery.guarded_backend import GuardedBackend

# Enough of the receiver's answer for its owner to see why it refused, not a copy of its page.
RESPONSE_BODY_LIMIT = 2048
USER_AGENT = "promptq-webhooks/1"


def deliver(attempt: ClaimedAttempt, policy: TargetPolicy, timeout_s: float) -> AttemptReport:
    """Make the attempt; never raises for anything the receiver or the network does."""
    body = attempt.body.encode()
    headers = {
        # Given, not left to httpcore2, which drops an IPv6 literal's brackets.
        "host": urlsplit(attempt.url).netloc,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        # Signed now, not when the message was made: receivers refuse stale timestamps, and a
        # retry may come a day later.
        **sign_headers(attempt.secrets, attempt.message_id, int(time.time()), body),
    }
    if attempt.request_id is not None:
        # The submission's id, so a receiver's logs meet the client's and promptq's.
        headers["x-request-id"] = attempt.request_id
    started = time.monotonic()
    backend = GuardedBackend(policy, deadline=started + timeout_s)
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)

    def failed(code: str, message: str) -> AttemptReport:
        return AttemptReport(
            succeeded=False,
            latency_ms=_elapsed_ms(started),
            peer=backend.peer,
            error_code=code,
            error_message=message,
        )

    try:
        with (
            httpcore2.ConnectionPool(network_backend=backend, retries=0, max_connections=1) as pool,
            pool.stream(
                "POST",
                attempt.url,
                headers=list(headers.items()),
                content=body,
                extensions={"timeout": timeouts},
            ) as response,
        ):
            start_of_body = _read_start(response)
    except UrlNotAllowedError as exc:
        return failed("url_not_allowed", exc.message)
    except UnresolvableHostError as exc:
        return failed("dns_error", f"Could not resolve the host: {exc}")
    except httpcore2.TimeoutException:
        return failed("timeout", f"No complete answer within {timeout_s:g} s.")
    except (httpcore2.NetworkError, httpcore2.ProtocolError, httpcore2.UnsupportedProtocol) as exc:
        return failed("connection_error", f"{type(exc).__name__}: {exc}")
    return _classify(response, start_of_body, _elapsed_ms(started), backend.peer)


def _read_start(response: httpcore2.Response) -> str:
    """The first RESPONSE_BODY_LIMIT bytes of the answer; the rest is not read (leaving the
    context closes the connection)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_stream():
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_BODY_LIMIT:
            break
    return b"".join(chunks)[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace")


def _classify(
    response: httpcore2.Response, body: str, latency_ms: int, peer: str | None
) -> AttemptReport:
    status = response.status
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
    if 200 <= status < 300:
        return AttemptReport(
            succeeded=True, latency_ms=latency_ms, status_code=status, peer=peer, response_body=body
        )
    if 300 <= status < 400:
        code = "redirect"
        message = (
            f"The receiver answered {status} (to {headers.get('location', 'nowhere')}); "
            "redirects are not followed, so register the final URL."
        )
    elif status == 410:
        code, message = "gone", "The receiver answered 410 Gone."
    else:
        code, message = "http_status", f"The receiver answered {status}."
    return AttemptReport(
        succeeded=False,
        latency_ms=latency_ms,
        status_code=status,
        peer=peer,
        error_code=code,
        error_message=message,
        response_body=body,
        retry_after_s=_retry_after(headers.get("retry-after")),
        gone=status == 410,
    )


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

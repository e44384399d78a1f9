"""HTTP to the API, with the client's retry rules in one place.

Retried: 429 and 503 answers (refusals that wrote nothing), after the `Retry-After` they carry;
and a connection that failed or broke before an answer, but only for requests that are safe to
send twice: reads, and submissions that carry an Idempotency-Key (the same key on every try, so
the server returns the first job instead of making a second). Both are bounded by a number of
attempts and by a total time: a `Retry-After` longer than the time left raises at once rather
than sleeping past the caller's patience."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from promptq.client.errors import APIConnectionError, APIError, MissingApiKey

DEFAULT_URL = "http://localhost:8000"
USER_AGENT = "promptq-client/0.1"
# Statuses whose answers mean "nothing was done, try later".
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries: at most `max_attempts` sends of one request within
    `max_total_s` seconds. Without a `Retry-After`, waits grow from `backoff_s` by doubling up to
    `max_backoff_s`."""

    max_attempts: int = 5
    max_total_s: float = 60.0
    backoff_s: float = 0.25
    max_backoff_s: float = 5.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))


NO_RETRIES = RetryPolicy(max_attempts=1)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        # An HTTP date instead of seconds: promptq never sends one; treat it as unknown.
        return None


def error_from(response: requests.Response) -> APIError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return APIError.build(response.status_code, body, _retry_after(response))


class Transport:
    """One `requests.Session` to one API with one key. Like the session, it is not meant to be
    shared by threads at once: give each thread a Client of its own."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy = RetryPolicy(),
        session: requests.Session | None = None,
    ) -> None:
        if not api_key:
            raise MissingApiKey("no API key given, and PROMPTQ_KEY is not set")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry
        self.session = session or requests.Session()
        # PROMPTQ_URL names the API; an HTTP(S)_PROXY meant for the internet should not
        # silently sit between a client and a gateway on the local network.
        self.session.trust_env = False
        self.session.headers.update(
            {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}
        )

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        resend_on_disconnect: bool | None = None,
        stream: bool = False,
        retry: RetryPolicy | None = None,
        read_timeout_extra: float = 0.0,
    ) -> requests.Response:
        """Send until a non-retryable answer; return it if 2xx, raise its APIError otherwise.
        `resend_on_disconnect` defaults to true for GET only; `read_timeout_extra` is added to
        the read timeout, for an answer the server holds back on purpose (a long-poll)."""
        policy = retry or self.retry
        if resend_on_disconnect is None:
            resend_on_disconnect = method == "GET"
        url = f"{self.base_url}{path}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        deadline = time.monotonic() + policy.max_total_s
        attempt = 0
        while True:
            attempt += 1
            left = deadline - time.monotonic()
            try:
                response = self.session.request(
                    method,
                    url,
                    json=json,
                    params=query,
                    headers=dict(headers or {}),
                    timeout=self._timeout(read_timeout_extra),
                    stream=stream,
                )
            except requests.RequestException as exc:
                wait = policy.backoff(attempt)
                if not resend_on_disconnect or attempt >= policy.max_attempts or wait > left:
                    raise APIConnectionError(f"{method} {url}: {_reason(exc)}") from exc
                time.sleep(wait)
                continue
            if response.ok:
                return response
            error = error_from(response)
            response.close()
            if response.status_code not in RETRY_STATUSES or attempt >= policy.max_attempts:
                raise error
            wait = error.retry_after if error.retry_after is not None else policy.backoff(attempt)
            if wait > deadline - time.monotonic():
                raise error
            time.sleep(wait)

    def _timeout(self, extra: float) -> float | tuple[float, float]:
        if not extra:
            return self.timeout
        connect, read = self.timeout if isinstance(self.timeout, tuple) else (self.timeout,) * 2
        return connect, read + extra

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return None if response.status_code == 204 or not response.content else response.json()

    def lines(self, path: str, *, keep_blank: bool = False, **kwargs: Any) -> Iterator[bytes]:
        """The lines of a streamed answer, read as they arrive: the non-empty ones (JSON Lines),
        or with `keep_blank` all of them (Server-Sent Events end each event with a blank)."""
        response = self.request("GET", path, stream=True, **kwargs)
        try:
            for line in response.iter_lines():
                if line or keep_blank:
                    yield line
        except requests.RequestException as exc:
            raise APIConnectionError(f"GET {path}: {_reason(exc)}") from exc
        finally:
            response.close()


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause, on one line: requests wraps urllib3 wraps the socket error."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    text = str(inner) or type(inner).__name__
    return " ".join(text.split())

"""`Client`: the synchronous promptq client.

`Client()` takes the API's address from PROMPTQ_URL and the key from PROMPTQ_KEY; `submit` queues
a job, `wait` returns it once final, and `client.batches` and `client.webhooks` hold the rest. Use
it as a context manager to close its connections at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import requests

from promptq.client.batches import Batches
from promptq.client.models import Attempt, Job, StreamEvent, UsageReport
from promptq.client.sse import job_stream_events
from promptq.client.transport import DEFAULT_URL, RetryPolicy, Transport
from promptq.client.waiting import long_poll_until_final
from promptq.client.webhook_endpoints import WebhookEndpoints

Message = Mapping[str, str]


def _stamp(value: datetime | date | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime | date) else value


class Client:
    """One API (`base_url`, else PROMPTQ_URL, else http://localhost:8000) and one key (`api_key`,
    else PROMPTQ_KEY). 429 and 503 answers are retried after their Retry-After within `retry`'s
    bounds; submissions carry an Idempotency-Key, so a resend never makes a second job."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._http = Transport(
            base_url or os.environ.get("PROMPTQ_URL") or DEFAULT_URL,
            api_key or os.environ.get("PROMPTQ_KEY"),
            timeout=timeout,
            retry=retry or RetryPolicy(),
            session=session,
        )
        self.batches = Batches(self._http)
        self.webhooks = WebhookEndpoints(self._http)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(
        self,
        model: str,
        messages: Sequence[Message],
        *,
        priority: str | None = None,
        fallbacks: Sequence[str] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        callback_url: str | None = None,
        max_cost_usd: Decimal | str | None = None,
        stream: bool | None = None,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> Job:
        """POST /v1/jobs; the queued job (or, for a repeated `idempotency_key`, the first job).
        A key is made up when none is given and sent on every resend of this call, so a
        connection that broke after the server admitted the job cannot make a second one."""
        fields: dict[str, Any] = {
            "priority": priority,
            "fallbacks": None if fallbacks is None else list(fallbacks),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "metadata": None if metadata is None else dict(metadata),
            "response_format": None if response_format is None else dict(response_format),
            "callback_url": callback_url,
            # A string keeps the amount exact; a float would be rounded by the API.
            "max_cost_usd": None if max_cost_usd is None else str(max_cost_usd),
            # True: the job's tokens can be followed with `stream(job.id)`.
            "stream": stream,
            **extra,
        }
        body = {"model": model, "messages": [dict(m) for m in messages]}
        body.update({k: v for k, v in fields.items() if v is not None})
        key = idempotency_key or f"pqc-{uuid.uuid4()}"
        answer = self._http.json(
            "POST",
            "/v1/jobs",
            json=body,
            headers={"Idempotency-Key": key},
            resend_on_disconnect=True,
        )
        return Job.model_validate(answer)

    def get(self, job_id: str, wait: float = 0.0) -> Job:
        """The job; with `wait` (at most 30 s), once it is final or after `wait` seconds,
        whichever comes first (the server holds the request: a long-poll)."""
        if not wait:
            return Job.model_validate(self._http.json("GET", f"/v1/jobs/{job_id}"))
        answer = self._http.json(
            "GET", f"/v1/jobs/{job_id}", params={"wait": f"{wait:.3f}"}, read_timeout_extra=wait
        )
        return Job.model_validate(answer)

    def wait(
        self,
        job_id: str,
        timeout: float = 300.0,
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        """The job once it is final (succeeded, failed or cancelled), waiting at most `timeout`
        seconds overall; WaitTimeout (its `last` is the job as last seen) after that.
        `on_update` gets the job each time it is read: at most every 30 s, the server holding
        each read until the job is final (long-polls, answered within milliseconds of the end)."""
        return long_poll_until_final(
            lambda wait: self.get(job_id, wait=wait),
            lambda job: job.is_final,
            timeout,
            on_update,
            f"job {job_id}",
        )

    def stream(self, job_id: str) -> Iterator[StreamEvent]:
        """GET /v1/jobs/<id>/stream: a TokenEvent for each piece of the answer as the model
        writes it (from the first, however late the call), a RetryEvent or FallbackEvent when
        the text so far is void, and last the ResultEvent with the final job. A job submitted
        without stream=True raises JobNotStreamed while it runs; a finished job's stream is its
        ResultEvent alone. The client's read timeout must outlast the server's keep-alive
        interval (TOKEN_STREAM_KEEPALIVE_S, 15 s by default); a stream that breaks raises
        APIConnectionError, and a new call starts again from the first token."""
        lines = self._http.lines(
            f"/v1/jobs/{job_id}/stream", keep_blank=True, headers={"Accept": "text/event-stream"}
        )
        return job_stream_events(line.decode() for line in lines)

    def cancel(self, job_id: str) -> Job:
        """The cancelled job; JobNotCancellable once it has finished."""
        return Job.model_validate(self._http.json("POST", f"/v1/jobs/{job_id}/cancel"))

    def attempts(self, job_id: str) -> list[Attempt]:
        """Every provider call made for the job, in order."""
        data = self._http.json("GET", f"/v1/jobs/{job_id}/attempts")["data"]
        return [Attempt.model_validate(item) for item in data]

    def usage(self, start: date | str | None = None, end: date | str | None = None) -> UsageReport:
        """Billed tokens and cost per UTC day and model, `start` to `end` inclusive (the last 30
        days by default)."""
        answer = self._http.json(
            "GET", "/v1/usage", params={"start": _stamp(start), "end": _stamp(end)}
        )
        return UsageReport.model_validate(answer)

    # Last, so that `list` in the annotations above is still the builtin.
    def list(
        self,
        *,
        status: str | None = None,
        priority: str | None = None,
        model: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        page_size: int = 100,
    ) -> Iterator[Job]:
        """Your jobs, newest first, fetching page after page (`page_size` a page) as the
        iteration goes on."""
        cursor: str | None = None
        while True:
            page = self._http.json(
                "GET",
                "/v1/jobs",
                params={
                    "limit": page_size,
                    "cursor": cursor,
                    "status": status,
                    "priority": priority,
                    "model": model,
                    "created_after": _stamp(created_after),
                    "created_before": _stamp(created_before),
                },
            )
            for item in page["data"]:
                yield Job.model_validate(item)
            cursor = page.get("next_cursor")
            if not cursor:
                return

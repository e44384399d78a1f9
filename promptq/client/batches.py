"""Batches: many jobs admitted at once, followed together (`client.batches`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from promptq.client.models import Batch, BatchResult
from promptq.client.transport import Transport
from promptq.client.waiting import wait_until_final


class Batches:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def submit(
        self,
        jobs: Iterable[Mapping[str, Any]],
        metadata: Mapping[str, Any] | None = None,
        completion_window_s: int | None = None,
    ) -> Batch:
        """POST /v1/batches: each job is a job body with a `custom_id`; a batch not finished
        within `completion_window_s` (the server's default when None) expires. The batch has no
        Idempotency-Key, so a broken connection is not resent (it may have been admitted);
        429 and 503 refusals, which admitted nothing, are."""
        body: dict[str, Any] = {"jobs": [dict(job) for job in jobs]}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if completion_window_s is not None:
            body["completion_window_s"] = completion_window_s
        return Batch.model_validate(self._http.json("POST", "/v1/batches", json=body))

    def get(self, batch_id: str) -> Batch:
        return Batch.model_validate(self._http.json("GET", f"/v1/batches/{batch_id}"))

    def cancel(self, batch_id: str) -> Batch:
        """Cancel the batch's queued jobs; it is `cancelling` while running ones finish, then
        `cancelled`. BatchNotCancellable once it has settled."""
        return Batch.model_validate(self._http.json("POST", f"/v1/batches/{batch_id}/cancel"))

    def wait(
        self,
        batch_id: str,
        timeout: float = 600.0,
        progress: Callable[[Batch], None] | None = None,
    ) -> Batch:
        """Poll until the batch has settled (completed, failed, cancelled or expired), for at
        most `timeout` seconds (WaitTimeout after that). `progress` gets the batch each time it
        is read: its
        `counts.done`, `counts.total` and `counts.failed` make a progress bar."""
        return wait_until_final(
            lambda: self.get(batch_id),
            lambda batch: batch.is_final,
            timeout,
            progress,
            what=f"batch {batch_id}",
        )

    def results(self, batch_id: str) -> Iterator[BatchResult]:
        """The batch's finished jobs, one per line of GET /v1/batches/<id>/results, read as the
        server streams them."""
        for line in self._http.lines(f"/v1/batches/{batch_id}/results"):
            yield BatchResult.model_validate(json.loads(line))

    # Last, so that `list` in the annotations above is still the builtin.
    def list(self, *, page_size: int = 100) -> Iterator[Batch]:
        """Your batches, newest first, fetching page after page (`page_size` a page) as the
        iteration goes on."""
        cursor: str | None = None
        while True:
            page = self._http.json(
                "GET", "/v1/batches", params={"limit": page_size, "cursor": cursor}
            )
            for item in page["data"]:
                yield Batch.model_validate(item)
            cursor = page.get("next_cursor")
            if not cursor:
                return

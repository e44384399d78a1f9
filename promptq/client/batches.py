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
        self, jobs: Iterable[Mapping[str, Any]], metadata: Mapping[str, Any] | None = None
    ) -> Batch:
        """POST /v1/batches: each job is a job body with a `custom_id`. The batch has no
        Idempotency-Key, so a broken connection is not resent (it may have been admitted);
        429 and 503 refusals, which admitted nothing, are."""
        body: dict[str, Any] = {"jobs": [dict(job) for job in jobs]}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return Batch.model_validate(self._http.json("POST", "/v1/batches", json=body))

    def get(self, batch_id: str) -> Batch:
        return Batch.model_validate(self._http.json("GET", f"/v1/batches/{batch_id}"))

    def wait(
        self,
        batch_id: str,
        timeout: float = 600.0,
        progress: Callable[[Batch], None] | None = None,
    ) -> Batch:
        """Poll until no job of the batch is queued or running, for at most `timeout` seconds
        (WaitTimeout after that). `progress` gets the batch each time it is read: its
        `counts.done`, `counts.total` and `counts.failed` make a progress bar."""
        return wait_until_final(
            lambda: self.get(batch_id),
            lambda batch: batch.is_complete,
            timeout,
            progress,
            what=f"batch {batch_id}",
        )

    def results(self, batch_id: str) -> Iterator[BatchResult]:
        """The batch's finished jobs, one per line of GET /v1/batches/<id>/results, read as the
        server streams them."""
        for line in self._http.lines(f"/v1/batches/{batch_id}/results"):
            yield BatchResult.model_validate(json.loads(line))

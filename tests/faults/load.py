"""A steady load of job submissions over HTTP from a background thread, recording every answer,
for fault tests that break a service while clients keep submitting."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.conftest import Account
from tests.faults.seeding import job_body


@dataclass
class SteadyLoad:
    """Submits one job every `interval` seconds until stopped; keeps the accepted ids and a
    count of every status code (connection failures count as status 0)."""

    api_url: str
    account: Account
    model: str
    interval: float = 0.05
    extra: dict[str, Any] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SteadyLoad:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        session = requests.Session()
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                response = session.post(
                    f"{self.api_url}/v1/jobs",
                    json=job_body(self.model, n, **self.extra),
                    headers={"Authorization": f"Bearer {self.account.key}"},
                    timeout=15,
                )
            except requests.RequestException:
                self.statuses[0] += 1
            else:
                self.statuses[response.status_code] += 1
                if response.status_code == 202:
                    self.accepted.append(response.json()["id"])
                elif response.status_code >= 500:
                    self.errors.append(f"{response.status_code} {response.text[:300]}")
            time.sleep(self.interval)

"""Webhook endpoints of the caller's user, their deliveries and their tests
(`client.webhooks`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from promptq.client.models import Delivery, WebhookEndpoint
from promptq.client.transport import Transport

# PATCH treats a missing field as "keep" and null as "clear" (description only), so "not given"
# needs a value of its own.
_KEEP: Any = object()


class WebhookEndpoints:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def create(
        self,
        url: str,
        event_types: Sequence[str],
        *,
        description: str | None = None,
        enabled: bool = True,
    ) -> WebhookEndpoint:
        """Register an endpoint; the answer's `secret` is shown this once."""
        body: dict[str, Any] = {"url": url, "event_types": list(event_types), "enabled": enabled}
        if description is not None:
            body["description"] = description
        return WebhookEndpoint.model_validate(self._http.json("POST", "/v1/webhooks", json=body))

    def list(self) -> list[WebhookEndpoint]:
        data = self._http.json("GET", "/v1/webhooks")["data"]
        return [WebhookEndpoint.model_validate(item) for item in data]

    def get(self, endpoint_id: str) -> WebhookEndpoint:
        return WebhookEndpoint.model_validate(self._http.json("GET", f"/v1/webhooks/{endpoint_id}"))

    def update(
        self,
        endpoint_id: str,
        *,
        url: str = _KEEP,
        event_types: Sequence[str] = _KEEP,
        enabled: bool = _KEEP,
        description: str | None = _KEEP,
    ) -> WebhookEndpoint:
        """Change what is given; `description=None` clears the description."""
        given = {"url": url, "event_types": event_types, "enabled": enabled}
        body: dict[str, Any] = {k: v for k, v in given.items() if v is not _KEEP}
        if "event_types" in body:
            body["event_types"] = list(body["event_types"])
        if description is not _KEEP:
            body["description"] = description
        answer = self._http.json("PATCH", f"/v1/webhooks/{endpoint_id}", json=body)
        return WebhookEndpoint.model_validate(answer)

    def delete(self, endpoint_id: str) -> None:
        self._http.request("DELETE", f"/v1/webhooks/{endpoint_id}")

    def rotate_secret(self, endpoint_id: str) -> WebhookEndpoint:
        """A new secret, shown this once; the old one keeps signing for a grace period."""
        answer = self._http.json("POST", f"/v1/webhooks/{endpoint_id}/rotate-secret")
        return WebhookEndpoint.model_validate(answer)

    def test(self, endpoint_id: str) -> Delivery:
        """Send a signed `ping` to the endpoint; the delivery it made."""
        answer = self._http.json("POST", f"/v1/webhooks/{endpoint_id}/test")
        return Delivery.model_validate(answer)

    def deliveries(
        self, endpoint_id: str, *, status: str | None = None, page_size: int = 100
    ) -> Iterator[Delivery]:
        """The endpoint's messages, newest first, each with its attempts, across every page."""
        cursor: str | None = None
        while True:
            page = self._http.json(
                "GET",
                f"/v1/webhooks/{endpoint_id}/deliveries",
                params={"status": status, "limit": page_size, "cursor": cursor},
            )
            for item in page["data"]:
                yield Delivery.model_validate(item)
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def retry(self, endpoint_id: str, message_id: str) -> Delivery:
        """Send a message again now, under the same webhook-id."""
        answer = self._http.json(
            "POST", f"/v1/webhooks/{endpoint_id}/deliveries/{message_id}/retry"
        )
        return Delivery.model_validate(answer)

"""Checking that a webhook delivery comes from promptq (Standard Webhooks signatures).

promptq signs each attempt with `webhook-id`, `webhook-timestamp` and `webhook-signature`:
`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the base64 part of the
endpoint's `whsec_` secret (one signature per secret, space-separated, while a secret rotates).
Standard library only, so a receiver needs nothing else."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
# Standard Webhooks' default: a captured delivery cannot be replayed after five minutes.
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """The delivery is not provably from promptq, or is too old or too new."""


def _expected(secret: str, msg_id: str, timestamp: str, body: bytes) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("the secret is not a whsec_ secret") from exc
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The delivery's JSON payload once its signature checks out with `secret` and its
    timestamp is within `tolerance_s` of now; WebhookVerificationError otherwise.

    Pass the raw body as received: JSON parsed and serialized again no longer matches."""
    raw = body.encode() if isinstance(body, str) else body
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    offered = lowered.get("webhook-signature")
    if not msg_id or not timestamp or not offered:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise WebhookVerificationError("malformed webhook-timestamp") from exc
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp outside the tolerance")
    expected = _expected(secret, msg_id, timestamp, raw)
    for candidate in offered.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            try:
                payload = json.loads(raw)
            except ValueError as exc:
                raise WebhookVerificationError("the signed body is not JSON") from exc
            if not isinstance(payload, dict):
                raise WebhookVerificationError("the signed body is not a JSON object")
            return payload
    raise WebhookVerificationError("no matching signature")

"""Standard Webhooks signatures: promptq signs with `sign_headers`, receivers check with `verify`.

A signature is `v1,` + base64(HMAC-SHA256(key, f"{webhook-id}.{webhook-timestamp}.{body}")), where
the key is the base64 part of a `whsec_...` secret. During a secret rotation a message carries
one signature per secret, separated by spaces; a receiver accepts the message if any matches.

This module needs nothing but the standard library, so a receiver can copy it as it is:

    from shared.webhook_signature import WebhookVerificationError, verify

    try:
        verify(secret, request.headers, request.get_data())
    except WebhookVerificationError:
        return "", 400
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
# Standard Webhooks' default: a message older or newer than five minutes is refused, so a
# captured delivery cannot be replayed later.
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """The message is not provably from promptq (or is too old or too new)."""


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of the message under `secret`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def sign_headers(
    secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, signed with every secret given."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless `body` was signed with `secret` within
    `tolerance_s` of now. `headers` may be any case-insensitive or lower-case mapping."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        offered = lowered["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise WebhookVerificationError("missing or malformed webhook headers") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError("timestamp outside the tolerance")
    expected = signature(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise WebhookVerificationError("no matching signature")

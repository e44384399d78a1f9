"""promptq's Standard Webhooks signatures against the official `standardwebhooks` library: what
promptq signs, the library verifies; what the library signs, promptq's `verify` accepts; and both
refuse the same forgeries."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import standardwebhooks

from shared.webhook_secrets import new_webhook_secret
from shared.webhook_signature import WebhookVerificationError, sign_headers, verify

MSG_ID = "msg_0123456789abcdef0123456789abcdef"
# Event bodies are JSON with ensure_ascii=False, so signing must cover UTF-8 bytes exactly.
BODY = json.dumps(
    {"type": "job.succeeded", "data": {"job": {"id": "j1", "result": "naïve café ✓ 🚀"}}},
    separators=(",", ":"),
    ensure_ascii=False,
)
TEN_MINUTES = 600


def _official_headers(secret: str, msg_id: str, when: datetime, body: str) -> dict[str, str]:
    """Headers as a sender using the official library would set them."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(secret).sign(msg_id, when, body),
    }


def _official_accepts(secret: str, headers: dict[str, str], body: str) -> bool:
    try:
        standardwebhooks.Webhook(secret).verify(body, headers)
    except standardwebhooks.WebhookVerificationError:
        return False
    return True


def _ours_accepts(secret: str, headers: dict[str, str], body: str) -> bool:
    try:
        verify(secret, headers, body.encode())
    except WebhookVerificationError:
        return False
    return True


def test_promptq_signature_verifies_with_the_official_library() -> None:
    secret = new_webhook_secret()
    headers = sign_headers([secret], MSG_ID, int(time.time()), BODY.encode())
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == MSG_ID
    assert headers["webhook-signature"].startswith("v1,")
    assert standardwebhooks.Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    # Our own verify agrees, with header names in any case (as a framework may hand them over).
    verify(secret, {k.title(): v for k, v in headers.items()}, BODY.encode())


def test_official_signature_verifies_with_promptq() -> None:
    secret = new_webhook_secret()
    headers = _official_headers(secret, MSG_ID, datetime.now(UTC), BODY)
    verify(secret, headers, BODY.encode())
    # Byte for byte the same signature as promptq computes for the same inputs.
    ours = sign_headers([secret], MSG_ID, int(headers["webhook-timestamp"]), BODY.encode())
    assert ours == headers


def test_tampered_body_is_rejected_by_both() -> None:
    secret = new_webhook_secret()
    tampered = BODY.replace("job.succeeded", "job.failed")
    ours = sign_headers([secret], MSG_ID, int(time.time()), BODY.encode())
    official = _official_headers(secret, MSG_ID, datetime.now(UTC), BODY)
    for headers in (ours, official):
        assert _official_accepts(secret, headers, BODY)
        assert not _official_accepts(secret, headers, tampered)
        assert not _ours_accepts(secret, headers, tampered)


def test_tampered_id_is_rejected_by_both() -> None:
    """The webhook-id is signed too, so a receiver deduping on it can trust it."""
    secret = new_webhook_secret()
    headers = {**sign_headers([secret], MSG_ID, int(time.time()), BODY.encode())}
    headers["webhook-id"] = "msg_ffffffffffffffffffffffffffffffff"
    assert not _official_accepts(secret, headers, BODY)
    assert not _ours_accepts(secret, headers, BODY)


def test_wrong_secret_is_rejected_by_both() -> None:
    secret, other = new_webhook_secret(), new_webhook_secret()
    ours = sign_headers([secret], MSG_ID, int(time.time()), BODY.encode())
    official = _official_headers(secret, MSG_ID, datetime.now(UTC), BODY)
    for headers in (ours, official):
        assert not _official_accepts(other, headers, BODY)
        assert not _ours_accepts(other, headers, BODY)


@pytest.mark.parametrize("offset_s", [-TEN_MINUTES, TEN_MINUTES], ids=["too-old", "too-new"])
def test_timestamp_outside_five_minutes_is_rejected_by_both(offset_s: int) -> None:
    """A correctly signed message is still refused once it is outside the tolerance: a
    captured delivery cannot be replayed later."""
    secret = new_webhook_secret()
    when = datetime.now(UTC) + timedelta(seconds=offset_s)
    ours = sign_headers([secret], MSG_ID, int(when.timestamp()), BODY.encode())
    official = _official_headers(secret, MSG_ID, when, BODY)
    assert ours == official
    assert not _official_accepts(secret, ours, BODY)
    assert not _ours_accepts(secret, ours, BODY)
    # Inside the tolerance the very same signature is good: only the clock refused it.
    verify(secret, ours, BODY.encode(), now=when.timestamp() - offset_s / 3)


def test_timestamp_inside_tolerance_is_accepted_by_both() -> None:
    secret = new_webhook_secret()
    when = datetime.now(UTC) - timedelta(seconds=240)
    headers = sign_headers([secret], MSG_ID, int(when.timestamp()), BODY.encode())
    assert _official_accepts(secret, headers, BODY)
    assert _ours_accepts(secret, headers, BODY)


def test_during_a_rotation_either_secret_verifies() -> None:
    """A message signed with the new and the previous secret carries two signatures; a
    receiver holding either one accepts it, and one holding neither does not."""
    new, previous, unrelated = new_webhook_secret(), new_webhook_secret(), new_webhook_secret()
    headers = sign_headers([new, previous], MSG_ID, int(time.time()), BODY.encode())
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, previous):
        assert _official_accepts(secret, headers, BODY), "official library refused a signer"
        assert _ours_accepts(secret, headers, BODY), "promptq's verify refused a signer"
    assert not _official_accepts(unrelated, headers, BODY)
    assert not _ours_accepts(unrelated, headers, BODY)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": MSG_ID, "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"},
        {"webhook-id": MSG_ID, "webhook-signature": "v1,AAAA"},
    ],
    ids=["none", "bad-timestamp", "no-timestamp"],
)
def test_missing_or_malformed_headers_are_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookVerificationError):
        verify(new_webhook_secret(), headers, BODY.encode())

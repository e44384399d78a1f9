"""Webhook signing secrets in the Standard Webhooks format: `whsec_` + base64 of random bytes."""

from __future__ import annotations

import base64
import secrets

from shared.webhook_signature import SECRET_PREFIX

# Standard Webhooks asks for 24 to 64 bytes of randomness.
SECRET_BYTES = 32


def new_webhook_secret() -> str:
    """A fresh signing secret, e.g. `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw...`."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()

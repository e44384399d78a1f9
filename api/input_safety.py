"""Input safety on the accept path: prompt-injection screening and the PII scrubbing of the
stored copy, for the jobs (or the owners) that opted in. A submission that asked for neither
costs one check of values already in hand: no SQL, no Redis, no import.

Where PII is scrubbed (README: "Input safety"):
- The worker scrubs the prompt before every provider call, whatever is stored, so the provider
  never sees an original (worker/pii_guard.py).
- The stored job keeps the original prompt only if its owner allows it (keep_original_prompts).
  Otherwise the request is scrubbed here, before the INSERT, and the originals exist nowhere in
  PostgreSQL; if the answer is to be restored, the placeholder mapping is stored sealed under
  the operator's PII_VAULT_KEY (shared/input_safety/pii_vault.py) until the final write.
"""

from __future__ import annotations

from typing import Any

from api.schemas.jobs import JobCreate
from shared.errors import InputRejectedError
from shared.input_safety.user_settings import InputSafetySettings, stricter
from shared.settings import Settings


def apply_input_safety(
    body: JobCreate, user: InputSafetySettings, request: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The job's input-safety column values; `request` (its stored copy) is scrubbed in place
    when the original may not be kept. Raises InputRejectedError for a prompt refused by
    screening."""
    mode = stricter(body.injection_screening, user.injection_screening)
    restore = body.restore_pii or user.restore_pii
    scrub = restore or body.scrub_pii or user.scrub_pii
    if mode is None and not scrub:
        return {}
    values: dict[str, Any] = {}
    if mode is not None:
        values["screening"] = _screen(request, mode, settings.injection_threshold)
    if scrub:
        values |= {"scrub_pii": True, "restore_pii": restore}
        if not user.keep_original_prompts:
            values["pii_vault"] = _scrub_stored(request, restore, settings)
    return values


def _screen(request: dict[str, Any], mode: str, threshold: float) -> dict[str, Any]:
    from shared.input_safety.injection import screen_texts

    verdict = screen_texts(m["content"] for m in request["messages"] if m["role"] == "user")
    flagged = verdict.flagged(threshold)
    found = {"score": verdict.score, "threshold": threshold, "rules": list(verdict.rules)}
    if flagged and mode == "reject":
        raise InputRejectedError(
            f"The prompt was refused by prompt-injection screening (score {verdict.score} >= "
            f"threshold {threshold}; matched: {', '.join(verdict.rules)}). Rephrase the user "
            "messages without instructions aimed at the model's own rules, or submit with "
            "injection_screening 'flag' if the owner's setting allows it.",
            details=found,
        )
    return {**found, "action": "flagged" if flagged else "passed"}


def _scrub_stored(request: dict[str, Any], restore: bool, settings: Settings) -> str | None:
    """Scrub the stored messages in place; the sealed mapping when it is needed to restore."""
    from shared.input_safety.pii import Scrubber
    from shared.input_safety.pii_vault import require_key, seal

    if restore:
        require_key(settings.pii_vault_key)
    scrubber = Scrubber(settings.pii_phone_region)
    request["messages"] = [
        {**message, "content": scrubber.scrub(message["content"])}
        for message in request["messages"]
    ]
    originals = scrubber.originals
    if not restore or not originals:
        return None
    return seal(originals, settings.pii_vault_key)

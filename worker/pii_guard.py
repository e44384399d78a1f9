"""PII scrubbing on the worker's side: the prompt as the provider gets it, with every finding
replaced by its placeholder, and the answer with the placeholders put back.

It runs for every job with scrub_pii, whatever the stored copy holds: a prompt the API already
scrubbed (its owner does not keep originals) comes back unchanged, its mapping unsealed from
the job's vault; an original kept by the owner's leave is scrubbed here, its mapping in memory
only. Either way no original reaches a provider, and none is written anywhere by this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from shared.errors import PiiRestoreUnavailableError
from shared.input_safety.pii import Scrubber, restore
from shared.input_safety.pii_vault import unseal
from shared.logging import get_logger
from shared.repositories.job_leases import Claim
from shared.settings import Settings
from worker.attempt import AttemptResult
from worker.providers.base import Message, ProviderRequest

log = get_logger(__name__)


@dataclass(frozen=True)
class Guarded:
    request: ProviderRequest
    # Placeholder -> original, when the answer is to be restored.
    originals: Mapping[str, str] | None


def guard(claim: Claim, settings: Settings) -> Guarded:
    """The claimed job's provider request, scrubbed."""
    known: dict[str, str] = {}
    if claim.pii_vault is not None:
        try:
            known = unseal(claim.pii_vault, settings.pii_vault_key)
        except (ValueError, PiiRestoreUnavailableError):
            # The operator changed or removed the key since admission: the stored prompt is
            # scrubbed already, so the call is still safe; only the restoring is lost.
            log.warning("pii.vault_unreadable")
    scrubber = Scrubber(settings.pii_phone_region, known)
    request = ProviderRequest.from_job(claim.model, claim.request)
    messages = tuple(Message(m.role, scrubber.scrub(m.content)) for m in request.messages)
    originals = scrubber.originals if claim.restore_pii else None
    return Guarded(replace(request, messages=messages), originals)


def restored(final: AttemptResult | None, originals: Mapping[str, str]) -> AttemptResult | None:
    """The final attempt with the placeholders in its answer replaced by their originals."""
    if final is None or final.response is None or not originals:
        return final
    content = restore(final.response.content, originals)
    return replace(final, response=replace(final.response, content=content))

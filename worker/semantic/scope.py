"""What must be equal for a semantic cache entry to answer a request, and what may only be
alike.

Only the last user message is compared by meaning. Everything else that shapes an answer is
compared exactly, through one digest: the user (entries are never shared between tenants), the
model, max_tokens, temperature, the response format, the embedding model (vectors of two models
cannot be compared), and every other message in order (a different system prompt or earlier
turn makes another question of the same words).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from worker.providers.base import ProviderRequest

# Bumped when what goes into the digest changes: earlier entries then simply stop matching.
SCOPE_VERSION = 2


@dataclass(frozen=True)
class Question:
    """A request split into the part compared by meaning and the digest of the rest."""

    text: str
    scope: bytes


def question(
    user_id: uuid.UUID,
    request: ProviderRequest,
    response_format: dict[str, Any] | None,
    embedder_id: str,
    scrubbed: bool = False,
) -> Question | None:
    """The request's question, or None when it has no user message to compare. `scrubbed`: the
    request carries PII placeholders, so its answers may too, and they are no answer for a job
    whose prompt has the real values (nor the other way round)."""
    last = next(
        (i for i in range(len(request.messages) - 1, -1, -1) if request.messages[i].role == "user"),
        None,
    )
    if last is None:
        return None
    context = [[i, m.role, m.content] for i, m in enumerate(request.messages) if i != last]
    canonical = json.dumps(
        {
            "v": SCOPE_VERSION,
            "user": str(user_id),
            "model": request.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "response_format": response_format,
            "embedder": embedder_id,
            "scrubbed": scrubbed,
            "context": context,
            "position": last,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return Question(request.messages[last].content, hashlib.sha256(canonical.encode()).digest())

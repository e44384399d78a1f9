"""The price table turns reported usage into exact Decimal cost."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.errors import UnknownModelError
from shared.pricing import PRICE_TABLE, price_for


def test_cost_is_exact_decimal() -> None:
    """1,234 input and 567 output tokens of gpt-4o-mini cost exactly $0.0005253."""
    assert price_for("gpt-4o-mini").cost(1234, 567) == Decimal("0.0005253")


def test_single_token_is_not_rounded_away() -> None:
    """One output token of the cheapest price is still charged, to the last digit."""
    assert price_for("gpt-4o-mini").cost(0, 1) == Decimal("0.0000006")


def test_unknown_model_raises_a_domain_error() -> None:
    """An unknown model is a UnknownModelError that lists the known ones."""
    with pytest.raises(UnknownModelError) as caught:
        price_for("gpt-99")
    assert "gpt-4o-mini" in caught.value.details["known"]


def test_fallbacks_point_at_known_models() -> None:
    """Every default fallback is itself a priced model."""
    for price in PRICE_TABLE.values():
        for fallback in price.fallbacks:
            assert fallback in PRICE_TABLE, (price.model, fallback)

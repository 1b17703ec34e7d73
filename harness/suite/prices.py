"""Built-in prices (USD per 1M tokens) for well-known models; a suite's own ``price:`` always wins.

Prices change; this table is a convenience for cost estimates, not a bill, and says when it was taken
(``PRICES_AS_OF``). Matching is by exact name, then by the longest known prefix (so dated snapshots like
``gpt-4o-mini-2024-07-18`` find their family). A model found in neither the suite nor this table gets one
warning (``missing_price_warning``): its cost is unknown, never zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.suite.model import Price

# The date of OpenAI's published standard-tier list prices copied below (input, output, cached input);
# batch prices are half of each, as OpenAI's Batch API charges.
PRICES_AS_OF = "2025-08-01"


def _listed(input_: float, output: float, cached_input: float | None) -> Price:
    half_cached = None if cached_input is None else cached_input / 2
    return Price(input_, output, cached_input, Price(input_ / 2, output / 2, half_cached))


KNOWN_PRICES: dict[str, Price] = {
    "gpt-4o": _listed(2.50, 10.00, 1.25),
    "gpt-4o-mini": _listed(0.15, 0.60, 0.075),
    "gpt-4.1": _listed(2.00, 8.00, 0.50),
    "gpt-4.1-mini": _listed(0.40, 1.60, 0.10),
    "gpt-4.1-nano": _listed(0.10, 0.40, 0.025),
    "gpt-3.5-turbo": _listed(0.50, 1.50, None),
    "o1": _listed(15.00, 60.00, 7.50),
    "o3": _listed(2.00, 8.00, 0.50),
    "o3-mini": _listed(1.10, 4.40, 0.55),
    "o4-mini": _listed(1.10, 4.40, 0.275),
}


def known_price(model: str) -> Price | None:
    if model in KNOWN_PRICES:
        return KNOWN_PRICES[model]
    prefixes = [name for name in KNOWN_PRICES if model.startswith(name + "-")]
    return KNOWN_PRICES[max(prefixes, key=len)] if prefixes else None


def suite_price(raw: Mapping[str, Any] | None, model: str) -> Price | None:
    """The suite's ``price:`` over the built-in entry: keys it leaves out keep the built-in value, so
    ``price: {cached_input: 0.6}`` adjusts one rate. ``None`` when neither knows the model."""
    builtin = known_price(model)
    if not raw:
        return builtin
    price = suite_price_parts(raw, builtin)
    if price is None:
        return None
    batch = builtin.batch if builtin is not None else None
    batch_raw = raw.get("batch")
    if isinstance(batch_raw, Mapping):
        batch = suite_price_parts(batch_raw, batch or price.for_batch())
    return Price(price.input, price.output, price.cached_input, batch)


def suite_price_parts(raw: Mapping[str, Any], base: Price | None) -> Price | None:
    def rate(name: str) -> float | None:
        if raw.get(name) is not None:
            return float(raw[name])
        return None if base is None else getattr(base, name)

    input_, output = rate("input"), rate("output")
    if input_ is None or output is None:
        return None  # the loader refuses this earlier; kept total for direct callers
    return Price(input_, output, rate("cached_input"))


def missing_price_warning(model: str, where: str) -> str:
    return (
        f"{where}: model {model!r} has no price (not in the built-in table of {PRICES_AS_OF} prices), so its "
        f"cost is shown as unknown. Set it in the suite: price: {{input: <USD per 1M>, output: <USD per 1M>, "
        f"cached_input: <USD per 1M>}} under that model (price: {{input: 0, output: 0}} for a free local model)"
    )

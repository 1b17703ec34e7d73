"""Built-in prices (USD per 1M tokens) for well-known models; a suite's own ``price:`` always wins.

Prices change; this table is a convenience for cost estimates, not a bill. Matching is by exact name, then
by the longest known prefix (so dated snapshots like ``gpt-4o-mini-2024-07-18`` find their family).
"""

from __future__ import annotations

from harness.suite.model import Price

KNOWN_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "o1": Price(15.00, 60.00),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
}


def known_price(model: str) -> Price | None:
    if model in KNOWN_PRICES:
        return KNOWN_PRICES[model]
    prefixes = [name for name in KNOWN_PRICES if model.startswith(name + "-")]
    return KNOWN_PRICES[max(prefixes, key=len)] if prefixes else None

"""Deterministic seeds: every resampling in a report is reproducible from the run id alone."""

from __future__ import annotations

import hashlib

_SEED_BYTES = 8


def seed_from(text: str) -> int:
    """A stable non-negative int from text (e.g. a run id); unlike ``hash()`` it is the same every run."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:_SEED_BYTES], "big")


def derive_seed(seed: int, *parts: str) -> int:
    """An independent, order-free seed per resampling purpose (variant, metric...) under one run seed."""
    return seed_from("\x1f".join([str(seed), *parts]))

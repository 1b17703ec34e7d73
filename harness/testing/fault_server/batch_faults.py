"""How the fault server's Batch API misbehaves (``BatchFaults``): a field of ``FaultConfig``, read per request."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BatchFaults:
    """What the simulated batch engine does with a submitted batch.

    Args:
        polls_to_complete: How many ``GET /v1/batches/{id}`` a batch answers before it is done: the first
            says ``validating``, the next ones ``in_progress`` (with growing counts), then the final state.
            A large number is a slow batch.
        shuffle_output: Write output lines in a hashed order, not the input order (as the real API may).
        error_on: Substring of a request line's body -> HTTP status: matching requests fail and go to the
            error file with an OpenAI-style error body.
        expire_first: The first N batches created expire instead of completing: ``expire_done`` of their
            requests finish (output file), the rest go to the error file with code ``batch_expired``.
        expire_done: Fraction of an expiring batch's requests that finish before the window closes.
        submit_429: The first N ``POST /v1/batches`` are answered 429 with a Retry-After.
        max_requests: A batch whose input file has more lines fails validation (as the real API's limit).
        max_bytes: Likewise for the input file's size in bytes.
        completion_windows: The windows ``POST /v1/batches`` accepts.
    """

    polls_to_complete: int = 2
    shuffle_output: bool = True
    error_on: dict[str, int] = field(default_factory=dict)
    expire_first: int = 0
    expire_done: float = 0.5
    submit_429: int = 0
    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024
    completion_windows: tuple[str, ...] = ("24h",)

    def __post_init__(self) -> None:
        if self.polls_to_complete < 1:
            raise ValueError("polls_to_complete must be >= 1")
        if not 0.0 <= self.expire_done <= 1.0:
            raise ValueError("expire_done must be within [0, 1]")

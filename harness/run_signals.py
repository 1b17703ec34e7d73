"""Signals during a run: SIGTERM stops it as Ctrl-C does, and Ctrl-C waits while the manifest is written."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a cancelled CI job, ``docker stop``) stops the run as Ctrl-C does: cleanly and resumably.

    The SIGTERM handler hands over to whatever handles SIGINT at that moment; inside ``asyncio.run`` that is
    the runner's, which cancels the run so in-flight trials unwind and the manifest is written.
    """
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_IGN:
            raise ValueError("SIGTERM is ignored on purpose")
        signal.signal(signal.SIGTERM, _forward_to_sigint)
    except (AttributeError, ValueError):  # no SIGTERM here, not the main thread, or ignored: leave it alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _forward_to_sigint(signum: int, frame: FrameType | None) -> None:
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored (a background job of a shell): a SIGTERM must still stop the run
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_deferred() -> Iterator[list[int]]:
    """Hold a Ctrl-C back while the manifest is written (a second Ctrl-C is common), then report it."""
    received: list[int] = []
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:
            raise ValueError("someone else handles SIGINT")
        signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except ValueError:  # not the main thread, or a handler that is not ours to replace
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)

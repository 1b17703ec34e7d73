"""Run progress: a rich bar on a terminal, plain periodic lines otherwise (CI logs stay readable)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from harness.report.format import money, pct
from harness.store import TrialResult

if TYPE_CHECKING:
    from rich.progress import Progress


class RunProgress:
    """Counts done/total, pass rate so far, errors and spend; shows them as the run goes."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True,
                 interval: float = 5.0) -> None:
        self.total = total
        self.done = 0
        self.passed = 0
        self.decided = 0
        self.errors = 0
        self.spend = 0.0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interval = interval
        self._last = float("-inf")  # the first finished trial prints at once: the run is alive
        self._shown = -1  # ``done`` when the last plain line was printed, so the final count shows once
        self._bar: Progress | None = None
        self._task: int | None = None

    def __enter__(self) -> RunProgress:
        if not self.enabled:
            return self  # rich is ~40 ms of imports: a quiet run or a library caller does not pay for it
        # rich decides what counts as a terminal (FORCE_COLOR, TTY_COMPATIBLE, Jupyter), not a bare isatty().
        from rich.console import Console

        console = Console(file=self.stream)
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("run", total=self.total, stats=self._stats())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.enabled and self.done and self.done != self._shown:
            self._line()

    def _stats(self) -> str:
        rate = pct(self.passed / self.decided if self.decided else None, 0)
        return f"pass {rate}  errors {self.errors}  spend {money(self.spend, 4)}"

    def _line(self) -> None:
        self._shown = self.done
        print(f"[harness] {self.done}/{self.total} trials  {self._stats()}", file=self.stream, flush=True)

    def advance(self, result: TrialResult) -> None:
        self.done += 1
        if result.error is not None:
            self.errors += 1
        elif result.passed is not None:
            self.decided += 1
            self.passed += int(result.passed)
        self.spend += (result.cost or 0.0) + (result.judge_cost or 0.0)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done, stats=self._stats())  # type: ignore[arg-type]
        elif self.enabled:
            now = time.monotonic()
            if now - self._last >= self.interval or self.done == self.total:
                self._last = now
                self._line()

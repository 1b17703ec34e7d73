"""The run's progress display: plain lines when not a terminal (each count once), a rich bar on a terminal."""

from __future__ import annotations

import io
import subprocess
import sys

from harness.execute.batch.poll import BatchProgress
from harness.execute.progress import RunProgress
from harness.store import TrialError, TrialResult


def result(i: int, passed: bool | None = True, error: TrialError | None = None, cost: float = 0.0) -> TrialResult:
    return TrialResult(trial_id=f"t{i}", case_id=f"c{i}", prompt="v1", model="m", temperature=0.0, repeat=0,
                       passed=passed, error=error, cost=cost)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_show_the_final_count_once() -> None:
    stream = io.StringIO()
    with RunProgress(4, stream=stream, interval=3600) as progress:
        progress.advance(result(0))
        progress.advance(result(1, passed=False))
        progress.advance(result(2, passed=None, error=TrialError("timeout", "request timed out")))
        progress.advance(result(3, cost=0.25))
    lines = stream.getvalue().splitlines()
    # The first trial prints at once (the run is alive); the rest wait for the interval or the end.
    assert lines == [
        "[harness] 1/4 trials  pass 100%  errors 0  spend $0",
        "[harness] 4/4 trials  pass 67%  errors 1  spend $0.2500",
    ]


def test_an_interrupted_run_prints_where_it_stopped() -> None:
    stream = io.StringIO()
    with RunProgress(10, stream=stream, interval=3600) as progress:
        for i in range(3):
            progress.advance(result(i))
    assert stream.getvalue().splitlines()[-1] == "[harness] 3/10 trials  pass 100%  errors 0  spend $0"
    assert len(stream.getvalue().splitlines()) == 2


def test_disabled_progress_prints_nothing() -> None:
    stream = io.StringIO()
    with RunProgress(2, stream=stream, enabled=False) as progress:
        progress.advance(result(0))
        progress.advance(result(1))
    assert stream.getvalue() == ""


def test_disabled_progress_does_not_import_rich() -> None:
    # A fresh interpreter: in this one another test may have imported rich already.
    code = ("import sys\nfrom harness.execute.progress import RunProgress\n"
            "with RunProgress(1, enabled=False):\n    pass\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] == 'rich'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_terminal_gets_the_bar_and_no_plain_lines() -> None:
    stream = Terminal()
    with RunProgress(2, stream=stream) as progress:
        progress.advance(result(0))
        progress.advance(result(1, error=TrialError("server", "HTTP 500")))
    text = stream.getvalue()
    assert "[harness]" not in text
    assert "2/2" in text and "errors 1" in text


def test_batch_progress_shows_its_estimate_as_the_run_shows_spend() -> None:
    lines = []
    for estimate in (0.0123, 0.0, None):
        stream = io.StringIO()
        BatchProgress(True, estimate, stream).show([])
        lines.append(stream.getvalue())
    assert [line.rsplit("est. spend ", 1)[1].strip() for line in lines] == ["~$0.0123", "~$0", "?"]

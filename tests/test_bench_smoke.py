"""The benchmark scripts run end to end (tiny sizes). Their timings are not checked here: see bench/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLES = (
    "start-up (issue 7.5)",
    "replay from a cassette (issues 3 and 7.3)",
    "latency-bound live run (issue 7.1)",
    "overhead at zero latency (issue 7.2)",
    "memory (issue 7.4)",
)


def test_every_benchmark_runs_and_prints_its_table() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "run_all.py"), "--check-only"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert out.startswith("machine: ") and "cores" in out.splitlines()[0]
    for title in TABLES:
        assert f"== {title}" in out, f"missing table {title!r}:\n{out}"
    # Every judged row ends in a verdict, and the tally counts them all with nothing crashed.
    verdicts = re.findall(r"\s(PASS|MISS)$", out, re.MULTILINE)
    tally = re.search(r"^(\d+) PASS, (\d+) MISS, 0 crashed in \d+ s$", out, re.MULTILINE)
    assert tally is not None, out[-2000:]
    assert int(tally[1]) + int(tally[2]) == len(verdicts) >= 9
    # The runs stored and passed every trial (each benchmark raises otherwise), and replays ran offline.
    assert "FAILED TO RUN" not in done.stderr

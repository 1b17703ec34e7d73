"""The benchmark scripts run end to end (tiny sizes). Their timings are not checked here: see bench/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLES = (
    "start-up and suite loading",
    "replay and recording",
    "latency-bound live runs",
    "overhead at zero latency",
    "memory",
    "targets (",
)
# Every target of issue 13's table, as the benchmarks name them: each must end in PASS or MISS.
TARGETS = (
    r"harness wall \(\d+ trials, [\d.]+ ms, concurrency \d+\) vs SDK",
    r"CPU per trial at 0 ms, whole process",
    r"replay \d+ inline-YAML cases, whole process, vs SDK",
    r"replay \d+ inline-YAML cases, absolute",
    r"replay marginal cost per trial",
    r"replay linear to \d+",
    r"record \d+ trials vs live",
    r"harness validate, \d+ inline-YAML cases",
    r"peak RSS, \d+ trials live",
    r"harness \(\d+ trials, [\d.]+ ms, concurrency \d+\) vs ideal",
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
    # Each judged row is printed twice: in its benchmark's table and in the closing table of targets.
    assert int(tally[1]) + int(tally[2]) == len(verdicts) // 2 >= 14
    targets = out[out.index("== targets ("):]
    for pattern in TARGETS:
        assert re.search(rf"^{pattern}.*\s(PASS|MISS)$", targets, re.MULTILINE), f"no verdict for {pattern}"
    assert len(re.findall(r"^peak RSS, \d+ trials live.*\s(PASS|MISS)$", targets, re.MULTILINE)) == 2
    # The runs stored and passed every trial (each benchmark raises otherwise), and replays ran offline.
    assert "FAILED TO RUN" not in done.stderr

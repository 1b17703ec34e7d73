"""Memory: peak RSS of live runs of 1,000 and 100,000 trials (< 80 MB and < 150 MB), against the SDK's.

Peak RSS is the ``harness run`` process's own ``ru_maxrss`` (the server runs in another process). Results
are streamed to ``results.jsonl`` as trials finish; a run that held them all as objects would grow with N.
The run's results file is counted to prove every trial was stored and passed. To tell the run from the
summary printed after it, the process's RSS is also sampled from /proc every 0.2 s while its manifest still
says ``running``, and ``harness report`` is run alone on the finished folder.

    python bench/bench_memory.py [--quick | --check-only]
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from common import (
    Measured,
    Row,
    cli,
    expect_all_passed,
    harness_report,
    harness_run,
    print_table,
    rss_mb,
    sdk_floor,
    secs,
    server,
    workdir,
    write_suite,
)

# The small run's target and the large run's (1,000 and 100,000 trials at full size).
TARGET_SMALL_MB, TARGET_LARGE_MB = 80.0, 150.0


def _one(work: Path, url: str, n: int, concurrency: int) -> tuple[Measured, float, Measured]:
    """A live run of n trials: the measured process, its highest RSS while trials ran, `harness report` alone."""
    suite = write_suite(work / f"n{n}", n, concurrency=concurrency)
    manifest = suite.parent / "reports" / "bench" / "memory" / "manifest.json"
    during_run = [0.0]

    def watch(pid: int) -> None:
        # The manifest says "running" until the last trial is stored; after that comes the summary.
        with contextlib.suppress(OSError, ValueError):
            if json.loads(manifest.read_text(encoding="utf-8")).get("status") == "running":
                during_run[0] = max(during_run[0], rss_mb(pid))

    measured = harness_run(suite, "live", url, "memory", watch=watch)
    expect_all_passed(suite, "memory", n)
    return measured, during_run[0], harness_report(suite, "memory")


def run(sizes: tuple[int, ...] = (1000, 100_000), concurrency: int = 32) -> list[Row]:
    rows: list[Row] = []
    with workdir() as work, server(0.0) as url:
        floor = sdk_floor(url, sizes[0], concurrency)
        for n in sizes:
            measured, during_run, report = _one(work, url, n, concurrency)
            target = TARGET_SMALL_MB if n == sizes[0] else TARGET_LARGE_MB
            rows += [
                Row(f"peak RSS, {n} trials live", f"{measured.max_rss_mb:.0f} MB",
                    f"SDK {sizes[0]} calls {floor.max_rss_mb:.0f} MB",
                    f"{measured.max_rss_mb / floor.max_rss_mb:.2f}× SDK",
                    f"< {target:.0f} MB", measured.max_rss_mb < target),
                Row("  of which: highest RSS seen while trials ran", f"{during_run:.0f} MB"),
                Row("  wall / CPU", f"{secs(measured.wall)} / {secs(measured.cpu)}"),
                Row("  `harness report` alone on that run", f"{report.max_rss_mb:.0f} MB", f"{secs(report.wall)}"),
            ]
    return rows


def sizes(mode: str) -> dict[str, Any]:
    return {
        "full": {"sizes": (1000, 100_000)},
        "quick": {"sizes": (1000, 10_000)},
        "check": {"sizes": (20, 200), "concurrency": 4},
    }[mode]


def main(mode: str) -> list[Row]:
    rows = run(**sizes(mode))
    print_table("memory", rows)
    return rows


if __name__ == "__main__":
    cli(__doc__, main, "10,000 trials instead of 100,000")

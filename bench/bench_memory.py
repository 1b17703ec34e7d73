"""Memory: a large live run against a zero-latency server must finish under 300 MB peak RSS.

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
from typing import Any

from common import (
    Row,
    cli,
    expect_all_passed,
    harness_report,
    harness_run,
    print_table,
    rss_mb,
    secs,
    server,
    workdir,
    write_suite,
)

TARGET_MB = 300.0


def run(n: int = 100_000, concurrency: int = 32) -> list[Row]:
    with workdir() as work, server(0.0) as url:
        suite = write_suite(work, n, concurrency=concurrency)
        manifest = work / "reports" / "bench" / "memory" / "manifest.json"
        during_run = [0.0]

        def watch(pid: int) -> None:
            # The manifest says "running" until the last trial is stored; after that comes the summary.
            with contextlib.suppress(OSError, ValueError):
                if json.loads(manifest.read_text(encoding="utf-8")).get("status") == "running":
                    during_run[0] = max(during_run[0], rss_mb(pid))

        measured = harness_run(suite, "live", url, "memory", watch=watch)
        expect_all_passed(suite, "memory", n)
        report = harness_report(suite, "memory")
    return [
        Row(f"peak RSS, {n} trials live", f"{measured.max_rss_mb:.0f} MB", "", "", f"< {TARGET_MB:.0f} MB",
            measured.max_rss_mb < TARGET_MB),
        Row("  of which: highest RSS seen while trials ran", f"{during_run[0]:.0f} MB", "", "", ""),
        Row("  wall / CPU", f"{secs(measured.wall)} / {secs(measured.cpu)}", "", "", ""),
        Row("  of which: `harness report` alone on that run", f"{report.max_rss_mb:.0f} MB",
            f"{secs(report.wall)}", "", ""),
    ]


def sizes(mode: str) -> dict[str, Any]:
    return {
        "full": {"n": 100_000},
        "quick": {"n": 10_000},
        "check": {"n": 200, "concurrency": 4},
    }[mode]


def main(mode: str) -> list[Row]:
    rows = run(**sizes(mode))
    print_table("memory (issue 7.4)", rows)
    return rows


if __name__ == "__main__":
    cli(__doc__, main, "10,000 trials instead of 100,000")

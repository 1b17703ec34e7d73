"""Batch: N trials by batch against the local fault server — submission and ingestion cost per trial, memory.

Three measured ``harness run`` processes per size, the server in its own process (its batch engine answers on
the second status poll):

1. ``--batch --batch-wait none``: plan, render, spool the request file, upload it, submit. Its run phase (the
   manifest's start to end) over N is the **submission overhead per trial**.
2. ``--resume`` of that run: poll, download the output file, and ingest every answer through the live call
   path into results and cassette. Its run phase over N is the **ingestion cost per trial**; the target is the
   cost of replaying the same trials from that cassette (3.), within 1.5×.
3. ``--record replay`` of the same suite: the reference.
4. ``--record record`` without ``--batch`` against the zero-latency server: the same recording work as an
   ingestion (every answer written to the cassette) plus a network call each; informative.

Memory: the ingesting process's peak RSS must stay within 1.25× of the replay's at the same N (both hold the
cassette; ingestion must add no copy of the answer file), and grow no faster than the replay's from N/4 to N.

    python bench/bench_batch.py [--quick | --check-only]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    URL_ENV,
    Measured,
    Row,
    cli,
    expect_all_passed,
    measure,
    ms,
    print_table,
    run_phase,
    secs,
    server,
    workdir,
    write_suite,
)

TARGET_INGEST_OVER_REPLAY = 1.5
TARGET_RSS_OVER_REPLAY = 1.25


def _run(suite: Path, url: str, run_id: str, *flags: str) -> Measured:
    work = suite.parent
    resume = "--resume-run" in flags
    argv = [PYTHON, "-m", "harness", "run", str(suite), "--reports", str(work / "reports"),
            "--cassettes", str(work / "cassettes"), "--quiet", *(f for f in flags if f != "--resume-run"),
            "--resume" if resume else "--run-id", run_id]
    return measure(argv, env={URL_ENV: url}, cwd=work).check(f"harness run {' '.join(flags)}")


def _size(work: Path, url: str, n: int, concurrency: int) -> dict[str, Any]:
    suite = write_suite(work, n, concurrency=concurrency)
    submit = _run(suite, url, "batch", "--record", "record", "--batch", "--batch-wait", "none")
    submit_phase = run_phase(suite, "batch")
    ingest = _run(suite, url, "batch", "--resume-run", "--record", "record", "--batch", "--batch-poll", "0.01")
    ingest_phase = run_phase(suite, "batch")
    expect_all_passed(suite, "batch", n)
    replay = _run(suite, url, "replay", "--record", "replay")
    expect_all_passed(suite, "replay", n)
    replay_phase = run_phase(suite, "replay")
    _run(suite, url, "record", "--record", "record", "--cassettes", str(suite.parent / "live-cassettes"))
    expect_all_passed(suite, "record", n)
    return {"submit": submit, "submit_phase": submit_phase, "ingest": ingest, "ingest_phase": ingest_phase,
            "replay": replay, "replay_phase": replay_phase, "record_phase": run_phase(suite, "record")}


def run(n: int = 10_000, concurrency: int = 32) -> list[Row]:
    small_n = max(n // 4, 1)
    with workdir() as work, server(0.0) as url:
        big = _size(work / "big", url, n, concurrency)
        small = _size(work / "small", url, small_n, concurrency)
    ratio = big["ingest_phase"] / big["replay_phase"]
    rss_ratio = big["ingest"].max_rss_mb / big["replay"].max_rss_mb
    ingest_growth = big["ingest"].max_rss_mb - small["ingest"].max_rss_mb
    replay_growth = big["replay"].max_rss_mb - small["replay"].max_rss_mb
    return [
        Row(f"submit {n} trials (spool, upload, create)", secs(big["submit_phase"]), "", "", ""),
        Row("  per trial", ms(big["submit_phase"] / n)),
        Row(f"ingest {n} answers (poll, download, grade, store, record)", secs(big["ingest_phase"]),
            f"replay {secs(big['replay_phase'])}", f"{ratio:.2f}", f"≤ {TARGET_INGEST_OVER_REPLAY}",
            ratio <= TARGET_INGEST_OVER_REPLAY),
        Row("  per trial", ms(big["ingest_phase"] / n), f"replay {ms(big['replay_phase'] / n)}"),
        Row(f"  live recording of {n} trials, zero latency (informative)", secs(big["record_phase"]), "",
            f"{big['ingest_phase'] / big['record_phase']:.2f}"),
        Row(f"peak RSS ingesting {n}", f"{big['ingest'].max_rss_mb:.0f} MB",
            f"replay {big['replay'].max_rss_mb:.0f} MB", f"{rss_ratio:.2f}", f"≤ {TARGET_RSS_OVER_REPLAY}",
            rss_ratio <= TARGET_RSS_OVER_REPLAY),
        Row(f"  RSS growth {small_n} → {n} trials", f"{ingest_growth:+.0f} MB", f"replay {replay_growth:+.0f} MB",
            "", "≤ replay's + 10 MB", ingest_growth <= replay_growth + 10),
        Row("  whole processes (submit / ingest / replay)",
            f"{secs(big['submit'].wall)} / {secs(big['ingest'].wall)} / {secs(big['replay'].wall)}"),
    ]


def sizes(mode: str) -> dict[str, Any]:
    return {
        "full": {"n": 10_000},
        "quick": {"n": 2_000},
        "check": {"n": 40, "concurrency": 4},
    }[mode]


def main(mode: str) -> list[Row]:
    rows = run(**sizes(mode))
    print_table("batch: submission and ingestion (issue 11)", rows)
    return rows


if __name__ == "__main__":
    cli(__doc__, main, "2,000 trials instead of 10,000")

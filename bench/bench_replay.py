"""Replay: N and 10 × N trials replayed from a cassette, with the server stopped, against the bare SDK.

Two suites (N and 10 N cases, exact and regex graders) each record their own cassette once with
``--record record`` against a zero-latency server; the server is then stopped and ``--record replay`` is
timed (whole process: start-up, cassette load, trials, summary). Linear means the 10 N replay takes at most
1.5 × ten times the N replay. The floor is the bare ``AsyncOpenAI`` loop making N calls to a zero-latency
server, measured in the same run.

    python bench/bench_replay.py [--quick | --check-only]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import (
    Measured,
    Row,
    cli,
    delta_ms,
    expect_all_passed,
    harness_run,
    ms,
    print_table,
    sdk_floor,
    secs,
    server,
    workdir,
    write_suite,
)

TARGET_WALL = 3.0  # seconds for 1,000 trials
TARGET_LINEAR = 1.5
TARGET_OVER_SDK_MS = 1.5
GRADERS = ("exact", "regex")


def _replay(suite: Path, n: int, run_id: str) -> Measured:
    measured = harness_run(suite, "replay", None, run_id)
    expect_all_passed(suite, run_id, n)
    return measured


def run(n: int = 1000, factor: int = 10, concurrency: int = 32, repeat: int = 3, repeat_large: int = 1) -> list[Row]:
    big = n * factor
    with workdir() as work:
        small_suite = write_suite(work / "small", n, concurrency=concurrency, graders=GRADERS)
        big_suite = write_suite(work / "big", big, concurrency=concurrency, graders=GRADERS)
        with server(0.0) as url:
            record_big = harness_run(big_suite, "record", url, "record").wall
            harness_run(small_suite, "record", url, "record")
        # The server is gone: a replay that tried the network would fail, not quietly succeed.
        small_runs = [_replay(small_suite, n, f"replay-{i}") for i in range(repeat)]
        big_runs = [_replay(big_suite, big, f"replay-{i}") for i in range(repeat_large)]
        with server(0.0) as url:
            sdk_walls = [sdk_floor(url, n, concurrency).wall for _ in range(repeat)]
    small_walls = [m.wall for m in small_runs]
    small, large, sdk = min(small_walls), min(m.wall for m in big_runs), min(sdk_walls)
    small_cpu = min(m.cpu for m in small_runs)
    linear = large / (factor * small)
    over = (small - sdk) / n
    target_wall = TARGET_WALL * n / 1000
    return [
        Row(f"replay {n} trials (exact + regex)", secs(small), "", "", f"< {secs(target_wall)}",
            small < target_wall),
        Row("  per trial", ms(small / n)),
        Row("  CPU (whole process)", secs(small_cpu)),
        Row(f"replay {big} trials", secs(large), f"{factor} × {n}: {secs(factor * small)}", f"{linear:.2f}",
            f"≤ {TARGET_LINEAR}", linear <= TARGET_LINEAR),
        Row(f"bare AsyncOpenAI, {n} calls, zero latency", secs(sdk), "", "", ""),
        Row("replay per trial over SDK per call", delta_ms(over), f"SDK {ms(sdk / n)}", "",
            f"< {TARGET_OVER_SDK_MS} ms", over < TARGET_OVER_SDK_MS / 1000),
        Row(f"record {big} trials (informative)", secs(record_big), "", "", ""),
        Row("runs (best of)", f"replay {' '.join(f'{w:.2f}' for w in small_walls)}",
            f"SDK {' '.join(f'{w:.2f}' for w in sdk_walls)}"),
    ]


def sizes(mode: str) -> dict[str, Any]:
    return {
        "full": {"n": 1000, "factor": 10, "repeat": 3, "repeat_large": 2},
        "quick": {"n": 1000, "factor": 10, "repeat": 1, "repeat_large": 1},
        "check": {"n": 10, "factor": 5, "concurrency": 4, "repeat": 1, "repeat_large": 1},
    }[mode]


def main(mode: str) -> list[Row]:
    rows = run(**sizes(mode))
    print_table("replay from a cassette (issues 3 and 7.3)", rows)
    return rows


if __name__ == "__main__":
    cli(__doc__, main, "one run of each")

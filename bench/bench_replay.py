"""Replay and recording: suites replayed from their cassettes with the server stopped, against the bare SDK.

- **Inline YAML suite.** 1,000 cases written inline in the suite file (the slow format to load), exact and
  regex graders, recorded once with ``--record record`` against a zero-latency server, then replayed with
  the server stopped (whole process: start-up, suite and cassette load, trials, summary). Judged against the
  bare ``AsyncOpenAI`` loop making the same 1,000 calls to a zero-latency server, in the same run (≤ 0.5×),
  and against 1.5 s (an absolute figure: it holds only on an unloaded machine).
- **Marginal cost, linearity.** JSONL suites of N, 10 N and 100 N cases, each with its own cassette. The
  marginal cost per replayed trial is (t(100 N) − t(N)) / 99 N; linear means the marginal cost from 10 N to
  100 N is at most 1.5 × the one from N to 10 N (nothing grows faster than the number of trials).
- **Recording.** ``--record record`` of the 10 N suite against ``--record live`` of it (same server,
  alternating): recording may add at most 10 % to a live run.

    python bench/bench_replay.py [--quick | --check-only]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import (
    Measured,
    Row,
    cli,
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

TARGET_INLINE_WALL = 1.5  # seconds for 1,000 inline cases, unloaded machine
TARGET_INLINE_OVER_SDK = 0.5
TARGET_MARGINAL_MS = 0.6
TARGET_LINEAR = 1.5
TARGET_RECORD_OVER_LIVE = 1.1
GRADERS = ("exact", "regex")


def _replay(suite: Path, n: int, run_id: str) -> Measured:
    measured = harness_run(suite, "replay", None, run_id)
    expect_all_passed(suite, run_id, n)
    return measured


def _runs(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def run(n: int = 1000, factors: tuple[int, ...] = (1, 10, 100), inline: int = 1000, concurrency: int = 32,
        repeat: int = 3, repeat_record: int = 2) -> list[Row]:
    sizes = [n * f for f in factors]
    record_size = sizes[1]
    with workdir() as work:
        inline_suite = write_suite(work / "inline", inline, concurrency=concurrency, graders=GRADERS, inline=True)
        suites = {size: write_suite(work / f"n{size}", size, concurrency=concurrency, graders=GRADERS)
                  for size in sizes}
        live: list[float] = []
        record: list[float] = []
        with server(0.0) as url:
            harness_run(inline_suite, "record", url, "record")
            for size, suite in suites.items():
                if size == record_size:
                    for i in range(repeat_record):
                        live.append(harness_run(suite, "live", url, f"live-{i}").wall)
                        record.append(harness_run(suite, "record", url, f"record-{i}").wall)
                        expect_all_passed(suite, f"record-{i}", size)
                else:
                    harness_run(suite, "record", url, "record")
            sdk_walls = [sdk_floor(url, inline, concurrency).wall for _ in range(repeat)]
        # The server is gone: a replay that tried the network would fail, not quietly succeed.
        inline_runs = [_replay(inline_suite, inline, f"replay-{i}") for i in range(repeat)]
        replays = {size: [_replay(suite, size, f"replay-{i}").wall for i in range(repeat if size < sizes[-1] else 1)]
                   for size, suite in suites.items()}
    sdk = min(sdk_walls)
    inline_wall = min(m.wall for m in inline_runs)
    best = {size: min(walls) for size, walls in replays.items()}
    small, mid, big = sizes[0], sizes[1], sizes[-1]
    marginal = (best[big] - best[small]) / (big - small)
    low_slope = (best[mid] - best[small]) / (mid - small)
    high_slope = (best[big] - best[mid]) / (big - mid) if big > mid else low_slope
    linear = high_slope / low_slope if low_slope > 0 else float("inf")
    rec_ratio = min(record) / min(live)
    return [
        Row(f"replay {inline} inline-YAML cases, whole process, vs SDK", secs(inline_wall),
            f"SDK {inline} calls at 0 ms {secs(sdk)}", f"{inline_wall / sdk:.2f}× SDK",
            f"≤ {TARGET_INLINE_OVER_SDK}× SDK", inline_wall <= TARGET_INLINE_OVER_SDK * sdk),
        Row(f"replay {inline} inline-YAML cases, absolute (load-dependent)", secs(inline_wall), "", "",
            f"< {TARGET_INLINE_WALL * inline / 1000:g} s", inline_wall < TARGET_INLINE_WALL * inline / 1000),
        Row("  CPU (whole process) / runs", f"{secs(min(m.cpu for m in inline_runs))} / "
            f"{_runs([m.wall for m in inline_runs])}", f"SDK runs {_runs(sdk_walls)}"),
        Row(f"replay marginal cost per trial ({small} → {big})", ms(marginal), f"SDK {ms(sdk / inline)} per call",
            f"{marginal / (sdk / inline):.2f}× SDK per call", f"≤ {TARGET_MARGINAL_MS} ms",
            marginal <= TARGET_MARGINAL_MS / 1000),
        Row(f"replay linear to {big}: marginal {mid} → {big} over {small} → {mid}", f"{linear:.2f}",
            f"{ms(high_slope)} vs {ms(low_slope)}", "", f"≤ {TARGET_LINEAR}", linear <= TARGET_LINEAR),
        *[Row(f"  replay {size} trials (JSONL cases)", secs(best[size]), "", "", "",)
          for size in sizes],
        Row(f"record {record_size} trials vs live", secs(min(record)), f"live {secs(min(live))}",
            f"{rec_ratio:.2f}× live", f"≤ {TARGET_RECORD_OVER_LIVE}× live", rec_ratio <= TARGET_RECORD_OVER_LIVE),
        Row("  runs", f"record {_runs(record)}", f"live {_runs(live)}"),
    ]


def sizes(mode: str) -> dict[str, Any]:
    return {
        "full": {"n": 1000, "factors": (1, 10, 100), "repeat": 2, "repeat_record": 1},
        "quick": {"n": 1000, "factors": (1, 3, 10), "repeat": 1, "repeat_record": 1},
        "check": {"n": 10, "factors": (1, 3, 10), "inline": 20, "concurrency": 4, "repeat": 1, "repeat_record": 1},
    }[mode]


def main(mode: str) -> list[Row]:
    rows = run(**sizes(mode))
    print_table("replay and recording", rows)
    return rows


if __name__ == "__main__":
    cli(__doc__, main, "sizes to 10,000, one run each")

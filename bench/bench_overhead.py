"""Overhead: CPU seconds per trial of ``harness run`` against the bare SDK's per call, at zero latency.

Both run N requests against the same zero-latency server process (which runs in its own process, so its
CPU is not counted). The judged figure is each process's whole CPU time (user + system, start-up and the
harness's summary included) divided by N. Also shown: the marginal cost per trial, from a second run with
N/10 requests ((cpu(N) − cpu(N/10)) / (0.9 N)), which separates the per-trial cost from the fixed one.

    python bench/bench_overhead.py [--quick | --check-only]
"""

from __future__ import annotations

from typing import Any

from common import (
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

TARGET_MS = 0.3


def run(n: int = 1000, concurrency: int = 32, repeat: int = 3) -> list[Row]:
    small = max(1, n // 10)
    cpu: dict[tuple[str, int], list[float]] = {}
    with workdir() as work, server(0.0) as url:
        suites = {size: write_suite(work / f"n{size}", size, concurrency=concurrency) for size in (small, n)}
        for i in range(repeat):
            for size, suite in suites.items():
                cpu.setdefault(("sdk", size), []).append(sdk_floor(url, size, concurrency).cpu)
                cpu.setdefault(("harness", size), []).append(harness_run(suite, "live", url, f"overhead-{i}").cpu)
                expect_all_passed(suite, f"overhead-{i}", size)
    best = {key: min(values) for key, values in cpu.items()}
    per_h, per_s = best["harness", n] / n, best["sdk", n] / n
    marginal = {who: (best[who, n] - best[who, small]) / (n - small) for who in ("harness", "sdk")}
    fixed = {who: best[who, small] - marginal[who] * small for who in ("harness", "sdk")}
    return [
        Row(f"CPU per trial at 0 ms, whole process ({n} trials)", ms(per_h), f"SDK {ms(per_s)}",
            f"SDK {delta_ms(per_h - per_s)} ({per_h / per_s:.2f}×)", f"≤ SDK + {TARGET_MS:g} ms",
            per_h - per_s <= TARGET_MS / 1000),
        Row("CPU per trial, marginal", ms(marginal["harness"]), f"SDK {ms(marginal['sdk'])}",
            delta_ms(marginal["harness"] - marginal["sdk"])),
        Row("CPU fixed per run (start-up, summary)", secs(fixed["harness"]), f"SDK {secs(fixed['sdk'])}"),
        Row(f"CPU whole process ({n} trials)", secs(best["harness", n]), f"SDK {secs(best['sdk', n])}"),
    ]


def sizes(mode: str) -> dict[str, Any]:
    return {
        "full": {"n": 1000, "concurrency": 32, "repeat": 3},
        "quick": {"n": 1000, "concurrency": 32, "repeat": 1},
        "check": {"n": 20, "concurrency": 4, "repeat": 1},
    }[mode]


def main(mode: str) -> list[Row]:
    rows = run(**sizes(mode))
    print_table("overhead at zero latency", rows)
    return rows


if __name__ == "__main__":
    cli(__doc__, main, "smaller N, one run")

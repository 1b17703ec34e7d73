"""Latency-bound live run: N trials against a server that takes L ms per answer, C in flight.

The harness (``harness run --record live``, exact grader) and the bare-SDK floor (``sdk_floor.py``, same
concurrency) run as separate processes against the same server process. The ideal is N × L / C (every
slot busy all the time, zero cost per call); the target is the larger of the ideal and the floor, × 1.25.
Wall times are whole processes (start-up and, for the harness, the summary table included), the best of
``repeat`` alternating runs, so a burst of load from elsewhere on the machine does not decide the result.

    python bench/bench_latency.py [--quick | --check-only]
"""

from __future__ import annotations

from typing import Any

from common import (
    Row,
    cli,
    expect_all_passed,
    harness_run,
    print_table,
    run_phase,
    sdk_floor,
    secs,
    server,
    workdir,
    write_suite,
)

TARGET = 1.25


def run(n: int = 1000, latency_ms: float = 100.0, concurrency: int = 32, repeat: int = 3) -> list[Row]:
    ideal = n * latency_ms / 1000 / concurrency
    walls: list[float] = []
    phases: list[float] = []
    cpus: list[float] = []
    floors: list[float] = []
    with workdir() as work, server(latency_ms) as url:
        suite = write_suite(work, n, concurrency=concurrency)
        for i in range(repeat):
            floors.append(sdk_floor(url, n, concurrency).wall)
            measured = harness_run(suite, "live", url, f"latency-{i}")
            walls.append(measured.wall)
            cpus.append(measured.cpu)
            phases.append(run_phase(suite, f"latency-{i}"))
            expect_all_passed(suite, f"latency-{i}", n)
    wall, floor = min(walls), min(floors)
    reference = max(ideal, floor)
    label = f"{n} trials, {latency_ms:g} ms, concurrency {concurrency}"
    return [
        Row(f"harness wall ({label})", secs(wall), f"ideal {secs(ideal)}", f"{wall / ideal:.2f}×"),
        Row("bare AsyncOpenAI wall (same N, C)", secs(floor), f"ideal {secs(ideal)}", f"{floor / ideal:.2f}×"),
        Row("harness vs max(ideal, floor)", secs(wall), secs(reference), f"{wall / reference:.2f}×",
            f"≤ {TARGET}×", wall <= TARGET * reference),
        Row("  harness run phase only (manifest start → end)", secs(min(phases)), f"ideal {secs(ideal)}",
            f"{min(phases) / ideal:.2f}×"),
        Row("  harness CPU (whole process)", secs(min(cpus))),
        Row("runs (best of)", f"harness {' '.join(f'{w:.2f}' for w in walls)}",
            f"floor {' '.join(f'{f:.2f}' for f in floors)}"),
    ]


def sizes(mode: str) -> dict[str, Any]:
    return {
        "full": {"n": 1000, "latency_ms": 100.0, "concurrency": 32, "repeat": 3},
        "quick": {"n": 400, "latency_ms": 100.0, "concurrency": 32, "repeat": 1},
        "check": {"n": 32, "latency_ms": 10.0, "concurrency": 8, "repeat": 1},
    }[mode]


def main(mode: str) -> list[Row]:
    rows = run(**sizes(mode))
    print_table("latency-bound live run (issue 7.1)", rows)
    return rows


if __name__ == "__main__":
    cli(__doc__, main, "smaller N, one run")

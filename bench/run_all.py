"""Every benchmark in one command; prints one table per benchmark and a PASS/MISS tally.

    python bench/run_all.py              # full sizes (about 12 minutes on 2 cores)
    python bench/run_all.py --quick      # smaller N, one run each (about 3 minutes)
    python bench/run_all.py --check-only # tiny N: proves the scripts run; the timings mean nothing
    python bench/run_all.py --only replay,startup

After the benchmarks' own tables comes one table of every judged target: what was measured, its ratio to
the floor measured in the same run (the bare ``openai`` SDK), the target and PASS/MISS.

Each benchmark is also runnable alone (``python bench/bench_replay.py [--quick]``). Exit code 0 unless a
benchmark crashed, or ``--strict`` and some target was missed: these are measurements, not tests.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

import bench_batch
import bench_latency
import bench_memory
import bench_overhead
import bench_replay
import bench_startup
from common import Row, add_mode_flags, machine, mode_of, print_table

BENCHMARKS = {
    "startup": bench_startup.main,
    "replay": bench_replay.main,
    "latency": bench_latency.main,
    "overhead": bench_overhead.main,
    "memory": bench_memory.main,
    "batch": bench_batch.main,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add_mode_flags(parser, "smaller N, one run each", "tiny N: prove the benchmarks run")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    args = parser.parse_args()
    mode = mode_of(args)
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    print(f"machine: {machine()}")
    print(f"mode: {mode}" + ("  (tiny sizes: timings are not meaningful)" if mode == "check" else ""))
    rows: list[Row] = []
    crashed: list[str] = []
    started = time.perf_counter()
    for name in chosen:
        try:
            rows += BENCHMARKS[name](mode)
        except Exception:  # noqa: BLE001 - report it and carry on with the other benchmarks
            crashed.append(name)
            print(f"\n== {name}: FAILED TO RUN", file=sys.stderr)
            traceback.print_exc()
    judged = [r for r in rows if r.ok is not None]
    missed = [r for r in judged if not r.ok]
    print_table(f"targets ({machine()})", judged)
    print(f"\n{len(judged) - len(missed)} PASS, {len(missed)} MISS, {len(crashed)} crashed "
          f"in {time.perf_counter() - started:.0f} s")
    for row in missed:
        print(f"  MISS: {row.what.strip()}: {row.measured} (target {row.target})")
    if crashed:
        return 2
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

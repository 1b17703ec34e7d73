"""Shared pieces of the benchmarks: the generated suite, the server process, measured subprocesses, tables.

Every measured program (``harness run``, the bare-SDK floor) runs as its own child process and is reaped
with ``os.wait4``, so its wall time, CPU time (user + system) and peak RSS are its own: the fault server,
which also runs in a separate process, is never counted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
URL_ENV = "BENCH_URL"
MODEL_NAME = "fault-server"

if str(REPO) not in sys.path:  # run from a checkout without an install
    sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class Measured:
    """One finished child process: seconds of wall and CPU time, peak resident memory in MB."""

    wall: float
    cpu: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def check(self, what: str) -> Measured:
        if self.returncode != 0:
            raise RuntimeError(f"{what} exited with {self.returncode}:\n{self.stdout[-2000:]}\n{self.stderr[-2000:]}")
        return self


def measure(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            watch: Callable[[int], None] | None = None) -> Measured:
    """Run ``argv`` to completion and measure it alone (``wait4`` gives this child's own rusage).

    ``watch``, if given, is called with the child's pid about every 0.2 s while it runs.
    """
    full_env = {**os.environ, **(env or {})}
    # Measured as an installed package runs: its bytecode cached after the first run (pip compiles the SDK's
    # at install). Without this, an environment that disables bytecode writing recompiles every harness
    # module in every measured process, a fixed cost no user pays.
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full_env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=full_env, cwd=cwd)
        while True:
            pid, status, usage = os.wait4(proc.pid, 0 if watch is None else os.WNOHANG)
            if pid:
                break
            assert watch is not None
            watch(proc.pid)
            time.sleep(0.2)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        return Measured(
            wall=wall, cpu=usage.ru_utime + usage.ru_stime, max_rss_mb=usage.ru_maxrss / 1024,
            returncode=proc.returncode, stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


@contextlib.contextmanager
def server(latency_ms: float = 0.0) -> Iterator[str]:
    """The fault server in its own process with a fixed latency; yields its base URL."""
    from harness.testing.fault_server import FaultConfig, spawn_server

    proc, url = spawn_server(FaultConfig(latency_ms=latency_ms))
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait()


def write_suite(directory: Path, n: int, *, concurrency: int = 32, graders: Sequence[str] = ("exact",),
                inline: bool = False) -> Path:
    """A suite of ``n`` cases, one prompt, one model at ``$BENCH_URL``; returns the suite file.

    The cases are a JSONL file beside the suite, or with ``inline`` a YAML list inside the suite file itself
    (the slower format to load: every case is YAML, with line numbers kept for error messages).
    The fault server echoes the user message, so every case's expected answer is its own text and every
    grader passes: a run that gets its answers crossed shows up as failures in the summary.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if inline:
        cases = "cases:\n" + "".join(
            f"  - id: case-{i}\n    vars:\n      text: hello number {i}\n      expected: hello number {i}\n"
            for i in range(n)
        )
    else:
        with (directory / "cases.jsonl").open("w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps({"id": f"case-{i}", "text": f"hello number {i}", "expected": f"hello number {i}"}))
                fh.write("\n")
        cases = "cases:\n  - file: cases.jsonl\n"
    blocks = {
        "exact": '  - type: exact\n    value: "{{ expected }}"\n',
        "regex": "  - type: regex\n    pattern: '^hello number \\d+$'\n",
    }
    text = (
        "suite: bench\n"
        "models:\n"
        f"  - name: {MODEL_NAME}\n"
        f"    base_url: ${{{URL_ENV}:-http://127.0.0.1:9/v1}}\n"
        "    api_key_env: null\n"
        f"    max_concurrency: {concurrency}\n"
        "temperatures: [0.0]\n"
        "repeats: 1\n"
        "prompts:\n"
        "  v1:\n"
        "    - role: user\n"
        '      content: "{{ text }}"\n'
        + cases
        + "graders:\n" + "".join(blocks[g] for g in graders)
    )
    path = directory / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def rss_mb(pid: int) -> float:
    """Current resident memory of a process, from /proc (0 when it is gone or /proc is missing)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def harness_run(suite: Path, mode: str, url: str | None, run_id: str,
                watch: Callable[[int], None] | None = None) -> Measured:
    """``harness run SUITE --record MODE`` as a measured child, reports and cassettes next to the suite."""
    work = suite.parent
    # Progress stays on: with output to a file it is the plain periodic lines a CI log gets.
    argv = [PYTHON, "-m", "harness", "run", str(suite), "--record", mode, "--run-id", run_id,
            "--reports", str(work / "reports"), "--cassettes", str(work / "cassettes")]
    env = {URL_ENV: url} if url else {URL_ENV: "http://127.0.0.1:9/v1"}  # port 9 (discard): nothing listens
    return measure(argv, env=env, cwd=work, watch=watch).check(f"harness run --record {mode}")


def harness_report(suite: Path, run_id: str) -> Measured:
    """``harness report RUN --format table`` on a finished run, as a measured child."""
    run = suite.parent / "reports" / "bench" / run_id
    return measure([PYTHON, "-m", "harness", "report", str(run), "--format", "table"], cwd=suite.parent).check(
        "harness report"
    )


def results_count(suite: Path, run_id: str) -> tuple[int, int]:
    """(trials stored, trials passed) of a run, read line by line."""
    path = suite.parent / "reports" / "bench" / run_id / "results.jsonl"
    total = passed = 0
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            total += 1
            passed += bool(json.loads(line).get("passed"))
    return total, passed


def expect_all_passed(suite: Path, run_id: str, n: int) -> None:
    """Raise unless run ``run_id`` stored ``n`` trials and all passed: a fast run with crossed answers is no win."""
    stored, passed = results_count(suite, run_id)
    if stored != n or passed != n:
        raise RuntimeError(f"run {run_id}: {stored} results, {passed} passed, expected {n}")


def run_phase(suite: Path, run_id: str) -> float:
    """Seconds between the run's start and end as its manifest records them (no start-up, no summary)."""
    manifest = json.loads((suite.parent / "reports" / "bench" / run_id / "manifest.json").read_text("utf-8"))
    return float(manifest["finished_at"]) - float(manifest["started_at"])


def sdk_floor(url: str, n: int, concurrency: int) -> Measured:
    """The bare ``AsyncOpenAI`` loop (``sdk_floor.py``) as a measured child."""
    argv = [PYTHON, str(BENCH_DIR / "sdk_floor.py"), "--url", url, "--n", str(n), "--concurrency", str(concurrency)]
    return measure(argv).check("sdk_floor.py")


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, {platform.system()} "
            f"{platform.release()}, load average {load}")


@dataclass(frozen=True)
class Row:
    """One line of a benchmark table; ``ok`` is None for rows that only inform."""

    what: str
    measured: str
    reference: str = ""
    ratio: str = ""
    target: str = ""
    ok: bool | None = None


def print_table(title: str, rows: Sequence[Row]) -> None:
    header = ("measure", "measured", "ideal/floor", "ratio", "target", "result")
    body = [(r.what, r.measured, r.reference, r.ratio, r.target,
             "" if r.ok is None else "PASS" if r.ok else "MISS") for r in rows]
    widths = [max(len(str(line[i])) for line in (header, *body)) for i in range(len(header))]
    print(f"\n== {title}")
    for line in (header, tuple("-" * w for w in widths), *body):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    sys.stdout.flush()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def delta_ms(seconds: float) -> str:
    return f"{seconds * 1000:+.3f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


@contextlib.contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    """A scratch folder for a generated suite, its cassettes and reports."""
    path = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    try:
        yield path
    finally:
        if not keep:
            import shutil

            shutil.rmtree(path, ignore_errors=True)



def add_mode_flags(parser: argparse.ArgumentParser, quick_help: str, check_help: str) -> None:
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--check-only", action="store_true", help=check_help)


def mode_of(args: argparse.Namespace) -> str:
    """``full``, ``quick`` or ``check``: the sizes a benchmark runs at, from ``add_mode_flags``'s flags."""
    return "check" if args.check_only else "quick" if args.quick else "full"


def cli(doc: str, main: Callable[[str], object], quick_help: str,
        check_help: str = "tiny N: prove the benchmark runs") -> None:
    """The command line of a benchmark run alone: ``[--quick | --check-only]`` picks the mode for ``main``."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    add_mode_flags(parser, quick_help, check_help)
    main(mode_of(parser.parse_args()))

"""Start-up: ``harness --help`` and ``harness validate`` on the example suites, each under 0.5 s.

Each command runs as a fresh process (the installed ``harness`` script when it sits next to this Python,
else ``python -m harness``); the best wall time of ``repeat`` runs is judged, CPU time is shown. A second
run under ``python -X importtime`` lists which heavy libraries each command imported: ``--help`` should
import none of them, ``validate`` only what checking a suite needs (the YAML, schema and template libraries),
never the SDK or the statistics stack.

    python bench/bench_startup.py [--quick | --check-only]
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from common import PYTHON, REPO, Row, cli, measure, print_table, secs

TARGET = 0.5
HEAVY = ("openai", "httpx2", "pydantic", "scipy", "numpy", "jinja2", "jsonschema", "vcr", "rich", "yaml")
FORBIDDEN = {"--help": set(HEAVY), "validate": {"openai", "httpx2", "pydantic", "scipy", "numpy", "vcr", "rich"}}


def harness_argv() -> list[str]:
    script = Path(PYTHON).with_name("harness")
    return [str(script)] if script.exists() else [PYTHON, "-m", "harness"]


def imported_heavy(args: list[str]) -> set[str]:
    """Top-level heavy packages imported by ``harness ARGS`` (from ``-X importtime``'s log on stderr)."""
    done = measure([PYTHON, "-X", "importtime", "-m", "harness", *args], cwd=REPO)
    names = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+([\w.]+)$", done.stderr, re.MULTILINE))
    return {name.split(".")[0] for name in names} & set(HEAVY)


def run(repeat: int = 5) -> list[Row]:
    examples = sorted(str(p.relative_to(REPO)) for p in (REPO / "suites" / "examples").glob("*.yaml"))
    commands = {"--help": ["--help"], "validate": ["validate", *examples]}
    rows: list[Row] = []
    for name, args in commands.items():
        runs = [measure([*harness_argv(), *args], cwd=REPO).check(f"harness {name}") for _ in range(repeat)]
        best = min(runs, key=lambda m: m.wall)
        heavy = imported_heavy(args)
        bad = heavy & FORBIDDEN[name]
        label = f"harness {name}" + (f" ({len(examples)} example suites)" if name == "validate" else "")
        rows.append(Row(f"{label}, wall", secs(best.wall), "", "", f"< {TARGET} s", best.wall < TARGET))
        rows.append(Row("  CPU / all runs", f"{secs(best.cpu)} / {' '.join(f'{m.wall:.2f}' for m in runs)}"))
        rows.append(Row("  heavy imports", ", ".join(sorted(heavy)) or "none", "", "",
                        "no SDK/scipy/numpy/vcr/rich" if name == "validate" else "none",
                        not bad))
    return rows


def sizes(mode: str) -> dict[str, Any]:
    return {"full": {"repeat": 5}, "quick": {"repeat": 3}, "check": {"repeat": 1}}[mode]


def main(mode: str) -> list[Row]:
    rows = run(**sizes(mode))
    print_table("start-up (issue 7.5)", rows)
    return rows


if __name__ == "__main__":
    os.environ.pop("PYTHONPROFILEIMPORTTIME", None)
    cli(__doc__, main, "fewer repeats", "one run each: prove the benchmark runs")

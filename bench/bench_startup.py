"""Start-up: ``harness --help`` and ``harness validate`` on the example suites, each under 0.5 s; ``harness
validate`` of a suite with 10,000 inline YAML cases under 1 s.

Each command runs as a fresh process (the installed ``harness`` script when it sits next to this Python,
else ``python -m harness``); the best wall time of ``repeat`` runs is judged, CPU time is shown. A second
run under ``python -X importtime`` lists which heavy libraries each command imported: ``--help`` should
import none of them, ``validate`` only what checking a suite needs (the YAML, schema and template libraries),
never the SDK or the statistics stack. The reference in the same run is the bare SDK's start-up
(``python -c "import openai"``): what any program using the SDK pays before its first call.

    python bench/bench_startup.py [--quick | --check-only]
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from common import PYTHON, REPO, Row, cli, measure, print_table, secs, workdir, write_suite

TARGET = 0.5
TARGET_VALIDATE_INLINE = 1.0  # seconds for 10,000 inline cases
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


def run(repeat: int = 5, inline: int = 10_000) -> list[Row]:
    examples = sorted(str(p.relative_to(REPO)) for p in (REPO / "suites" / "examples").glob("*.yaml"))
    commands = {"--help": ["--help"], "validate": ["validate", *examples]}
    sdk = min((measure([PYTHON, "-c", "import openai"], cwd=REPO).check("import openai") for _ in range(repeat)),
              key=lambda m: m.wall)
    rows: list[Row] = []
    for name, args in commands.items():
        runs = [measure([*harness_argv(), *args], cwd=REPO).check(f"harness {name}") for _ in range(repeat)]
        best = min(runs, key=lambda m: m.wall)
        heavy = imported_heavy(args)
        bad = heavy & FORBIDDEN[name]
        label = f"harness {name}" + (f" ({len(examples)} example suites)" if name == "validate" else "")
        rows.append(Row(f"{label}, wall", secs(best.wall), f"SDK import {secs(sdk.wall)}",
                        f"{best.wall / sdk.wall:.2f}× SDK", f"< {TARGET} s", best.wall < TARGET))
        rows.append(Row("  CPU / all runs", f"{secs(best.cpu)} / {' '.join(f'{m.wall:.2f}' for m in runs)}"))
        rows.append(Row("  heavy imports", ", ".join(sorted(heavy)) or "none", "", "",
                        "no SDK/scipy/numpy/vcr/rich" if name == "validate" else "none",
                        not bad))
    with workdir() as work:
        suite = write_suite(work, inline, graders=("exact", "regex"), inline=True)
        runs = [measure([*harness_argv(), "validate", str(suite)], cwd=work).check("harness validate")
                for _ in range(repeat)]
    best = min(runs, key=lambda m: m.wall)
    rows.append(Row(f"harness validate, {inline} inline-YAML cases, wall", secs(best.wall),
                    f"SDK import {secs(sdk.wall)}", f"{best.wall / sdk.wall:.2f}× SDK",
                    f"< {TARGET_VALIDATE_INLINE * inline / 10_000:g} s",
                    best.wall < TARGET_VALIDATE_INLINE * inline / 10_000))
    rows.append(Row("  CPU / all runs", f"{secs(best.cpu)} / {' '.join(f'{m.wall:.2f}' for m in runs)}"))
    return rows


def sizes(mode: str) -> dict[str, Any]:
    return {"full": {"repeat": 3}, "quick": {"repeat": 3}, "check": {"repeat": 1, "inline": 100}}[mode]


def main(mode: str) -> list[Row]:
    rows = run(**sizes(mode))
    print_table("start-up and suite loading", rows)
    return rows


if __name__ == "__main__":
    os.environ.pop("PYTHONPROFILEIMPORTTIME", None)
    cli(__doc__, main, "fewer repeats", "one run each: prove the benchmark runs")

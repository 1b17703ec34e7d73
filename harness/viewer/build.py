"""Building the viewer's site: static files and one JSON file per page under ``data/``.

Rebuilding is incremental: a run's pages are rewritten only when its folder changed (the index's stamp), so
``harness view`` on a reports folder of hundreds of runs redoes only the new ones.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from harness.history.index import HistoryIndex
from harness.store import write_atomic
from harness.viewer.comparedata import compare_data
from harness.viewer.rundata import CASES_PER_PAGE, run_cases, run_summary
from harness.viewer.trends import suite_trends

STATIC = ("index.html", "viewer.js", "viewer.css")
COMPARE_INDEX = "data/compare/index.json"


def slug(*parts: str) -> str:
    """A file name for any text (suite names, run ids, variant labels): readable, safe and unique."""
    text = "\x1f".join(parts)
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))[:60].strip("._") or "x"
    return f"{readable}-{hashlib.blake2b(text.encode(), digest_size=5).hexdigest()}"


def compare_key(suite: str, run_a: str, run_b: str, variant_a: str = "", variant_b: str = "") -> str:
    return "|".join((suite, run_a, run_b, variant_a, variant_b))


def _dump(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")))


def run_paths(suite: str, run_id: str) -> str:
    return f"data/runs/{slug(suite)}/{slug(run_id)}"


def write_run_pages(out: Path, run: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A run's summary and case pages, and whether they were (re)written: skipped when the folder has not
    changed since the last build."""
    base = out / run_paths(run["suite"], run["run_id"])
    stamp_file = base / "stamp.txt"
    if stamp_file.is_file() and stamp_file.read_text(encoding="utf-8") == run["stamp"]:
        cached = _read_json(base / "summary.json")
        if cached is not None:
            return cached, False
    directory = Path(run["path"])
    summary = run_summary(directory)
    labels = [v["variant"] for v in summary["variants"]]
    cases = run_cases(directory, labels)
    pages = [cases[i : i + CASES_PER_PAGE] for i in range(0, len(cases), CASES_PER_PAGE)] or [[]]
    if base.exists():
        shutil.rmtree(base)
    for number, page in enumerate(pages):
        _dump(base / f"cases-{number:04d}.json", {"page": number, "cases": page})
    summary["pages"] = {"count": len(pages), "size": CASES_PER_PAGE, "cases": len(cases),
                        "path": f"{run_paths(run['suite'], run['run_id'])}/cases-"}  # fmt: skip
    summary["case_ids"] = [c["id"] for c in cases]  # the search box finds a case's page without loading all
    _dump(base / "summary.json", summary)
    write_atomic(stamp_file, run["stamp"])
    return summary, True


def write_compare(out: Path, reports_root: Path, suite: str, run_a: str, run_b: str, variant_a: str = "",
                  variant_b: str = "") -> str:  # fmt: skip
    """Compute one comparison into the site; returns its path (relative to the site)."""
    root = reports_root / suite
    data = compare_data(root / run_a, root / run_b, variant_a or None, variant_b or None)
    rel = f"data/compare/{slug(suite)}/{slug(run_a, run_b, variant_a, variant_b)}.json"
    _dump(out / rel, data)
    return rel


def build_site(reports_root: Path, out: Path, log: Callable[[str], None] | None = None) -> Path:
    """Write the site for ``reports_root`` into ``out``; returns the path of its index.html."""
    say = log or (lambda text: print(text, file=sys.stderr))
    index = HistoryIndex(reports_root)
    index.sync()
    out.mkdir(parents=True, exist_ok=True)
    for name in STATIC:
        write_atomic(out / name, resources.files("harness.viewer.static").joinpath(name).read_text(encoding="utf-8"))
    write_atomic(out / "guard.js", resources.files("harness.report").joinpath("guard.js").read_text(encoding="utf-8"))
    compares = _read_json(out / COMPARE_INDEX) or {}
    listing = []
    for suite in index.suites():
        runs = index.runs(suite)
        _dump(out / f"data/suites/{slug(suite)}.json", suite_trends(index, suite))
        previous = None
        for run in runs:
            entry = {k: run[k] for k in ("suite", "run_id", "status", "started_at", "finished_at", "trials_planned",
                                         "trials_done", "commit_sha", "branch", "dirty", "suite_hash")}  # fmt: skip
            entry["data"] = run_paths(suite, run["run_id"])
            entry["trends"] = f"data/suites/{slug(suite)}.json"
            try:
                summary, changed = write_run_pages(out, run)
            except Exception as exc:  # noqa: BLE001 - one unreadable run must not hide every other one
                say(f"note: the viewer skips {run['path']}: {type(exc).__name__}: {exc}")
                continue
            entry["headline"] = summary.get("headline", [])
            entry["baseline"] = summary["settings"]["baseline"]
            entry["variants"] = [{"variant": v["variant"], "pass_rate": v["pass_rate"], "n_cases": v["n_cases"],
                                  "cost_per_case": v["cost_per_case"]} for v in summary["variants"]]  # fmt: skip
            listing.append(entry)
            if run["trials_done"] and previous is not None:
                _precompute(out, reports_root, compares, (suite, previous, run["run_id"], "", ""), changed, say)
            if run["trials_done"]:
                previous = run["run_id"]
        if listing and listing[-1]["suite"] == suite and listing[-1]["baseline"]:
            latest = listing[-1]  # its baseline against each other variant, so a static copy has them too
            for v in latest["variants"]:
                if v["variant"] != latest["baseline"]:
                    key = (suite, latest["run_id"], latest["run_id"], latest["baseline"], v["variant"])
                    _precompute(out, reports_root, compares, key, False, say)
    _dump(out / "data/runs.json", {"runs": listing, "reports": str(reports_root)})
    _dump(out / COMPARE_INDEX, compares)
    return out / "index.html"


def _precompute(out: Path, reports_root: Path, compares: dict[str, str], key: tuple[str, str, str, str, str],
                changed: bool, say: Callable[[str], None]) -> None:  # fmt: skip
    name = compare_key(*key)
    if not changed and name in compares and (out / compares[name]).is_file():
        return
    try:
        compares[name] = write_compare(out, reports_root, *key)
    except Exception as exc:  # noqa: BLE001 - e.g. two runs that share no variant: the page says so
        say(f"note: no comparison {key[1]} → {key[2]}: {exc}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

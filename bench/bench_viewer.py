"""How fast the viewer opens a large run: a synthetic 10,000-trial run, the site built, pages opened in
headless Chromium; the time is the page's own (navigation start to ``data-ready``), so Chromium's start-up
is not counted.

    python bench/bench_viewer.py                 # 10,000 trials (2 variants × 1,000 cases × 5 repeats)
    python bench/bench_viewer.py --cases 200     # smaller

Target (docs/viewer.md): the run page of a 10,000-trial run ready in under 2 s. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.store import GradeRecord, Manifest, ResultsWriter, TrialResult  # noqa: E402
from harness.viewer.build import build_site  # noqa: E402
from harness.viewer.serve import make_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def write_big_run(reports: Path, run_id: str, cases: int, repeats: int, started: float, shift: int) -> None:
    directory = reports / "big" / run_id
    prompts = ["v1", "v2"]
    with ResultsWriter(directory / "results.jsonl") as writer:
        for prompt in prompts:
            for c in range(cases):
                for r in range(repeats):
                    passed = (c * 7 + r + shift + (prompt == "v2")) % 5 != 0
                    output = f"Answer {c} from {prompt}: " + " ".join(f"word{(c + i + shift) % 50}" for i in range(60))
                    writer.write(TrialResult(
                        trial_id=f"{prompt}-{c}-{r}", case_id=f"case-{c:05d}", prompt=prompt, model="m",
                        temperature=0.0, repeat=r, output=output,
                        grades=[GradeRecord("contains", passed, float(passed), "found" if passed else "missing")],
                        passed=passed, score=float(passed), cost=2e-5, latency_ms=300.0 + (c % 97),
                    ))  # fmt: skip
    Manifest(suite="big", run_id=run_id, suite_file="suites/big.yaml", suite_hash="h", harness_version="bench",
             record_mode="m=replay", models=["m"], prompts=prompts, temperatures=[0.0], repeats=repeats,
             trials_planned=2 * cases * repeats, started_at=started, status="complete",
             trials_done=2 * cases * repeats,
             settings={"baseline": {"prompt": "v1", "model": "m", "temperature": 0.0},
                       "gate": {"metrics": ["pass_rate"], "margin": 0.05}}).write(directory)  # fmt: skip


def ready_ms(url: str, profile: Path) -> int:
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
         "--virtual-time-budget=30000", "--dump-dom", "--window-size=1400,1000", url],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    found = re.search(r'data-ready-ms="(\d+)"', proc.stdout)
    if not found or "data-errors" in proc.stdout[:2000]:
        raise RuntimeError(f"page not ready: {url}\n{proc.stdout[:1500]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reports, site = Path(tmp) / "reports", Path(tmp) / "site"
        for i in range(2):
            write_big_run(reports, f"run{i}", args.cases, args.repeats, 1_700_000_000.0 + i, shift=i)
        trials = 2 * args.cases * args.repeats
        start = time.perf_counter()
        build_site(reports, site, log=lambda _: None)
        build = time.perf_counter() - start
        server = make_server(site, reports)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        pages = {"runs": "", "run": "#/run/big/run1", "trends": "#/suite/big", "compare": "#/compare/big/run0/run1"}
        print(f"{trials:,} trials per run, 2 runs; site built in {build:.1f} s")
        for name, route in pages.items():
            times = [ready_ms(url + route, Path(tmp) / f"profile-{name}-{k}") for k in range(3)]
            print(f"  {name:8s} ready in {min(times)} ms (best of 3; all: {times})")
        server.shutdown()


if __name__ == "__main__":
    main()

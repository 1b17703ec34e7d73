"""Merging runs: the shards of one suite, run as ``--shard I/N`` by N CI jobs, become one run.

Shards split the plan by case id (see ``harness.plan.Shard``), so each holds every variant and repeat of its
cases; the merged results are the unsharded run's trials, and the report's statistics (which sort trials and
seed their bootstraps from the suite, not the run) come out identical.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.plan import Shard
from harness.store import RESULTS_FILE, Manifest, atomic_file, read_results, run_dir


@dataclass
class MergeOutcome:
    directory: Path
    manifest: Manifest
    trials: int
    missing_shards: list[str] = field(default_factory=list)
    incomplete_runs: list[str] = field(default_factory=list)  # inputs that did not finish

    @property
    def complete(self) -> bool:
        return self.manifest.status == "complete"


def merged_run_id() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}-merged"


def read_manifest(directory: Path) -> Manifest:
    try:
        return Manifest.read(directory)
    except FileNotFoundError:
        raise HarnessError(f"{directory}: not a run folder (no manifest.json)") from None
    except (ValueError, TypeError) as exc:
        raise HarnessError(f"{directory}/manifest.json is not a valid manifest: {exc}") from None


def _check_same_suite(runs: Sequence[tuple[Path, Manifest]]) -> None:
    first_dir, first = runs[0]
    for directory, manifest in runs[1:]:
        if manifest.suite != first.suite:
            raise HarnessError(f"cannot merge runs of different suites: {first_dir} is {first.suite!r}, "
                               f"{directory} is {manifest.suite!r}")
        if manifest.suite_hash != first.suite_hash:
            raise HarnessError(
                f"cannot merge runs of different versions of suite {first.suite!r}: {first_dir} has suite hash "
                f"{first.suite_hash}, {directory} has {manifest.suite_hash} (the suite or its prompts changed "
                "between the runs; rerun the shards from one commit)"
            )
        if manifest.settings.get("gate") != first.settings.get("gate") \
                or manifest.settings.get("baseline") != first.settings.get("baseline"):
            raise HarnessError(f"cannot merge {first_dir} and {directory}: their gate or baseline settings differ")


def _missing_shards(runs: Sequence[tuple[Path, Manifest]]) -> list[str]:
    """The shards of ``I/N`` not among the runs; refuses a mix of counts, of sharded and not, or a repeat."""
    shards = [(directory, manifest.shard) for directory, manifest in runs]
    if all(shard is None for _, shard in shards):
        return []  # plain runs (say, one per --model): nothing to check
    unsharded = [str(directory) for directory, shard in shards if shard is None]
    if unsharded:
        raise HarnessError(f"cannot merge sharded and unsharded runs: {', '.join(unsharded)} ran without --shard")
    parsed: dict[int, Path] = {}
    count = None
    for directory, text in shards:
        try:
            shard = Shard.parse(str(text))
        except ValueError as exc:
            raise HarnessError(f"{directory}/manifest.json: {exc}") from None
        if count is not None and shard.count != count:
            raise HarnessError(f"cannot merge shards of different splits: {text} in {directory} vs ?/{count}")
        count = shard.count
        if shard.index in parsed:
            raise HarnessError(f"shard {shard} is given twice: {parsed[shard.index]} and {directory}")
        parsed[shard.index] = directory
    assert count is not None
    return [f"{i}/{count}" for i in range(1, count + 1) if i not in parsed]


def _union(lists: Sequence[Sequence[object]]) -> list[object]:
    out: list[object] = []
    for items in lists:
        out.extend(item for item in items if item not in out)
    return out


def merge_runs(run_dirs: Sequence[Path], reports_root: Path, run_id: str | None = None) -> MergeOutcome:
    """Combine runs of one suite into a new run folder ``<reports_root>/<suite>/<run_id>``.

    Refuses runs of different suites or suite versions, a shard given twice, and a trial recorded by two
    runs. A missing shard or an unfinished input does not stop the merge: the merged run is written with
    status ``incomplete`` and the outcome lists what is missing.
    """
    if not run_dirs:
        raise HarnessError("name the runs to merge")
    runs = [(Path(d), read_manifest(Path(d))) for d in run_dirs]
    _check_same_suite(runs)
    missing = _missing_shards(runs)
    first = runs[0][1]
    run_id = run_id or merged_run_id()
    target = run_dir(reports_root, first.suite, run_id)
    if any(target.resolve() == d.resolve() for d, _ in runs):
        raise HarnessError(f"the merged run {target} would overwrite one of its inputs; choose another --run-id")
    if target.exists() and any(target.iterdir()):
        raise HarnessError(f"run folder {target} already exists; choose another --run-id")
    target.mkdir(parents=True, exist_ok=True)
    trials, finished = _write_results(runs, target / RESULTS_FILE)
    incomplete = [str(d) for d, m in runs if m.status != "complete"]
    planned = sum(m.trials_planned for _, m in runs)
    manifest = Manifest(
        suite=first.suite, run_id=run_id, suite_file=first.suite_file, suite_hash=first.suite_hash,
        harness_version=first.harness_version,
        record_mode=",".join(str(m) for m in _union([m.record_mode.split(",") for _, m in runs]) if m),
        models=[str(m) for m in _union([m.models for _, m in runs])],
        prompts=[str(p) for p in _union([m.prompts for _, m in runs])],
        temperatures=[float(t) for t in _union([m.temperatures for _, m in runs])],  # type: ignore[arg-type]
        repeats=first.repeats,
        trials_planned=planned,
        started_at=min(m.started_at for _, m in runs),
        finished_at=max((m.finished_at for _, m in runs if m.finished_at is not None), default=None),
        status="complete" if not missing and not incomplete and finished >= planned else "incomplete",
        trials_done=finished,
        shard=None,
        settings={**first.settings, "merged_from": [{"run": str(d), "run_id": m.run_id, "shard": m.shard,
                                                     "status": m.status} for d, m in runs]},
    )
    manifest.write(target)
    return MergeOutcome(target, manifest, trials, missing, incomplete)


def _write_results(runs: Sequence[tuple[Path, Manifest]], path: Path) -> tuple[int, int]:
    """Stream every input's records into ``path`` (atomically); return (records, finished records)."""
    seen: dict[str, Path] = {}
    records = finished = 0
    try:
        with atomic_file(path) as out:
            for directory, _ in runs:
                for record in read_results(directory / RESULTS_FILE):
                    if record.trial_id in seen:
                        raise HarnessError(
                            f"trial {record.trial_id} ({record.case_id}, {record.variant}, repeat {record.repeat}) "
                            f"is in both {seen[record.trial_id]} and {directory}: these runs overlap, so merging "
                            "them would count it twice"
                        )
                    seen[record.trial_id] = directory
                    out.write(record.to_json() + "\n")
                    records += 1
                    finished += record.finished
    except BaseException:
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the merge wrote nothing else; leave no empty run folder behind
        raise
    return records, finished

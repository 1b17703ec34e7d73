"""pytest plugin: collects prompt-harness suites as gated test items (see docs/gating.md).

``pytest suites/`` (or ``pytest --harness suites/x.yaml``) runs each suite once per session through the same
pipeline as ``harness run`` (replaying from cassettes in CI), then yields one test item per gated comparison
that passes or fails by the gate rule, Holm-adjusted over every comparison the session collected.

This module is loaded into every pytest run of any project that installs prompt-harness, so it does nothing
until a collected file is a suite YAML (top-level ``suite:``) or ``--harness`` is given, and it imports the
harness (numpy, scipy, openai) only then.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.gate import GatedComparison, GateOutcome
    from harness.store import TrialResult

RECORD_MODES = ("replay", "record-missing", "record", "live")
# Suite files elsewhere (e.g. deliberately broken fixtures under tests/) are collected only when named.
DEFAULT_SUITE_DIRS = ("suites",)
_RUNS: pytest.StashKey[dict[Path, SuiteRun]] = pytest.StashKey()
_OUTCOME: pytest.StashKey[GateOutcome] = pytest.StashKey()
_NOTHING: pytest.StashKey[list[str]] = pytest.StashKey()


class HarnessGateWarning(UserWarning):
    """A WARN verdict (not failing without --harness-strict), or a suite too small for its gate mode."""


class GateFailure(Exception):
    """A gated comparison (or a case) failed; the message is the verdict, flips and MDE."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "prompt-harness suites")
    group.addoption("--harness", action="append", default=[], metavar="PATH",
                    help="Collect this suite file or folder of suites (repeatable). Without other paths, only "
                         "these are collected.")
    group.addoption("--harness-record", choices=RECORD_MODES, default=None,
                    help="Cassette mode. Default: as `harness run` (replay in CI or without a key).")
    group.addoption("--harness-reports", default="reports", metavar="DIR", help="Where run folders go.")
    group.addoption("--harness-cassettes", default="cassettes", metavar="DIR", help="Where recordings are.")
    group.addoption("--harness-strict", action="store_true", help="A WARN verdict fails its item too.")
    group.addoption("--harness-baseline", action="append", default=[], metavar="RUN",
                    help="Gate against this baseline run (as `harness gate --baseline`: a run folder, SUITE@RUN_ID, "
                         "SUITE@latest, SUITE@BRANCH such as SUITE@main), matched by suite name; repeatable. "
                         "Lets an in-place prompt edit be gated against the run before it.")
    group.addoption("--harness-per-case", action="store_true",
                    help="Also one item per case and candidate for deterministic suites (temperature 0, one "
                         "repeat): it fails when the case passed under the baseline and fails now.")
    parser.addini("harness_per_case", type="bool", default=False, help="As --harness-per-case.")
    parser.addini("harness_suites", type="args", default=list(DEFAULT_SUITE_DIRS),
                  help="Folders (relative to the rootdir) whose suite files are collected when pytest walks "
                       "them. Default: suites.")


def pytest_configure(config: pytest.Config) -> None:
    paths = config.getoption("harness")
    if not paths:
        return
    # Paths given to --harness replace the default testpaths (they add to explicit positional paths), so
    # `pytest --harness suites/x.yaml` runs that suite and not the project's unit tests.
    if config.args_source is pytest.Config.ArgsSource.ARGS:
        config.args = [*config.args, *paths]
    else:
        config.args = list(paths)


def _wanted(config: pytest.Config, file_path: Path) -> bool:
    """A suite file is collected when it lies in a ``harness_suites`` folder or a ``--harness`` path, or is
    itself named on the command line. Walking any other folder (``pytest tests/``) leaves suite files alone:
    projects keep deliberately broken suites there as fixtures."""
    here = config.invocation_params.dir
    roots = [config.rootpath / entry for entry in config.getini("harness_suites")]
    roots += [here / p for p in config.getoption("harness")]
    named = [here / arg.split("::", 1)[0] for arg in config.args]
    target = file_path.resolve()
    if any(target == p.resolve() for p in named):
        return True
    return any(target.is_relative_to(r.resolve()) for r in roots)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix.lower() not in (".yaml", ".yml"):
        return None
    from harness.suite.discover import is_suite_file

    if not is_suite_file(file_path):
        return None
    if not _wanted(parent.config, file_path):
        return None
    return SuiteFile.from_parent(parent, path=file_path)


@dataclass
class SuiteRun:
    """One suite's run in this session and the comparisons it gates (verdicts final after collection)."""

    directory: Path
    deterministic: bool
    items: list[GatedComparison]
    results: list[TrialResult]
    notes: list[str] = field(default_factory=list)


def _resolve(config: pytest.Config, option: str) -> Path:
    path = Path(config.getoption(option))
    return path if path.is_absolute() else config.invocation_params.dir / path


def _run_suite(config: pytest.Config, path: Path) -> SuiteRun:
    from harness.errors import ReplayMissError, RunIncompleteError
    from harness.gate import in_run_comparisons, load, run_vs_run_comparisons
    from harness.pipeline import RunOptions, run_suite
    from harness.suite import load_suite

    suite = load_suite(path)
    # Resolved before this session's run exists, so SUITE@latest or SUITE@main never names the run itself.
    baseline_dir = _baseline_for(config, suite.name)
    options = RunOptions(reports_root=_resolve(config, "harness_reports"),
                         cassettes_root=_resolve(config, "harness_cassettes"),
                         record=config.getoption("harness_record"), progress=False)  # fmt: skip
    outcome = run_suite(suite, options)
    if outcome.interrupted:
        raise KeyboardInterrupt
    misses = outcome.execute.replay_misses
    if misses:
        listed = "\n".join(f"  {trial.describe()}" for trial, _ in misses[:10])
        more = f"\n  … and {len(misses) - 10} more" if len(misses) > 10 else ""
        raise ReplayMissError(
            f"{path}: {len(misses)} trial(s) have no recording in {options.cassettes_root}/{suite.name}/:\n"
            f"{listed}{more}\nrecord them with (needs the model's key variable):\n"
            f"  harness run {path} --record record-missing   (or pytest --harness-record record-missing)"
        )
    if outcome.execute.down or outcome.execute.skipped_down:
        why = "; ".join(f"{m}: {reason}" for m, reason in outcome.execute.down.items())
        raise RunIncompleteError(f"{path}: {outcome.execute.skipped_down} trial(s) not run ({why})")
    run = load(outcome.directory)
    if baseline_dir is not None:
        items, notes = run_vs_run_comparisons(run, load(baseline_dir))
    else:
        items, notes = in_run_comparisons(run)
    deterministic = all(float(t) == 0.0 for t in suite.temperatures) and suite.repeats == 1
    return SuiteRun(outcome.directory, deterministic, items, run.results, notes)


def _baseline_for(config: pytest.Config, suite: str) -> Path | None:
    """The --harness-baseline run of this suite, if one was given (each spec may name several suites' runs)."""
    specs = config.getoption("harness_baseline")
    if not specs:
        return None
    from harness.run_names import resolve_runs
    from harness.store import Manifest

    reports = _resolve(config, "harness_reports")
    for spec in specs:
        for directory in resolve_runs(spec, reports) if "@" not in spec or spec.startswith(f"{suite}@") else []:
            if Manifest.read(directory).suite == suite:
                return directory
    return None


def _suite_run(config: pytest.Config, path: Path) -> SuiteRun:
    runs = config.stash.setdefault(_RUNS, {})
    key = path.resolve()
    if key not in runs:
        runs[key] = _run_suite(config, path)
    return runs[key]


def _per_case(config: pytest.Config) -> bool:
    return bool(config.getoption("harness_per_case") or config.getini("harness_per_case"))


class SuiteFile(pytest.File):
    """A suite YAML: runs the suite (once per session) and yields its gated comparisons."""

    def collect(self) -> Iterator[pytest.Item]:
        run = _suite_run(self.config, self.path)
        if not run.items:
            yield NothingToGate.from_parent(self, name="gate", why=_nothing_to_gate(self.path, run))
        for gated in run.items:
            yield GateItem.from_parent(self, name=f"{gated.metric}[{gated.short_name}]", gated=gated)
        if not _per_case(self.config):
            return
        if not run.deterministic:
            warnings.warn(HarnessGateWarning(
                f"{self.path}: per-case items need temperature 0 and one repeat; this suite samples, so only "
                "its gated comparisons are collected"), stacklevel=1)  # fmt: skip
            return
        yield from _case_items(self, run)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        from harness.errors import HarnessError

        if isinstance(excinfo.value, HarnessError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


def _case_items(parent: SuiteFile, run: SuiteRun) -> Iterator[pytest.Item]:
    from harness.stats.cases import by_variant

    variants = by_variant(run.results)
    pairs = {(g.baseline_key, g.candidate_key) for g in run.items if g.baseline_run is None}
    for base_key, cand_key in sorted(pairs):
        base = {t.case_id: t for t in variants.get(base_key, [])}
        for trial in variants.get(cand_key, []):
            same_model_and_temperature = (base_key[0], base_key[2]) == (cand_key[0], cand_key[2])
            name = f"{trial.case_id}[{trial.prompt if same_model_and_temperature else trial.variant}]"
            yield CaseItem.from_parent(parent, name=name, trial=trial, baseline=base.get(trial.case_id))


def _nothing_to_gate(path: Path, run: SuiteRun) -> str:
    because = "; ".join(run.notes) or "it has one variant and no baseline run"
    return (f"{path}: nothing to gate ({because}). Compare against an earlier run with --harness-baseline "
            "SUITE@main (or a run folder), or add a second prompt version or model to the suite.")


class NothingToGate(pytest.Item):
    """Stands for a suite with no comparison, so pytest says why instead of "no tests ran" (exit 5)."""

    def __init__(self, *, why: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.why = why

    def runtest(self) -> None:
        self.config.stash.setdefault(_NOTHING, []).append(self.why)
        pytest.skip(self.why)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "nothing to gate"


class GateItem(pytest.Item):
    """One gated comparison: fails on BLOCK (and on WARN under --harness-strict)."""

    def __init__(self, *, gated: GatedComparison, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gated = gated

    def runtest(self) -> None:
        from harness.report.gate_text import failure_text, verdict_line

        outcome = self.config.stash.get(_OUTCOME, None)
        gated = self.gated
        c = gated.comparison
        self.user_properties += [("verdict", gated.verdict.value), ("p_holm", c.p_holm), ("delta", c.delta)]
        fails = outcome.fails(gated) if outcome is not None else gated.comparison.gate.fails
        if fails:
            raise GateFailure(failure_text(gated))
        if gated.verdict.value == "WARN":
            warnings.warn(HarnessGateWarning(verdict_line(gated)), stacklevel=1)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, GateFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"gate {self.gated.name}"


class CaseItem(pytest.Item):
    """One case of a deterministic suite under one candidate: fails when it passed under the baseline and
    fails now. At temperature 0 such a flip is the prompt's doing, not sampling noise."""

    def __init__(self, *, trial: TrialResult, baseline: TrialResult | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trial = trial
        self.baseline = baseline

    def runtest(self) -> None:
        from harness.report.gate_text import clip

        now_ok = self.trial.error is None and self.trial.passed is True
        was_ok = self.baseline is not None and self.baseline.error is None and self.baseline.passed is True
        self.user_properties.append(("passed", now_ok))
        if was_ok and not now_ok:
            why = [g for g in self.trial.grades if g.passed is False or g.error]
            reason = (f"{why[0].grader}: {why[0].error or why[0].reason}" if why
                      else (self.trial.error.message if self.trial.error else "undecided"))  # fmt: skip
            raise GateFailure(
                f"case {self.trial.case_id} passed under the baseline and fails under {self.trial.variant}\n"
                f"  baseline:  {clip(self.baseline.output if self.baseline else None, 400)}\n"
                f"  candidate: {clip(self.trial.output, 400)}\n  why:       {clip(reason, 400)}"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, GateFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"case {self.name}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Holm over every comparison the session gates (before -k/-m deselect any: the family is what ran)."""
    gate_items = [i for i in items if isinstance(i, GateItem)]
    if not gate_items:
        return
    from harness.gate import decide

    runs = config.stash.get(_RUNS, {})
    notes = [n for run in runs.values() for n in run.notes]
    outcome = decide([i.gated for i in gate_items], fail_on_warn=config.getoption("harness_strict"), notes=notes)
    for item, final in zip(gate_items, outcome.items, strict=True):
        item.gated = final
    config.stash[_OUTCOME] = outcome
    for warning in outcome.warnings:
        warnings.warn(HarnessGateWarning(warning), stacklevel=1)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    outcome = config.stash.get(_OUTCOME, None)
    nothing = config.stash.get(_NOTHING, [])
    if outcome is None:
        if nothing:
            terminalreporter.section("prompt-harness gate")
            for why in nothing:
                terminalreporter.write_line(why)
        return
    from harness.report.gate_text import summary_line, verdict_line

    terminalreporter.section("prompt-harness gate")
    for why in nothing:
        terminalreporter.write_line(why)
    for item in outcome.items:
        terminalreporter.write_line(verdict_line(item))
    for note in outcome.notes:
        terminalreporter.write_line(f"note: {note}")
    terminalreporter.write_line(summary_line(outcome, exit_code=False))

"""``harness run --changed-since REF``: which suites a change touched, from ``git diff``.

A suite counts as changed when any file it reads changed since REF: the suite file, its prompt files, its
case files, the files its graders reference (``schema_file``, a ``python`` grader's module) and its
cassettes. A whole suite runs, so its baseline variant is evaluated next to the changed prompt. The diff is
taken from the merge base of REF and HEAD (what a pull request changed, not what ``main`` gained since the
branch left it), plus uncommitted and untracked files, so a local run sees work in progress too.
"""

from __future__ import annotations

import inspect
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from harness.errors import HarnessError, SuiteError, SuiteErrors
from harness.suite.model import GraderSpec, Suite


def _git(args: Sequence[str], cwd: Path) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise HarnessError("--changed-since needs git, which is not installed") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        raise HarnessError(f"git {' '.join(args)} failed: {detail[-1] if detail else 'exit ' + str(done.returncode)}")
    return done.stdout


def repo_root(cwd: Path) -> Path:
    return Path(_git(["rev-parse", "--show-toplevel"], cwd).strip()).resolve()


def changed_files(ref: str, cwd: Path | None = None) -> set[Path]:
    """Absolute paths changed since the merge base of ``ref`` and HEAD, working tree and untracked included."""
    cwd = Path.cwd() if cwd is None else cwd
    root = repo_root(cwd)
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
    except HarnessError:
        raise HarnessError(f"--changed-since {ref}: no such commit, branch or tag in {root} "
                           "(in CI, fetch it first, e.g. actions/checkout with fetch-depth: 0)") from None
    try:
        base = _git(["merge-base", ref, "HEAD"], root).strip()
    except HarnessError:
        base = ref  # unrelated histories: compare with the ref itself
    names = _git(["diff", "--name-only", "-z", base], root).split("\0")
    names += _git(["ls-files", "--others", "--exclude-standard", "-z"], root).split("\0")
    return {(root / name).resolve() for name in names if name}


def _grader_files(specs: Iterable[GraderSpec], suite_dir: Path) -> Iterator[Path]:
    for spec in specs:
        for key, value in spec.raw.items():
            if key.endswith("_file") and isinstance(value, str):
                yield (suite_dir / value).resolve()
        function = getattr(spec.grader, "function", None)
        if callable(function):
            source = inspect.getsourcefile(function)
            if source:
                yield Path(source).resolve()


def suite_files(suite: Suite) -> set[Path]:
    """Every file the suite reads: its own, prompts, cases and the files its graders reference."""
    files = {Path(p).resolve() for p in suite.files}
    files.update(_grader_files(suite.graders, suite.dir))
    for case in suite.iter_cases():
        files.update(_grader_files(case.graders, suite.dir))
    return files


def touches(suite: Suite, changed: set[Path], cassettes_root: Path | None = None) -> bool:
    """Whether a changed path is one of the suite's files or lies in its cassette folder (a re-recording,
    including a deleted cassette, changes what a replay returns)."""
    if suite_files(suite) & changed:
        return True
    if cassettes_root is None:
        return False
    folder = (cassettes_root / suite.name).resolve()
    return any(path.is_relative_to(folder) for path in changed)


def changed_suites(paths: Sequence[Path], ref: str, cassettes_root: Path | None = Path("cassettes"),
                   cwd: Path | None = None) -> list[Path]:
    """The suite files among ``paths`` that read a file changed since ``ref``, in the given order.

    A suite that no longer loads is kept when its own file changed, so the run reports the error rather
    than skipping it; otherwise the load error is raised.
    """
    from harness.suite.loader import load_suite

    changed = changed_files(ref, cwd)
    selected = []
    for path in paths:
        own = Path(path).resolve()
        try:
            suite = load_suite(path, check_cases=False)
        except (SuiteError, SuiteErrors):
            if own in changed:
                selected.append(path)
                continue
            raise
        if touches(suite, changed, cassettes_root):
            selected.append(path)
    return selected

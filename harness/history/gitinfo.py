"""Where a run came from in version control: commit, branch and whether the work tree had edits.

Recorded in every run's manifest so the history can say "main at 3f2c1a0" for each point of a trend, and
``SUITE@main`` can find the latest run of a branch. Outside a git work tree (or without git) it is None.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

# CI checks out a detached HEAD; these variables still name the branch that was built.
_CI_BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME")


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10,
                              check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(directory: Path) -> dict[str, Any] | None:
    """``{"commit", "branch", "dirty"}`` for the work tree holding ``directory``; None outside one.

    ``branch`` is None on a detached HEAD unless a CI variable names it; ``dirty`` counts tracked edits
    and untracked files (a suite edited but not committed is exactly what makes a run unrepeatable).
    """
    directory = directory if directory.is_dir() else directory.parent
    commit = _git(directory, "rev-parse", "HEAD")
    if not commit:
        return None
    branch = _git(directory, "symbolic-ref", "--quiet", "--short", "HEAD")
    if not branch:
        branch = next((os.environ[v] for v in _CI_BRANCH_VARIABLES if os.environ.get(v)), None)
    status = _git(directory, "status", "--porcelain", "--untracked-files=normal")
    return {"commit": commit, "branch": branch, "dirty": None if status is None else bool(status)}

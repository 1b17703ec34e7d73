"""`--changed-since`: which suites a change touched, on a real temporary git repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.changes import changed_files, changed_suites
from harness.cli import cli
from harness.cli.common import run_cli
from harness.errors import EXIT_OK, HarnessError

MODEL = """\
models:
  - name: m
    base_url: http://127.0.0.1:9/v1
    api_key_env: null
"""

SUITE_A = MODEL + """\
suite: alpha
prompts:
  v1:
    - {role: user, content: "{{ q }}"}
  v2: {file: prompts/alpha_v2.yaml}
cases:
  - file: ../evals/alpha.jsonl
graders:
  - type: json_schema
    schema_file: ../evals/alpha.schema.json
  - type: python
    function: "checks:short"
"""

SUITE_B = MODEL + """\
suite: beta
prompts:
  v1:
    - {role: user, content: "{{ q }}"}
cases:
  - id: one
    vars: {q: hello}
graders:
  - {type: contains, value: hello}
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=repo,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    files = {
        "pyproject.toml": "[project]\nname = 'demo'\n",
        "suites/alpha.yaml": SUITE_A,
        "suites/beta.yaml": SUITE_B,
        "suites/prompts/alpha_v2.yaml": "messages:\n  - {role: user, content: 'Q: {{ q }}'}\n",
        "suites/checks.py": "def short(output, context):\n    return len(output) < 100\n",
        "evals/alpha.jsonl": '{"id": "a1", "q": "hi"}\n',
        "evals/alpha.schema.json": '{"type": "object"}\n',
        "cassettes/beta/m.json": "{}\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "start")
    monkeypatch.chdir(tmp_path)
    return tmp_path


SUITES = [Path("suites/alpha.yaml"), Path("suites/beta.yaml")]


def names(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_nothing_changed_selects_nothing(repo: Path) -> None:
    assert changed_suites(SUITES, "HEAD") == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("suites/prompts/alpha_v2.yaml", ["alpha"]),  # a prompt file
        ("evals/alpha.jsonl", ["alpha"]),  # a case file
        ("evals/alpha.schema.json", ["alpha"]),  # a grader's schema_file
        ("suites/checks.py", ["alpha"]),  # a python grader's module
        ("suites/beta.yaml", ["beta"]),  # the suite file itself
        ("cassettes/beta/m.json", ["beta"]),  # a re-recording changes what a replay returns
    ],
)
def test_a_change_to_any_file_a_suite_reads_selects_it(repo: Path, path: str, expected: list[str]) -> None:
    with (repo / path).open("a", encoding="utf-8") as fh:
        fh.write("\n" if not path.endswith(".jsonl") else '{"id": "a2", "q": "yo"}\n')
    assert names(changed_suites(SUITES, "HEAD")) == expected


def test_untracked_and_deleted_files_count(repo: Path) -> None:
    (repo / "cassettes" / "beta" / "m.json").unlink()
    assert names(changed_suites(SUITES, "HEAD")) == ["beta"]
    git(repo, "checkout", "-q", "--", "cassettes")
    (repo / "notes.txt").write_text("unrelated\n", encoding="utf-8")
    assert changed_suites(SUITES, "HEAD") == []
    assert (repo / "notes.txt").resolve() in changed_files("HEAD")
    (repo / "cassettes" / "alpha").mkdir()
    (repo / "cassettes" / "alpha" / "m.json").write_text("{}\n", encoding="utf-8")
    assert names(changed_suites(SUITES, "HEAD")) == ["alpha"]


def test_a_branch_is_compared_with_where_it_left_the_ref(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "evals" / "alpha.schema.json").write_text('{"type": "array"}\n', encoding="utf-8")
    git(repo, "commit", "-q", "-am", "pr: change alpha's schema")
    git(repo, "checkout", "-q", "main")
    (repo / "suites" / "beta.yaml").write_text(SUITE_B.replace("hello}", "hello there}"), encoding="utf-8")
    git(repo, "commit", "-q", "-am", "main moved on: beta")
    git(repo, "checkout", "-q", "pr")
    # beta changed on main after the branch point: not this branch's change.
    assert names(changed_suites(SUITES, "main")) == ["alpha"]


def test_a_suite_that_no_longer_loads_is_kept_when_its_own_file_changed(repo: Path) -> None:
    (repo / "suites" / "beta.yaml").write_text(SUITE_B.replace("prompts:", "prompt:"), encoding="utf-8")
    assert names(changed_suites(SUITES, "HEAD")) == ["beta"]


def test_bad_refs_and_missing_repositories_are_clear_errors(repo: Path, tmp_path_factory: pytest.TempPathFactory,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(HarnessError, match="--changed-since no-such-branch: no such commit"):
        changed_suites(SUITES, "no-such-branch")
    monkeypatch.chdir(tmp_path_factory.mktemp("not-a-repo"))
    with pytest.raises(HarnessError, match="git rev-parse --show-toplevel failed"):
        changed_files("HEAD")


def test_run_with_nothing_changed_runs_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["harness", "run", "suites", "--changed-since", "HEAD"])
    assert run_cli(cli) == EXIT_OK
    assert "no suite changed since HEAD; nothing to run" in capsys.readouterr().out
    assert not (repo / "reports").exists()

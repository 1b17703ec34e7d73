"""The catalogue of broken suites: every one is refused with exit 2 and a located message, never a traceback.

Each ``tests/bad_suites/*.yaml`` starts with header comments saying what the error must look like::

    # expect: <a substring of the message>
    # line: <the line the message must name>
    # field: <the field path the message must name>
    # file: <optional: the file the error is in, relative to bad_suites/, when not the suite itself>
    # absent: <optional: text the output must not contain, e.g. a pasted key>

Both ``harness validate`` and ``harness run --record replay`` run on every entry, each in its own process
with its own exit code, stdout and stderr. Starting ~130 interpreters would cost half a minute of CPU on a
shared machine, so one clean interpreter imports the harness once and forks a child per command, which
calls the console script's entry point (``harness.cli.main``) exactly as ``harness ...`` would. A few
entries also go through the installed console script itself (``test_console_script_refuses``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CATALOGUE_DIR = Path(__file__).resolve().parent / "bad_suites"
CATALOGUE = sorted(CATALOGUE_DIR.glob("*.yaml"))
HARNESS = shutil.which("harness", path=str(Path(sys.executable).parent)) or "harness"
COMMANDS = ("validate", "run")

# Reads one JSON job per line ({"args", "stdout", "stderr"}), forks a child that runs `harness <args>` with
# its output in those files, and answers with the child's exit code and wall time.
FORK_RUNNER = r"""
import json, os, sys, time, traceback
import harness.cli, harness.pipeline  # imported once; every child starts warm
for line in sys.stdin:
    job = json.loads(line)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
        sys.argv = ["harness", *job["args"]]
        try:
            harness.cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"code": os.waitstatus_to_exitcode(status), "seconds": time.perf_counter() - start}),
          flush=True)
"""


@dataclass(frozen=True)
class Expected:
    substring: str
    line: int
    field: str
    file: str  # as the message shows it: relative to the repository root (the processes' cwd)
    absent: str | None = None


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float


def expected(path: Path) -> Expected:
    header: dict[str, str] = {}
    # Bytes decoded leniently: one catalogue entry is itself not UTF-8.
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        if not line.startswith("# ") or ":" not in line:
            break
        key, _, value = line[2:].partition(":")
        header.setdefault(key.strip(), value.strip())
    file = (path.parent / header["file"]) if "file" in header else path
    return Expected(header["expect"], int(header["line"]), header["field"], str(file.relative_to(REPO)),
                    header.get("absent"))


def arguments(command: str, suite: Path, tmp: Path) -> list[str]:
    if command == "validate":
        return ["validate", str(suite.relative_to(REPO))]
    return ["run", str(suite.relative_to(REPO)), "--record", "replay", "--quiet",
            "--reports", str(tmp / "reports"), "--cassettes", str(tmp / "cassettes")]


def clean_env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("HARNESS_TEST_SURELY_UNSET", None)
    return env


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Outcome]:
    tmp = tmp_path_factory.mktemp("bad_suites")
    jobs = {(path.stem, command): arguments(command, path, tmp) for path in CATALOGUE for command in COMMANDS}
    lines = []
    for n, args in enumerate(jobs.values()):
        lines.append(json.dumps({"args": args, "stdout": str(tmp / f"{n}.out"), "stderr": str(tmp / f"{n}.err")}))
    done = subprocess.run([sys.executable, "-c", FORK_RUNNER], input="\n".join(lines) + "\n", cwd=REPO,
                          env=clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(jobs)
    results = {
        key: Outcome(answer["code"], (tmp / f"{n}.out").read_text(encoding="utf-8"),
                     (tmp / f"{n}.err").read_text(encoding="utf-8"), answer["seconds"])
        for n, (key, answer) in enumerate(zip(jobs, answers, strict=True))
    }
    slowest = sorted(results.items(), key=lambda item: item[1].seconds, reverse=True)[:3]
    print("\nslowest refusals (warm process): "
          + ", ".join(f"{name} {cmd} {o.seconds * 1000:.0f} ms" for (name, cmd), o in slowest))
    # Nothing may have been run or written for a suite that failed to load.
    assert not (tmp / "reports").exists()
    assert not (tmp / "cassettes").exists()
    return results


def test_catalogue_covers_every_kind_of_bad_input() -> None:
    assert len(CATALOGUE) >= 110
    names = {path.stem for path in CATALOGUE}
    for kind in ("yaml_", "type_", "unknown_", "missing_", "undecodable_", "empty_", "duplicate_case_id",
                 "unknown_grader", "invalid_regex", "invalid_json_schema", "template_syntax",
                 "template_undefined", "sandbox_", "python_os_system", "file_escape_", "yaml_alias_bomb",
                 "temperature_negative", "temperature_not_number", "repeats_zero",
                 # issue 14: numbers, endpoints, dates, CSV shape, template loading and bombs, filters by
                 # attribute name, python modules that exit, credentials, $ref, deep and NUL input
                 "number_nan_", "number_inf_", "base_url_file_scheme", "base_url_no_scheme", "base_url_bad_port",
                 "type_label_date", "case_file_csv_short_row", "case_file_csv_duplicate_header",
                 "template_include", "template_import", "template_extends", "template_power_bomb",
                 "template_repeat_bomb", "template_macro_recursion", "sandbox_map_attribute",
                 "sandbox_selectattr", "sandbox_sort_attribute", "sandbox_groupby", "sandbox_sum_attribute",
                 "python_sys_exit_at_import", "credential_", "api_key_env_key_shaped", "schema_ref_http",
                 "schema_ref_file_uri_outside", "schema_ref_relative_outside", "yaml_nul_byte",
                 "yaml_nested_5000", "case_file_jsonl_nested_deep", "yaml_unclosed_bracket"):
        assert any(name.startswith(kind) for name in names), kind


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("suite", CATALOGUE, ids=[p.stem for p in CATALOGUE])
def test_bad_suite_is_refused_with_a_located_message(
    suite: Path, command: str, outcomes: dict[tuple[str, str], Outcome]
) -> None:
    want = expected(suite)
    got = outcomes[(suite.stem, command)]
    assert got.code == 2, got.stderr
    assert "Traceback" not in got.stderr and "Traceback" not in got.stdout
    assert f"{want.file}:{want.line}: {want.field}: " in got.stderr, got.stderr
    assert want.substring in got.stderr, got.stderr
    if want.absent:
        assert want.absent not in got.stderr + got.stdout


@pytest.mark.parametrize(("name", "command"), [("yaml_alias_bomb", "run"), ("template_undefined_var", "validate")])
def test_console_script_refuses(name: str, command: str, tmp_path: Path) -> None:
    """The installed ``harness`` script itself, cold: exit 2, the located message, no traceback."""
    suite = CATALOGUE_DIR / f"{name}.yaml"
    want = expected(suite)
    start = time.perf_counter()
    done = subprocess.run([HARNESS, *arguments(command, suite, tmp_path)], cwd=REPO, env=clean_env(),
                          capture_output=True, text=True, timeout=60)
    print(f"\nharness {command} {name}: {time.perf_counter() - start:.2f} s from a cold start")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{want.file}:{want.line}: {want.field}: " in done.stderr
    assert want.substring in done.stderr


def test_fifty_megabyte_case_file_streams(tmp_path: Path) -> None:
    """A valid 50 MB JSONL case file loads without being held in memory."""
    (tmp_path / "pyproject.toml").write_text("")
    row_text = "lorem ipsum dolor sit amet " * 190  # ~5 KB per case
    size = 0
    with (tmp_path / "big.jsonl").open("w", encoding="utf-8") as fh:
        index = 0
        while size < 50 * 1024 * 1024:
            line = f'{{"id": "c{index}", "vars": {{"text": "{row_text}{index}"}}}}\n'
            fh.write(line)
            size += len(line)
            index += 1
    (tmp_path / "big.yaml").write_text(
        "suite: big\nmodels:\n  - name: m\n    api_key_env: null\n"
        "prompts:\n  v1:\n    - role: user\n      content: '{{ text }}'\n"
        "cases:\n  - file: big.jsonl\ngraders:\n  - type: contains\n    value: lorem\n",
        encoding="utf-8",
    )
    # Measured in a child of a fresh interpreter so the figure is the validation's own peak, not pytest's.
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stderr.write(done.stdout + done.stderr)\n"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe, HARNESS, "validate", "big.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    code, peak_kb = (int(x) for x in done.stdout.split())
    assert code == 0, done.stderr
    assert "ok: big.yaml (big: 1 models, 1 prompts)" in done.stderr
    # A baseline validation of a tiny suite, to subtract the interpreter and its imports.
    (tmp_path / "small.jsonl").write_text('{"id": "c0", "vars": {"text": "x"}}\n', encoding="utf-8")
    (tmp_path / "small.yaml").write_text(
        (tmp_path / "big.yaml").read_text(encoding="utf-8").replace("big", "small"), encoding="utf-8"
    )
    base = subprocess.run([sys.executable, "-c", probe, HARNESS, "validate", "small.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    base_code, base_kb = (int(x) for x in base.stdout.split())
    assert base_code == 0, base.stderr
    growth_mb = (peak_kb - base_kb) / 1024
    print(f"\nvalidating {size / 2**20:.0f} MB of cases: {seconds:.1f} s, peak RSS {peak_kb / 1024:.0f} MB, "
          f"{growth_mb:.1f} MB above a one-case suite")
    assert growth_mb < 10, f"validation grew by {growth_mb:.1f} MB: the case file is not streamed"


def test_missing_key_in_live_mode_exits_2_before_any_trial(tmp_path: Path) -> None:
    variable = "HARNESS_TEST_KEY_THAT_IS_NOT_SET"
    suite = tmp_path / "live.yaml"
    suite.write_text(
        "suite: live\nmodels:\n  - name: m\n    base_url: http://127.0.0.1:9/v1\n"
        f"    api_key_env: {variable}\n"
        "prompts:\n  v1:\n    - role: user\n      content: hi\ncases:\n  - id: one\n"
        "graders:\n  - type: contains\n    value: hi\n",
        encoding="utf-8",
    )
    (tmp_path / "pyproject.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if k != variable}
    done = subprocess.run(
        [HARNESS, "run", "live.yaml", "--record", "live", "--quiet", "--reports", "reports"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert variable in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "reports").exists(), "no run folder may be created before the keys are checked"

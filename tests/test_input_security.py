"""Security holes closed at the edges: schema ``$ref`` confinement, run ids that cannot leave their root,
credentials kept out of suites, one permission rule for every file written, and deep input that fails
with a message instead of a traceback."""

from __future__ import annotations

import http.server
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_subprocess_fixtures import write_echo_suite

from harness.errors import HarnessError, SuiteError
from harness.execute.cassette import Cassette, CassetteError
from harness.grade.base import GradeContext, Output
from harness.grade.json_schema import JsonSchema
from harness.grade.python import Python
from harness.store.files import atomic_file, file_mode
from harness.store.results import plain_name, run_dir
from harness.suite import load_suite
from harness.suite.checks import check_no_credentials
from harness.testing.fault_server import FaultServer

HARNESS = str(Path(sys.executable).parent / "harness")


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        type(self).hits.append(self.path)
        body = b'{"type": "integer"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on a free local port that serves a schema and records every request."""
    _CountingHandler.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", _CountingHandler.hits
    finally:
        server.shutdown()
        server.server_close()


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    return project


def _schema_suite(folder: Path, ref: str, schema_file: str | None = None) -> Path:
    grader = (f"  - type: json_schema\n    schema_file: {schema_file}\n" if schema_file else
              "  - type: json_schema\n    schema:\n      type: object\n      properties:\n"
              f"        a: {{$ref: '{ref}'}}\n")
    path = folder / "suite.yaml"
    path.write_text("suite: refs\nmodels:\n  - name: m\n    api_key_env: null\n"
                    "prompts:\n  v1:\n    - role: user\n      content: hi\ncases:\n  - id: one\n"
                    "graders:\n" + grader, encoding="utf-8")
    return path


def _grade(grader: JsonSchema, text: str) -> bool | None:
    return grader.grade(Output(text=text), GradeContext(case_id="one", vars={})).passed


def test_schema_ref_over_http_is_never_fetched(tmp_path: Path, schema_server: tuple[str, list[str]]) -> None:
    url, hits = schema_server
    suite = _schema_suite(_project(tmp_path), f"{url}/int.json")
    with pytest.raises(SuiteError) as caught:
        load_suite(suite)
    assert caught.value.location.field == "graders[0].schema"
    assert "never fetched from the network" in caught.value.message
    assert hits == []  # the server was there and answering: the harness did not ask


def test_schema_ref_inside_the_project_resolves_relative_to_the_schema_file(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "schemas").mkdir()
    (project / "schemas" / "int.json").write_text('{"type": "integer"}')
    (project / "schemas" / "out.json").write_text(
        '{"type": "object", "properties": {"a": {"$ref": "int.json"}}, "required": ["a"]}')
    suite = load_suite(_schema_suite(project, "", schema_file="schemas/out.json"))
    grader = suite.graders[0].grader
    assert isinstance(grader, JsonSchema)
    assert _grade(grader, '{"a": 3}') is True
    assert _grade(grader, '{"a": "three"}') is False


def test_schema_ref_chain_leaving_the_project_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (tmp_path / "secret.json").write_text('{"const": "the content of a private file"}')
    (project / "inner.json").write_text('{"$ref": "../secret.json"}')
    with pytest.raises(SuiteError) as caught:
        load_suite(_schema_suite(project, "inner.json"))
    assert "outside the project root" in caught.value.message
    assert "private file" not in caught.value.message


def test_schema_ref_through_a_symlink_out_of_the_project_is_refused(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (tmp_path / "secret.json").write_text('{"type": "string"}')
    (project / "link.json").symlink_to(tmp_path / "secret.json")
    with pytest.raises(SuiteError, match="outside the project root"):
        load_suite(_schema_suite(project, "link.json"))


def test_an_inline_schema_without_a_project_cannot_refer_to_files() -> None:
    from harness.grade.base import GraderConfigError

    with pytest.raises(GraderConfigError, match="cannot refer to files"):
        JsonSchema(schema={"$ref": "file:///etc/hostname"})


@pytest.mark.parametrize("name", ["../../x", "..", ".", "a/b", "/abs", ".hidden", "a\\b", "", "x" * 201])
def test_run_ids_that_are_paths_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="must be a plain name"):
        run_dir(tmp_path, "suite", name)
    assert plain_name("pr-42.retry_1", "run id") == "pr-42.retry_1"


@pytest.mark.parametrize("flag", ["--run-id", "--resume"])
def test_cli_refuses_a_run_id_escaping_the_reports_folder(flag: str, tmp_path: Path) -> None:
    project = _project(tmp_path)
    suite = write_echo_suite(project, "http://127.0.0.1:9/v1", suite="ids", n_cases=1, concurrency=1,
                             retry="{max_attempts: 1}")
    done = subprocess.run([HARNESS, "run", str(suite), flag, "../../escaped", "--record", "replay", "--quiet",
                           "--reports", str(project / "reports")], cwd=project, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert "must be a plain name" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "escaped").exists() and not (project / "escaped").exists()
    assert not (project / "reports").exists()


def test_credential_checks_leave_ordinary_params_alone() -> None:
    check_no_credentials({"max_tokens": 5, "max_completion_tokens": 9, "top_p": 1, "stop": ["\n\n"],
                          "extra_headers": {"X-Request-Source": "ci", "Accept-Language": "en"},
                          "response_format": {"type": "json_object"}}, "s.yaml", "params", 3)
    with pytest.raises(SuiteError) as caught:
        check_no_credentials({"extra_headers": {"x-api-key": "abc"}}, "s.yaml", "params", 3)
    assert caught.value.location.field == "params.extra_headers.x-api-key"
    assert "abc" not in str(caught.value) and "api_key_env" in caught.value.message


def test_python_grader_calling_sys_exit_while_grading_is_undecided(tmp_path: Path) -> None:
    (tmp_path / "quits.py").write_text("import sys\n\ndef check(output, context):\n    sys.exit(0)\n")
    grader = Python(function="quits:check", suite_dir=str(tmp_path))
    grade = grader.grade(Output(text="x"), GradeContext(case_id="one", vars={}))
    assert grade.passed is None
    assert "SystemExit" in (grade.error or "")


def test_cassette_nested_too_deeply_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"interactions": ' + "[" * 100_000 + "]" * 100_000 + ', "version": 1}')
    with pytest.raises(CassetteError) as caught:
        Cassette(path)
    assert str(path) in str(caught.value)
    assert "nested too deeply" in str(caught.value)
    assert caught.value.exit_code == 2


def test_replay_with_a_deeply_nested_cassette_exits_2_naming_it(tmp_path: Path) -> None:
    project = _project(tmp_path)
    suite = write_echo_suite(project, "http://127.0.0.1:9/v1", suite="deep", n_cases=1, concurrency=1,
                             retry="{max_attempts: 1}")
    cassette = project / "cassettes" / "deep" / "fault-server.json"
    cassette.parent.mkdir(parents=True)
    cassette.write_text('{"interactions": ' + "[" * 100_000 + "]" * 100_000 + ', "version": 1}')
    done = subprocess.run([HARNESS, "run", str(suite), "--record", "replay", "--quiet",
                           "--reports", str(project / "reports")], cwd=project, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "fault-server.json" in done.stderr and "nested too deeply" in done.stderr


def _run_under_umask(folder: Path, base_url: str, mask: int) -> list[Path]:
    suite = write_echo_suite(folder, base_url, suite="perms", n_cases=3, concurrency=2,
                             retry="{max_attempts: 2, base_delay: 0.001, max_delay: 0.01}")
    done = subprocess.run([HARNESS, "run", str(suite), "--record", "record", "--quiet", "--run-id", "r1",
                           "--reports", str(folder / "reports"), "--cassettes", str(folder / "cassettes"),
                           "--format", "json"],
                          cwd=folder, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(mask))  # noqa: PLW1509 - only sets the umask
    assert done.returncode == 0, done.stderr
    report = subprocess.run([HARNESS, "report", str(folder / "reports" / "perms" / "r1"), "--format", "html",
                             "--output", str(folder / "reports" / "perms" / "r1" / "report.html")],
                            cwd=folder, capture_output=True, text=True, timeout=120,
                            preexec_fn=lambda: os.umask(mask))  # noqa: PLW1509
    assert report.returncode == 0, report.stderr
    return [p for root in ("reports", "cassettes") for p in (folder / root).rglob("*")]


@pytest.mark.parametrize("mask", [0o077, 0o022])
def test_every_file_written_follows_the_umask(mask: int, tmp_path: Path) -> None:
    with FaultServer() as server:
        written = _run_under_umask(tmp_path, server.base_url, mask)
    files = [p for p in written if p.is_file()]
    names = {p.name for p in files}
    assert {"manifest.json", "results.jsonl", "fault-server.json", "report.html"} <= names, names
    for path in written:
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        assert stat.S_IMODE(path.stat().st_mode) == expected, (path, oct(path.stat().st_mode))


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("old")
    path.chmod(0o600)
    with atomic_file(path) as fh:
        fh.write("new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fresh = tmp_path / "fresh.json"
    assert file_mode(fresh) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

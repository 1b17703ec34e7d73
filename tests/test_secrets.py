"""No secret reaches disk: a recognisable fake key goes through record, replay, report, gate and merge, and is
found in no file written and in no output, though the server did receive it."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.testing.fault_server import FaultConfig, FaultServer

HARNESS = shutil.which("harness", path=str(Path(sys.executable).parent)) or "harness"
KEY = "sk-test-LEAKCHECK-1234567890abcdef"
# Any of these in a file or a log means the key (or a recognisable piece of it) leaked.
NEEDLES = [KEY, "LEAKCHECK", "1234567890abcdef", base64.b64encode(KEY.encode()).decode(),
           base64.b64encode(f"Bearer {KEY}".encode()).decode()]


def write_suite(folder: Path, base_url: str) -> None:
    (folder / "pyproject.toml").write_text("")
    (folder / "suite.yaml").write_text(
        "suite: secrets\n"
        "models:\n"
        f"  - name: gpt-4o-mini\n    id: keyed\n    base_url: {base_url}\n    api_key_env: OPENAI_API_KEY\n"
        "    price: {input: 0.15, output: 0.6}\n"
        "temperatures: [0.0, 0.7]\nrepeats: 2\n"
        "prompts:\n  v1:\n    - role: user\n      content: 'Is {{ item }} a fruit?'\n"
        "  v2:\n    - role: user\n      content: 'Fruit? {{ item }}'\n"
        "baseline: {prompt: v1, model: keyed, temperature: 0.0}\n"
        "cases:\n" + "".join(f"  - {{id: c{i}, vars: {{item: {item}}}}}\n"
                             for i, item in enumerate(["apple", "stone", "pear", "rock"], 1))
        + "graders:\n  - type: contains\n    value: 'yes'\n",
        encoding="utf-8",
    )


def record_authorization(server: FaultServer, seen: list[str]) -> None:
    """Note every Authorization header the server gets (the fault server keeps no headers of its own)."""
    app: Any = server._app  # the test needs the request headers, which only the app sees
    answer = app._api

    async def api(request: Any, writer: Any) -> bool:
        seen.append(request.headers.get("authorization", ""))
        return await answer(request, writer)

    app._api = api


def test_no_secret_reaches_disk_or_logs(tmp_path: Path) -> None:
    seen: list[str] = []
    summary = tmp_path / "step-summary.md"
    env = {**os.environ, "OPENAI_API_KEY": KEY, "NO_COLOR": "1", "GITHUB_STEP_SUMMARY": str(summary)}
    logs: list[str] = []

    def harness(*args: str, codes: tuple[int, ...] = (0,)) -> None:
        done = subprocess.run([HARNESS, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        logs.append(done.stdout + done.stderr)
        assert done.returncode in codes, done.stderr
        assert "Traceback" not in done.stderr

    with FaultServer(FaultConfig(rules={"apple": "yes", "pear": "yes"}, vary_by_sample=True)) as server:
        record_authorization(server, seen)
        write_suite(tmp_path, server.base_url)
        harness("validate", "suite.yaml")
        harness("run", "suite.yaml", "--record", "record", "--run-id", "rec")
        # A provider's "incorrect API key" error, stored with its trial, must not carry the key either.
        server.config = FaultConfig(rules={"apple": "yes"}, fault_rates={"401": 0.3})
        harness("run", "suite.yaml", "--record", "live", "--run-id", "denied", codes=(0, 4))
    harness("run", "suite.yaml", "--record", "replay", "--run-id", "rep", "--shard", "1/1")
    harness("report", "reports/secrets/rec")  # writes report.md, report.json and report.html
    harness("gate", "reports/secrets/rep", "--baseline", "reports/secrets/rec", "--junit", "out/junit.xml",
            "--markdown", "out/gate.md", codes=(0, 1))
    harness("merge", "rep", "--run-id", "merged")
    harness("cassettes", "suite.yaml", codes=(0, 1, 2))

    assert seen and all(header == f"Bearer {KEY}" for header in seen), "the server must have received the key"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.parts[-3:-1] == ("cassettes", "secrets") for p in written), "the run must have recorded"
    assert {"report.html", "report.md", "report.json", "junit.xml", "gate.md"} <= {p.name for p in written}
    assert summary.exists(), "the gate wrote its step summary"
    for path in written:
        data = path.read_bytes()
        for needle in NEEDLES:
            assert needle.encode() not in data, f"{needle!r} leaked into {path.relative_to(tmp_path)}"
    for log in logs:
        for needle in NEEDLES:
            assert needle not in log, f"{needle!r} leaked into the output:\n{log}"


@pytest.mark.parametrize("mode", ["record", "live"])
def test_missing_key_names_the_variable_and_not_a_value(tmp_path: Path, mode: str) -> None:
    write_suite(tmp_path, "http://127.0.0.1:9/v1")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run([HARNESS, "run", "suite.yaml", "--record", mode, "--quiet"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "OPENAI_API_KEY" in done.stderr and "Traceback" not in done.stderr

"""Shared by the tests that run ``harness run`` as a subprocess against the in-process fault server.

No tests here (the ``test_`` prefix only puts it on pytest's import path, as with the other fixture modules).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def harness_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m harness``."""
    script = Path(sys.executable).with_name("harness")
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness"]


def write_echo_suite(folder: Path, base_url: str, *, suite: str, n_cases: int, concurrency: int, retry: str,
                     case_text: str = "text {i}", temperatures: str | None = None) -> Path:
    """A suite of ``n_cases`` cases whose text (``case_text`` with ``{i}`` filled in) the server echoes.

    The only grader checks that the answer contains ``text``, so every trial that gets an answer passes.
    ``retry`` is the suite's retry block as inline YAML.
    """
    with (folder / "cases.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(n_cases):
            fh.write(json.dumps({"id": f"c{i:03d}", "text": case_text.format(i=i)}) + "\n")
    path = folder / "suite.yaml"
    path.write_text(
        f"suite: {suite}\n"
        "models:\n"
        "  - name: fault-server\n"
        f"    base_url: {base_url}\n"
        "    api_key_env: null\n"
        f"    max_concurrency: {concurrency}\n"
        "    timeout: 5\n"
        + (f"temperatures: {temperatures}\n" if temperatures else "")
        + f"retry: {retry}\n"
        "prompts:\n  v1:\n    - {role: user, content: '{{ text }}'}\n"
        "cases:\n  - file: cases.jsonl\n"
        "graders:\n  - {type: contains, value: text}\n",
        encoding="utf-8",
    )
    return path


def cli_loading(args: list[str], modules: list[str], cwd: Path, env: dict[str, str]) -> tuple[str, dict[str, bool]]:
    """Run ``harness ARGS`` in a fresh interpreter; return its standard output and, for each of ``modules``,
    whether the command had imported it by the end. Fails the test when the command exits non-zero."""
    import subprocess

    code = (
        "import json, sys\n"
        "from harness.cli import main\n"
        "wanted = json.loads(sys.argv[1])\n"
        "sys.argv = ['harness', *sys.argv[2:]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "print('LOADED ' + json.dumps({m: m in sys.modules for m in wanted}), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, json.dumps(modules), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED "))
    return done.stdout, json.loads(line.removeprefix("LOADED "))

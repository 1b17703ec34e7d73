"""``harness run`` in-process: what the command does around the library's ``run_suite``."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_cli_subprocess_fixtures import write_echo_suite

import harness.pipeline
from harness.cli import cli
from harness.testing.fault_server import FaultServer


def test_run_freezes_the_heap_while_trials_run_and_unfreezes_it_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen_during: list[int] = []
    real_run_suite = harness.pipeline.run_suite

    def spy(*args: Any, **kwargs: Any) -> Any:
        frozen_during.append(gc.get_freeze_count())
        return real_run_suite(*args, **kwargs)

    monkeypatch.setattr(harness.pipeline, "run_suite", spy)
    assert gc.get_freeze_count() == 0
    with FaultServer() as server:
        suite = write_echo_suite(tmp_path, server.base_url, suite="gc", n_cases=3, concurrency=2,
                                 retry="{max_attempts: 2, base_delay: 0.001, max_delay: 0.01, outage_after: 50}")
        args = ["run", str(suite), "--record", "live", "--reports", str(tmp_path / "reports"), "--quiet"]
        result = CliRunner().invoke(cli, args, standalone_mode=False)
    assert result.exception is None, result.stderr
    assert result.return_value == 0
    assert len(frozen_during) == 1 and frozen_during[0] > 0
    # The test process (like any in-process caller) gets its garbage collector back as it was.
    assert gc.get_freeze_count() == 0

"""The ``harness`` command. Thin: each subcommand parses flags and calls the library.

Subcommand modules import heavy libraries inside their functions, so ``harness --help`` stays fast.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from typing import Any

import click

from harness import __version__

# name -> module under harness.cli that defines a click command of that name
COMMANDS = {
    "run": "run",
    "validate": "validate",
    "report": "report",
    "compare": "compare",
    "gate": "gate",
    "power": "power",
    "cassettes": "cassettes",
    "calibrate": "calibrate",
    "merge": "merge",
    "regrade": "regrade",
    "history": "history",
    "view": "view",
    "batch": "batch",
    "batches": "batches",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._module(name) is not None]

    def _module(self, name: str) -> Any:
        try:
            return importlib.import_module(f"harness.cli.{COMMANDS[name]}")
        except ModuleNotFoundError as exc:
            if exc.name == f"harness.cli.{COMMANDS[name]}":
                return None
            raise

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = self._module(cmd_name)
        return None if module is None else getattr(module, "command", None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prompt-harness")
def cli() -> None:
    """Evaluate prompts across models, replay offline, compare with confidence intervals, gate CI.

    Exit codes: 0 ok, 1 regression (gate BLOCK), 2 bad usage or invalid suite, 3 replay miss,
    4 run could not finish, 130 interrupted.
    """


def main() -> None:
    # The statistics work on arrays of at most a few thousand numbers, where BLAS threads only cost: OpenBLAS
    # starts one spinning thread per core when numpy loads (about 0.2 s of CPU per command on 2 cores) and
    # they compete with the event loop. Set before numpy is imported; a value the user set wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # At interpreter exit, freeze what is still alive so the final garbage collections skip it: with the SDK
    # and scipy loaded they take ~0.2 s of every command. Files are still closed and ordinary finalizers run;
    # only objects in reference cycles keep their __del__ uncalled, which Python never promises at exit.
    # Registered as an exit handler so it runs only when the process really ends (not when a test calls main).
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    from harness.cli.common import run_cli

    sys.exit(run_cli(cli))

"""Errors the harness raises on purpose, and the CLI exit code each maps to."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_REPLAY_MISS = 3
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """Base class: a failure the user can act on, printed without a traceback."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Location:
    """Where in an input file a value came from; ``line`` is 1-based, ``None`` when unknown."""

    file: str
    line: int | None = None
    field: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}" if self.field else where


class SuiteError(HarnessError):
    """Invalid suite or referenced file. The message names the file, line and field."""

    exit_code = EXIT_USAGE

    def __init__(self, location: Location, message: str) -> None:
        self.location = location
        self.message = message
        super().__init__(f"{location}: {message}")


class SuiteErrors(HarnessError):
    """Several suite errors found in one pass, reported together."""

    exit_code = EXIT_USAGE

    def __init__(self, errors: list[SuiteError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class TemplateError(HarnessError):
    """A prompt template could not be rendered (syntax, undefined variable, sandbox refusal)."""

    exit_code = EXIT_USAGE


class ReplayMissError(HarnessError):
    """A request had no recording in ``replay`` mode."""

    exit_code = EXIT_REPLAY_MISS


class RunIncompleteError(HarnessError):
    """The run could not finish: provider errors after retries. Finished trials are kept."""

    exit_code = EXIT_INCOMPLETE


class StorageError(RunIncompleteError):
    """A results, manifest or cassette file could not be written (a full disk): the run stops (exit 4) with
    nothing half-written; finished trials and their recordings are kept, and a resume continues."""

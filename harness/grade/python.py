"""``python``: a user function from a file in the suite's folder decides."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from harness.grade._common import clip_plain, is_fraction, opt_fraction, opt_mapping, opt_str
from harness.grade.base import Grade, GradeContext, Grader, GraderConfigError, Output, register

_DICT_KEYS = {"passed", "score", "reason", "details"}
EVALS_FOLDER = "evals"  # the project folder for datasets, schemas and custom graders (README "Layout")


def _relative_file(module: str) -> PurePosixPath:
    """The file a ``module`` reference names, relative to the suite folder; refuses anything outside it."""
    if "/" in module or "\\" in module or module.endswith(".py"):
        posix = PurePosixPath(module.replace("\\", "/"))
        if posix.is_absolute() or PureWindowsPath(module).is_absolute() or PureWindowsPath(module).drive:
            raise GraderConfigError("function", f"refused {module!r}: absolute paths are not allowed")
        # '..' is allowed (``../evals/graders.py``); where the file resolves to is checked by the caller.
        if posix.suffix != ".py":
            raise GraderConfigError("function", f"refused {module!r}: a file path must end in .py")
        return posix
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        raise GraderConfigError(
            "function",
            f"refused {module!r}: give a module in the suite folder as 'checks', 'pkg.checks' or "
            "'graders/checks.py'",
        )
    return PurePosixPath(*parts).with_suffix(".py")


def load_function(reference: str, suite_dir: str, grader: bool = True, root: str | None = None) -> Callable[..., Any]:
    """Load ``module:function`` from a file named relative to ``suite_dir``, by path and under a private name.
    The file must lie inside ``suite_dir`` or, given the project ``root``, inside its ``evals/`` folder (so
    ``../../evals/graders.py`` works and ``../../harness/cli/run.py`` does not).

    ``grader`` checks that the function takes ``(output, context)``; tool functions (``tool_functions:``)
    take the model's arguments instead and skip that check.

    Loading by path (not by import name through ``sys.path``) is what keeps ``os:system`` or an installed
    package from being reached: only files inside the suite folder can be named. This is not a sandbox;
    the file itself runs with the harness's privileges, as any test code does.
    """
    module, sep, function = reference.rpartition(":")
    if not sep or not module or not function.isidentifier():
        raise GraderConfigError("function", f"expected 'module:function', got {reference!r}")
    folder = Path(suite_dir).resolve()
    evals = Path(root).resolve() / EVALS_FOLDER if root else None
    relative = _relative_file(module)
    path = (folder / relative).resolve()
    # Resolving follows symlinks, so a link pointing out of the allowed folders is caught here too.
    if not path.is_relative_to(folder) and (evals is None or not path.is_relative_to(evals)):
        leaves = "'..' would leave the suite folder" if ".." in relative.parts else "outside the suite folder"
        also = f" and is not in the project's {EVALS_FOLDER}/ folder {evals}" if evals else ""
        raise GraderConfigError("function", f"refused {module!r}: {leaves}{also} ({path})")
    if not path.is_file():
        raise GraderConfigError(
            "function",
            f"no file {relative} from the suite folder {folder}: the python grader loads only files from the "
            f"suite's own folder{f' or the project evals/ folder {evals}' if evals else ''}, never installed or "
            "standard-library modules",
        )
    private_name = "_harness_user_grader_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(private_name, path)
    if spec is None or spec.loader is None:
        raise GraderConfigError("function", f"cannot load {path} as a Python module")
    loaded = importlib.util.module_from_spec(spec)
    # Registered while it runs: dataclasses and typing look a class's module up in sys.modules.
    sys.modules[private_name] = loaded
    try:
        spec.loader.exec_module(loaded)
    except (Exception, SystemExit) as exc:
        # SystemExit too: a module calling sys.exit(0) at import would otherwise end `harness validate` or
        # `harness run` with exit 0 and nothing said.
        del sys.modules[private_name]
        what = f"SystemExit({exc.code!r}) (it calls sys.exit)" if isinstance(exc, SystemExit) \
            else f"{type(exc).__name__}: {clip_plain(str(exc))}"
        raise GraderConfigError("function", f"importing {relative} raised {what}") from None
    target = getattr(loaded, function, None)
    if not callable(target):
        raise GraderConfigError("function", f"{relative} has no function {function!r}")
    if not grader:
        return target
    try:
        inspect.signature(target).bind(None, None)
    except TypeError as exc:
        raise GraderConfigError("function", f"{reference} must accept (output, context): {exc}") from exc
    except ValueError:
        pass  # no introspectable signature (a builtin); the call itself will tell
    return target


def _rendered(value: Any, ctx: GradeContext) -> Any:
    """Options with every string rendered as a template against the case's variables (a fresh copy)."""
    if isinstance(value, str):
        return ctx.render(value) if "{" in value else value
    if isinstance(value, Mapping):
        return {k: _rendered(v, ctx) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rendered(v, ctx) for v in value]
    return copy.deepcopy(value)


@register
class Python(Grader):
    """A user function in a file of the suite's folder decides, for checks no built-in grader covers.

    The function is called as ``function(output, context)`` with the output text and a dict holding
    ``case_id``, ``vars``, ``tool_calls`` (dicts with ``id``, ``name`` and the raw JSON ``arguments``),
    ``steps`` (each model turn's calls, in order, for tool round trips; one turn otherwise),
    ``messages``, ``finish_reason`` and ``options``. It may be ``async``. It returns ``True``/``False``;
    a score in [0, 1] (passing at ``threshold``); a dict with ``passed`` and/or ``score``, plus optional
    ``reason`` and ``details``; or a ``Grade``. Anything else, or an exception, makes the grade undecided.

    Args:
        function: ``"module:function"``; the module is a file named relative to the suite's folder, as
            ``checks`` (checks.py), ``pkg.checks`` (pkg/checks.py), ``graders/checks.py`` or
            ``../../evals/graders.py``. It must lie in the suite's folder or the project's ``evals/`` folder
            (the project: the folder holding pyproject.toml or .git); absolute paths, other folders and
            installed or standard-library modules are refused. Loaded when the suite loads. See
            docs/graders.md for the whole contract.
        suite_dir: the suite's folder; the suite loader passes it.
        root: the project root files must stay in; the suite loader passes it.
        threshold: the score at or above which a returned score passes (default 0.5).
        options: a mapping handed to the function as ``context["options"]``; its strings are templates,
            rendered per case like every grader's string options (``"{{ expected }}"``).
    """

    name = "python"

    def __init__(
        self,
        *,
        function: str | None = None,
        suite_dir: str | None = None,
        root: str | None = None,
        threshold: float = 0.5,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.reference = opt_str("function", function)
        directory = opt_str("suite_dir", suite_dir)
        if not Path(directory).is_dir():
            raise GraderConfigError("suite_dir", f"suite_dir {directory!r} is not a folder")
        self.threshold = opt_fraction("threshold", threshold)
        self.options = {} if options is None else dict(opt_mapping("options", options))
        self.function = load_function(self.reference, directory, root=root)

    def _context(self, output: Output, ctx: GradeContext) -> dict[str, Any]:
        # Copies, so one grader's function cannot change what the next grader sees.
        return {
            "case_id": ctx.case_id,
            "vars": copy.deepcopy(dict(ctx.vars)),
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in output.tool_calls],
            "steps": [[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
                      for calls in output.call_steps],
            "messages": [copy.deepcopy(dict(message)) for message in ctx.messages],
            "finish_reason": output.finish_reason,
            "options": _rendered(self.options, ctx),
        }

    def _raised(self, exc: BaseException) -> Grade:
        return Grade.undecided(f"{self.reference} raised {type(exc).__name__}: {clip_plain(str(exc))}")

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        try:
            result = self.function(output.text, self._context(output, ctx))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code failing is undecided, not a crash
            return self._raised(exc)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            return Grade.undecided(f"{self.reference} is async; grade it with agrade")
        return self.to_grade(result)

    async def agrade(self, output: Output, ctx: GradeContext) -> Grade:
        try:
            result = self.function(output.text, self._context(output, ctx))
            if inspect.isawaitable(result):
                result = await result
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code failing is undecided, not a crash
            return self._raised(exc)
        return self.to_grade(result)

    def _score_grade(self, score: float, reason: str | None) -> Grade:
        passed = score >= self.threshold
        relation = "≥" if passed else "<"
        why = reason or f"score {score:.3g} {relation} threshold {self.threshold:g}"
        return Grade(passed=passed, score=float(score), reason=why)

    def to_grade(self, result: Any) -> Grade:
        """Interpret what the user function returned."""
        returned = f"{self.reference} returned"
        if isinstance(result, Grade):
            return result
        if isinstance(result, bool):
            return Grade.ok(f"{returned} True") if result else Grade.fail(f"{returned} False")
        if isinstance(result, int | float):
            if not is_fraction(result):
                return Grade.undecided(f"{returned} score {result!r}, outside [0, 1]")
            return self._score_grade(float(result), None)
        if isinstance(result, Mapping):
            return self._dict_grade(result)
        if result is None:
            return Grade.undecided(f"{returned} None; return a bool, a score, a dict or a Grade")
        return Grade.undecided(
            f"{returned} a {type(result).__name__}; return a bool, a score, a dict or a Grade"
        )

    def _dict_grade(self, result: Mapping[str, Any]) -> Grade:
        returned = f"{self.reference} returned"
        unknown = sorted(set(map(str, result)) - _DICT_KEYS)
        if unknown:
            # A typo such as "pass" for "passed" must not silently change the verdict.
            return Grade.undecided(
                f"{returned} a dict with unknown keys {unknown}; allowed: {sorted(_DICT_KEYS)}"
            )
        passed, score, reason = result.get("passed"), result.get("score"), result.get("reason")
        details = result.get("details")
        if passed is not None and not isinstance(passed, bool):
            return Grade.undecided(f"{returned} passed={passed!r}; it must be true or false")
        if score is not None and not is_fraction(score):
            return Grade.undecided(f"{returned} score={score!r}; it must be a number in [0, 1]")
        if reason is not None and not isinstance(reason, str):
            return Grade.undecided(f"{returned} reason={reason!r}; it must be a string")
        if details is not None and not isinstance(details, Mapping):
            return Grade.undecided(f"{returned} details={details!r}; it must be a mapping")
        if passed is None and score is None:
            return Grade.undecided(f"{returned} a dict with neither 'passed' nor 'score'")
        if passed is None:
            grade = self._score_grade(float(score), reason)
        else:
            value = float(score) if score is not None else (1.0 if passed else 0.0)
            grade = Grade(passed=passed, score=value, reason=reason or f"{returned} passed={passed}")
        return Grade(grade.passed, grade.score, grade.reason, details=details)

    def describe(self) -> str:
        return f"python {self.reference}"

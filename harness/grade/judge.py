"""The ``judge`` grader: a model grades the output against a rubric.

Suite syntax::

    - type: judge
      model: judge-model             # a model id declared under judges: or models:
      rubric: "The answer is polite and cites the policy."   # or rubric_file: rubrics/polite.md
      scale: pass_fail               # or "1-5", or {choices: {correct: 1, partial: 0.5, wrong: 0}}
      reference: "{{ expected }}"    # optional expected answer (a template over the case's vars)
      votes: 3                       # judge samples, each its own recorded request
      aggregate: majority            # or mean (default: majority, mean for ranges)
      threshold: 4                   # ranges: scale units; choices and mean pass_fail: score in [0, 1]

Further options: ``temperature`` (0), ``max_tokens`` (512), ``structured`` (``auto``: JSON-schema output,
falling back to a ``VERDICT:`` line when the endpoint rejects it with a 400; ``json_schema``; ``none``),
``reason_max_chars`` (caps the JSON reason, so a grammar-constrained endpoint reaches the verdict within
``max_tokens``), ``template`` (``{system, user}`` Jinja templates, see ``_judge_prompt``), ``input`` (a
template shown as the input instead of the graded request's messages), ``params`` (extra request body
fields). A suite-level ``judge:`` mapping supplies defaults for every judge grader.

Every vote is one call through the judge model's own recorded client, with the sample key
``judge:<trial sample>:v<i>``, so a replay re-grades identically offline, and a changed rubric or template
changes the request and misses the cassette instead of reusing a stale verdict. Judge calls record into
their own cassette, ``cassettes/<suite>/<model>.judge.json``, even when the judge is also a graded model, so
trial recordings can be listed and pruned without touching verdicts.

An unusable reply is never a pass or a fail: with one vote it makes the grade an error; with several, the
usable votes decide only if they are more than half (see ``_judge_votes``). A replay miss of any vote makes
the grade an error starting with ``replay miss``, which ``harness run`` reports with exit code 3.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness.execute.backoff import with_retries
from harness.grade._common import RenderFailed, model_service, opt_choice, opt_mapping, opt_str, render
from harness.grade._judge_parse import Scale, VerdictError, parse_reply
from harness.grade._judge_prompt import JudgePrompt, JudgeTemplate, build_prompt, response_format, transcript
from harness.grade._judge_votes import Outcome, Vote, combine_votes
from harness.grade.base import UNANSWERED, Grade, GradeContext, Grader, GraderConfigError, Output, register
from harness.render import Request
from harness.suite.model import RetrySettings

if TYPE_CHECKING:
    from harness.execute.provider import Completion

REPLAY_MISS_PREFIX = "replay miss"
MAX_VOTES = 25
# Judge calls retry transient failures (429, 5xx, timeouts) a couple of times on their own: the scheduler's
# retries cover the graded model's call, not the grading after it.
ATTEMPTS = 3
_RNG = random.Random()
JUDGE_RETRY = RetrySettings(max_attempts=ATTEMPTS, base_delay=0.5, max_delay=20.0)


@register
class Judge(Grader):
    name = "judge"

    def __init__(
        self,
        model: object = None,
        rubric: object = None,
        scale: object = "pass_fail",
        reference: object = None,
        votes: object = 1,
        aggregate: object = None,
        threshold: object = None,
        temperature: object = 0.0,
        max_tokens: object = 512,
        structured: object = "auto",
        template: object = None,
        input: object = None,  # noqa: A002 - the suite's option name
        params: object = None,
        reason_max_chars: object = None,
        rubric_file: object = None,  # the loader reads the file into `rubric`; kept to name it
        template_file: object = None,  # likewise into `template`
    ) -> None:
        self.model = opt_str("model", model)
        self.rubric = opt_str("rubric", rubric)
        self.scale = Scale.parse(scale)
        self.reference = None if reference is None else opt_str("reference", reference, allow_empty=True)
        self.votes = _opt_int("votes", votes, 1, MAX_VOTES)
        default_aggregate = "mean" if self.scale.kind == "range" else "majority"
        self.aggregate: Any = opt_choice("aggregate", aggregate or default_aggregate, ("majority", "mean"))
        self.threshold = self._threshold(threshold)
        self.temperature = _opt_number("temperature", temperature, 0.0, 2.0)
        self.max_tokens = None if max_tokens is None else _opt_int("max_tokens", max_tokens, 1, 1_000_000)
        self.structured = opt_choice("structured", structured, ("auto", "json_schema", "none"))
        self.template = JudgeTemplate.parse(template)
        self.input = None if input is None else opt_str("input", input)
        self.reason_max_chars = None if reason_max_chars is None \
            else _opt_int("reason_max_chars", reason_max_chars, 1, 100_000)
        self.params = dict(opt_mapping("params", params)) if params is not None else {}
        for reserved in ("model", "messages", "response_format"):
            if reserved in self.params:
                raise GraderConfigError("params", f"params may not set {reserved!r}; the judge builds it")
        for field, text in (("rubric", self.rubric), ("reference", self.reference), ("input", self.input)):
            _check_template(field, text)
        self.rubric_file = None if rubric_file is None else opt_str("rubric_file", rubric_file)
        self.template_file = None if template_file is None else opt_str("template_file", template_file)
        self.rubric_hash = hashlib.sha256(self.rubric.encode("utf-8")).hexdigest()[:16]
        # The same judge configuration on many cases: calibration groups its verdicts by this key.
        self.key = f"{self.model} · {self.scale.name} · rubric {self.rubric_hash[:8]}"
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def _threshold(self, value: object) -> float:
        if value is None:
            return self.scale.default_threshold()
        low, high = (self.scale.low, self.scale.high) if self.scale.kind == "range" else (0.0, 1.0)
        return _opt_number("threshold", value, low, high)

    def describe(self) -> str:
        return f"judge({self.model}, {self.scale.name})"

    def grade(self, output: Output, ctx: GradeContext) -> Grade:
        return Grade.undecided("the judge grader calls a model and runs only asynchronously (agrade)")

    async def agrade(self, output: Output, ctx: GradeContext) -> Grade:
        found = model_service(ctx, self.model, "judge")
        if isinstance(found, Grade):
            return found
        pool, spec = found
        if spec.api != "chat":
            return Grade.undecided(f"judge model {self.model!r} uses the {spec.api} API; a judge needs chat")
        try:
            rubric = render(ctx, self.rubric, "rubric").strip()
            reference = None if self.reference is None else render(ctx, self.reference, "reference")
            shown_input = transcript(ctx.messages) if self.input is None else render(ctx, self.input, "input")
            prompts = {s: self._prompt(s, rubric, reference, shown_input, output, ctx) for s in self._formats()}
        except RenderFailed as exc:
            return Grade.undecided(str(exc))
        except Exception as exc:  # noqa: BLE001 - a custom template that fails to render cannot decide
            return Grade.undecided(f"judge template: {exc}")
        client = pool.judge_client(self.model)
        votes = await asyncio.gather(*(self._vote(i, client, spec, prompts, ctx) for i in range(self.votes)))
        return self._grade(votes, spec, prompts[self._formats()[0]])

    # --- one vote ----------------------------------------------------------------------------------------

    def _formats(self) -> tuple[bool, ...]:
        """Structured-output settings to try, in order: auto falls back to plain text on a 400."""
        return {"auto": (True, False), "json_schema": (True,), "none": (False,)}[self.structured]

    def _prompt(self, structured: bool, rubric: str, reference: str | None, shown_input: str, output: Output,
                ctx: GradeContext) -> JudgePrompt:
        return build_prompt(self.template, rubric=rubric, scale=self.scale, structured=structured,
                            candidate=_candidate_text(output), input_text=shown_input, reference=reference,
                            variables=ctx.vars)

    def _body(self, spec: Any, prompt: JudgePrompt, structured: bool, index: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": spec.name, "messages": prompt.messages}
        body.update(spec.params)
        body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        body.update(self.params)
        if structured:
            body["response_format"] = response_format(self.scale, self.reason_max_chars)
        if spec.send_seed and "seed" not in body:
            body["seed"] = index  # votes differ by seed (and by sample key) where sampling is random
        return body

    async def _vote(self, index: int, client: Any, spec: Any, prompts: Mapping[bool, JudgePrompt],
                    ctx: GradeContext) -> Vote:
        from harness.execute.provider import CallFailed

        usage: dict[str, int] = {}
        formats = self._formats()
        for n, structured in enumerate(formats):
            request = Request(api="chat", body=self._body(spec, prompts[structured], structured, index),
                              sample=f"judge:{ctx.sample}:v{index}")
            try:
                completion = await self._call(client, request, spec.timeout)
            except CallFailed as failure:
                error = failure.error
                if error.kind == "client" and structured and n + 1 < len(formats):
                    continue  # the endpoint refused response_format: ask for a VERDICT line instead
                if error.kind == "replay_miss":
                    return Vote(None, error=f"{REPLAY_MISS_PREFIX}: judge {self.model!r} request is not recorded "
                                f"({error.message}). Record it with --record record-missing (new run; "
                                f"needs the judge's key variable)", structured=structured, replay_miss=True)
                return Vote(None, error=f"judge call failed: {error.message}", structured=structured, usage=usage,
                            unanswered=True)
            _add(usage, completion.usage)
            return self._parsed(completion, structured, usage)
        raise AssertionError("unreachable: the last format returns")  # pragma: no cover

    def _parsed(self, completion: Completion, structured: bool, usage: dict[str, int]) -> Vote:
        try:
            parsed = parse_reply(completion.text, self.scale)
        except VerdictError as exc:
            cut = " (the reply was cut off at max_tokens)" if completion.finish_reason == "length" else ""
            return Vote(None, error=f"unparseable judge verdict{cut}: {exc}", usage=usage, structured=structured,
                        batch=completion.batch)
        return Vote(parsed.verdict, parsed.reason, parsed.method, usage=usage, structured=structured,
                    batch=completion.batch)

    async def _call(self, client: Any, request: Request, timeout: float) -> Completion:
        # Imported here: the registry imports every grader, and `harness validate` need not load openai.
        from harness.execute.provider import call

        return await with_retries(lambda: call(client, request, timeout), JUDGE_RETRY, _RNG, self.sleep)

    # --- the grade ---------------------------------------------------------------------------------------

    def _grade(self, votes: list[Vote], spec: Any, prompt: JudgePrompt) -> Grade:
        outcome = combine_votes(votes, self.scale, self.aggregate, self.threshold)
        usage: dict[str, int] = {}
        for vote in votes:
            _add(usage, vote.usage)
        price = spec.price
        if price is not None and any(vote.batch for vote in votes):  # votes answered by batch: the batch rate
            costs = [c for c in ((price.for_batch() if v.batch else price).usage_cost(v.usage) for v in votes)
                     if c is not None]
            cost = sum(costs) if costs else None
        else:
            cost = price.usage_cost(usage) if price is not None else None
        details = self._details(votes, outcome, prompt)
        if outcome.error is not None and any(v.unanswered for v in votes):
            # Not a verdict the judge gave but a call it never answered: the run must not pass as finished.
            details = {**details, UNANSWERED: True}
        if outcome.error is not None:
            return Grade(passed=None, score=0.0, reason="", error=outcome.error, usage=usage or None, cost=cost,
                         details=details)
        return Grade(passed=outcome.passed, score=outcome.score, reason=self._reason(votes, outcome),
                     usage=usage or None, cost=cost, details=details)

    def _reason(self, votes: list[Vote], outcome: Outcome) -> str:
        shown = f"{outcome.mean:.2f}" if self.aggregate == "mean" and outcome.mean is not None else outcome.verdict
        tally = "" if len(votes) == 1 else f" ({outcome.usable} usable votes, {outcome.agreement:.0%} agree)"
        why = _why(votes, outcome)
        return f"judge {self.model}: {shown}{tally}" + (f" — {why}" if why else "")

    def _details(self, votes: list[Vote], outcome: Outcome, prompt: JudgePrompt) -> dict[str, Any]:
        details: dict[str, Any] = {
            "judge": self.key, "model": self.model, "rubric_sha256": self.rubric_hash,
            "scale": self.scale.to_dict(), "aggregate": self.aggregate, "threshold": self.threshold,
            "verdict": outcome.verdict, "votes": [v.to_dict() for v in votes],
            "agreement": outcome.agreement, "reason": _why(votes, outcome), "fence": prompt.fence,
        }
        if outcome.agreement is not None:
            details["disagreement"] = round(1.0 - outcome.agreement, 6)
        if outcome.mean is not None:
            details["mean"] = outcome.mean
            details["spread"] = outcome.spread
        if prompt.neutralised:
            details["neutralised_markers"] = prompt.neutralised
        return details


def _why(votes: list[Vote], outcome: Outcome) -> str:
    """The judge's own explanation: the first reason given with the verdict that won."""
    return next((v.reason for v in votes if v.verdict == outcome.verdict and v.reason), "")


def _candidate_text(output: Output) -> str:
    calls = "".join(f"\n(tool call) {c.name}({c.arguments})" for c in output.tool_calls)
    return output.text + calls


def _add(total: dict[str, int], usage: Mapping[str, int]) -> None:
    for key, value in usage.items():
        total[key] = total.get(key, 0) + int(value)


def _check_template(field: str, text: str | None) -> None:
    """Refuse a template option with a syntax error or a sandbox escape at load time, not per case."""
    from harness.errors import Location, SuiteError
    from harness.templating import check_template, is_template

    if text is not None and is_template(text):
        try:
            check_template(text, Location("judge", None, field))
        except SuiteError as exc:
            raise GraderConfigError(field, f"{field}: {exc.message}") from None


def _opt_int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GraderConfigError(field, f"{field} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _opt_number(field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise GraderConfigError(field, f"{field} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)

"""The judge grader against a scripted endpoint: requests, votes, fallbacks, retries, errors, cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest

from harness.grade import Grade, GradeContext, GraderConfigError, Output, ToolCall, build_grader
from harness.grade._judge_parse import Scale
from harness.grade._judge_votes import Vote, combine_votes
from harness.suite.model import ModelSpec, Price

JUDGE = ModelSpec(id="judge", name="judge-model", base_url="http://127.0.0.1:9/v1", api_key_env="",
                  price=Price(input=2.0, output=10.0), params={"top_p": 1.0})
Reply = str | tuple[int, dict[str, Any]]


def completion(text: str, prompt_tokens: int = 100, completion_tokens: int = 10) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "judge-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class Endpoint:
    """A scripted chat endpoint (no network): ``reply(body, sample, attempt)`` says what to answer."""

    def __init__(self, reply: Callable[[dict[str, Any], str, int], Reply]) -> None:
        self.reply = reply
        self.requests: list[tuple[dict[str, Any], str]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        sample = request.headers.get("x-harness-sample", "")
        attempt = sum(1 for b, s in self.requests if s == sample and b == body) + 1
        self.requests.append((body, sample))
        answer = self.reply(body, sample, attempt)
        if isinstance(answer, tuple):
            status, payload = answer
            return httpx2.Response(status, json=payload, headers=payload.pop("_headers", {}))
        return httpx2.Response(200, json=completion(answer))


class Pool:
    """What the judge needs from the run's ClientPool: ``spec`` and ``judge_client`` by model id."""

    def __init__(self, endpoint: Endpoint, spec: ModelSpec = JUDGE) -> None:
        self._spec = spec
        self._client = openai.AsyncOpenAI(
            base_url=spec.base_url, api_key="test", max_retries=0,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(endpoint.handle)),
        )

    def spec(self, model_id: str) -> ModelSpec:
        if model_id != self._spec.id:
            raise KeyError(model_id)
        return self._spec

    def judge_client(self, model_id: str) -> openai.AsyncOpenAI:
        return self._client


def by_vote(*replies: Reply) -> Callable[[dict[str, Any], str, int], Reply]:
    return lambda body, sample, attempt: replies[int(sample.rsplit(":v", 1)[1])]


def verdict(value: object, reason: str = "because") -> str:
    return json.dumps({"reason": reason, "verdict": value})


def context(pool: Any, **variables: Any) -> GradeContext:
    from harness.templating import render_text

    return GradeContext(case_id="c1", vars=variables, messages=({"role": "user", "content": "Capital of France?"},),
                        render=lambda text: render_text(text, variables, "test"), services={"clients": pool},
                        sample="r2")


def judge(endpoint: Endpoint, output: str | Output = "Paris.", variables: dict[str, Any] | None = None,
          spec: ModelSpec = JUDGE, delays: list[float] | None = None, **options: Any) -> Grade:
    grader = build_grader("judge", {"model": "judge", "rubric": "Names the capital.", **options})

    async def no_sleep(seconds: float) -> None:
        if delays is not None:
            delays.append(seconds)

    grader.sleep = no_sleep  # type: ignore[attr-defined]
    out = output if isinstance(output, Output) else Output(output)
    return asyncio.run(grader.agrade(out, context(Pool(endpoint, spec), **(variables or {}))))


# --- requests --------------------------------------------------------------------------------------------


def test_each_vote_is_its_own_request_with_its_own_sample_key_and_seed() -> None:
    endpoint = Endpoint(lambda body, sample, attempt: verdict("PASS"))
    grade = judge(endpoint, votes=3, temperature=0.7, max_tokens=64, params={"top_k": 5}, reason_max_chars=100)
    assert grade.passed is True
    samples = sorted(s for _, s in endpoint.requests)
    assert samples == ["judge:r2:v0", "judge:r2:v1", "judge:r2:v2"]
    bodies = sorted((b for b, _ in endpoint.requests), key=lambda b: b["seed"])
    assert [b["seed"] for b in bodies] == [0, 1, 2]
    body = bodies[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0.7 and body["max_tokens"] == 64
    assert body["top_p"] == 1.0 and body["top_k"] == 5  # the model's params, then the grader's
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["reason"]["maxLength"] == 100
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_defaults_temperature_zero_and_no_seed_where_the_model_refuses_one() -> None:
    endpoint = Endpoint(lambda body, sample, attempt: verdict("PASS"))
    judge(endpoint, spec=ModelSpec(**{**vars(JUDGE), "send_seed": False}))
    body = endpoint.requests[0][0]
    assert body["temperature"] == 0.0 and "seed" not in body and body["max_tokens"] == 512


def test_structured_none_sends_no_response_format_and_reads_the_verdict_line() -> None:
    endpoint = Endpoint(lambda body, sample, attempt: "It names Paris.\nVERDICT: PASS")
    grade = judge(endpoint, structured="none")
    assert "response_format" not in endpoint.requests[0][0]
    assert grade.passed is True and grade.details["votes"][0]["parse"] == "verdict-line"


def test_tool_calls_are_shown_to_the_judge() -> None:
    endpoint = Endpoint(lambda body, sample, attempt: verdict("PASS"))
    judge(endpoint, Output("", (ToolCall("get_capital", '{"country": "France"}'),)))
    user = endpoint.requests[0][0]["messages"][1]["content"]
    assert '(tool call) get_capital({"country": "France"})' in user


def test_rubric_reference_and_input_are_templates_over_the_case_vars() -> None:
    endpoint = Endpoint(lambda body, sample, attempt: verdict("PASS"))
    judge(endpoint, rubric="Names {{ city }}.", reference="{{ city }}", input="Q: {{ q }}",
          variables={"city": "Paris", "q": "capital?"})
    system, user = (m["content"] for m in endpoint.requests[0][0]["messages"])
    assert "Names Paris." in system
    assert "\nParis\n<<<END_REFERENCE" in user and "\nQ: capital?\n<<<END_INPUT" in user
    assert "Capital of France?" not in user  # the input option replaces the request transcript


def test_a_missing_template_variable_is_undecided_and_calls_nothing() -> None:
    endpoint = Endpoint(lambda body, sample, attempt: verdict("PASS"))
    grade = judge(endpoint, reference="{{ expected }}")
    assert grade.passed is None and "reference" in (grade.error or "") and endpoint.requests == []


# --- verdicts, votes, errors -----------------------------------------------------------------------------


def test_single_vote_pass_and_fail_with_usage_and_cost_of_the_judge() -> None:
    grade = judge(Endpoint(by_vote(verdict("FAIL", "It says Berlin."))), "Berlin.")
    assert (grade.passed, grade.score, grade.error) == (False, 0.0, None)
    assert grade.reason == "judge judge: FAIL — It says Berlin."
    assert grade.usage == {"prompt_tokens": 100, "completion_tokens": 10}
    assert grade.cost == pytest.approx((100 * 2.0 + 10 * 10.0) / 1e6)
    details = grade.details
    assert details["verdict"] == "FAIL" and details["scale"] == {"kind": "pass_fail"}
    assert details["judge"].startswith("judge · pass_fail · rubric ") and len(details["fence"]) == 16


def test_majority_of_three_votes_and_the_disagreement() -> None:
    grade = judge(Endpoint(by_vote(verdict("PASS"), verdict("FAIL"), verdict("PASS"))), votes=3)
    assert grade.passed is True and grade.score == 1.0
    assert grade.details["agreement"] == pytest.approx(2 / 3)
    assert grade.details["disagreement"] == pytest.approx(1 / 3, abs=1e-6)
    assert [v["verdict"] for v in grade.details["votes"]] == ["PASS", "FAIL", "PASS"]
    assert "3 usable votes, 67% agree" in grade.reason
    assert grade.usage == {"prompt_tokens": 300, "completion_tokens": 30}


def test_mean_of_votes_on_a_range_scale_against_the_threshold() -> None:
    endpoint = Endpoint(by_vote(verdict(4), verdict(5), verdict(3)))
    grade = judge(endpoint, scale="1-5", votes=3, threshold=4)
    assert grade.passed is True and grade.score == pytest.approx(0.75)
    assert grade.details["mean"] == pytest.approx(4.0) and grade.details["spread"] == pytest.approx(1.0)
    assert judge(Endpoint(by_vote(verdict(4), verdict(3), verdict(4))), scale="1-5", votes=3,
                 threshold=4).passed is False


def test_tied_votes_are_undecided() -> None:
    grade = judge(Endpoint(by_vote(verdict("PASS"), verdict("FAIL"))), votes=2)
    assert grade.passed is None and "tied" in (grade.error or "")
    assert grade.usage == {"prompt_tokens": 200, "completion_tokens": 20}  # the spend is still reported


def test_an_unparseable_verdict_is_an_error_never_a_pass_or_fail() -> None:
    grade = judge(Endpoint(by_vote("I would say it is quite good overall.")))
    assert grade.passed is None and grade.error is not None
    assert grade.error.startswith("unparseable judge verdict: no verdict found")
    assert grade.usage == {"prompt_tokens": 100, "completion_tokens": 10} and grade.cost is not None


def test_a_quorum_of_usable_votes_decides_and_the_bad_vote_is_reported() -> None:
    grade = judge(Endpoint(by_vote(verdict("PASS"), "no idea", verdict("PASS"))), votes=3)
    assert grade.passed is True and grade.details["votes"][1]["error"].startswith("unparseable")
    failed = judge(Endpoint(by_vote(verdict("PASS"), "no idea", "nope")), votes=3)
    assert failed.passed is None and failed.error.startswith("2 of 3 judge votes had no usable verdict")


def test_auto_structured_output_falls_back_to_a_verdict_line_on_400() -> None:
    def reply(body: dict[str, Any], sample: str, attempt: int) -> Reply:
        if "response_format" in body:
            return 400, {"error": {"message": "response_format is not supported"}}
        return "The answer names Paris.\nVERDICT: PASS"

    endpoint = Endpoint(reply)
    grade = judge(endpoint)
    assert grade.passed is True
    first, second = (b for b, _ in endpoint.requests)
    assert "response_format" in first and "response_format" not in second
    assert "VERDICT: <verdict>" in second["messages"][0]["content"]
    assert grade.details["votes"][0]["structured"] is False


def test_json_schema_mode_reports_the_400_instead_of_falling_back() -> None:
    endpoint = Endpoint(lambda body, sample, attempt: (400, {"error": {"message": "no response_format"}}))
    grade = judge(endpoint, structured="json_schema")
    assert grade.passed is None and grade.error == "judge call failed: HTTP 400: no response_format"
    assert len(endpoint.requests) == 1  # a 400 is never retried


def test_transient_failures_are_retried_with_backoff() -> None:
    def reply(body: dict[str, Any], sample: str, attempt: int) -> Reply:
        if attempt == 1:
            return 429, {"error": {"message": "slow down"}, "_headers": {"retry-after": "2"}}
        if attempt == 2:
            return 503, {"error": {"message": "busy"}}
        return verdict("PASS")

    endpoint = Endpoint(reply)
    delays: list[float] = []
    grade = judge(endpoint, delays=delays)
    assert grade.passed is True and len(endpoint.requests) == 3
    assert len(delays) == 2 and 2.0 <= delays[0] <= 2.1 and 0.0 <= delays[1] <= 1.0


def test_persistent_server_errors_end_as_an_error_after_three_attempts() -> None:
    endpoint = Endpoint(lambda body, sample, attempt: (500, {"error": {"message": "down"}}))
    grade = judge(endpoint)
    assert grade.passed is None and grade.error == "judge call failed: HTTP 500: down"
    assert len(endpoint.requests) == 3


def test_without_clients_or_a_chat_model_the_judge_cannot_decide() -> None:
    grader = build_grader("judge", {"model": "judge", "rubric": "r"})
    bare = GradeContext(case_id="c", vars={})
    assert "pipeline" in (asyncio.run(grader.agrade(Output("x"), bare)).error or "")
    assert "asynchronously" in (grader.grade(Output("x"), bare).error or "")
    other = build_grader("judge", {"model": "nobody", "rubric": "r"})
    endpoint = Endpoint(lambda body, sample, attempt: verdict("PASS"))
    assert "not declared" in (asyncio.run(other.agrade(Output("x"), context(Pool(endpoint)))).error or "")
    completions = ModelSpec(**{**vars(JUDGE), "api": "completions"})
    assert "needs chat" in (judge(endpoint, spec=completions).error or "")


@pytest.mark.parametrize("options, field", [
    ({"rubric": "r"}, "model"),
    ({"model": "j"}, "rubric"),
    ({"model": "j", "rubric": 5}, "rubric"),
    ({"model": "j", "rubric": "r", "votes": 0}, "votes"),
    ({"model": "j", "rubric": "r", "votes": "3"}, "votes"),
    ({"model": "j", "rubric": "r", "scale": "1-5", "threshold": 7}, "threshold"),
    ({"model": "j", "rubric": "r", "threshold": 1.5}, "threshold"),
    ({"model": "j", "rubric": "r", "aggregate": "median"}, "aggregate"),
    ({"model": "j", "rubric": "r", "structured": "yes"}, "structured"),
    ({"model": "j", "rubric": "r", "params": {"messages": []}}, "params"),
    ({"model": "j", "rubric": "r", "max_tokens": 0}, "max_tokens"),
    ({"model": "j", "rubric": "r", "temperature": 3}, "temperature"),
    ({"model": "j", "rubric": "r", "reason_max_chars": 0}, "reason_max_chars"),
    ({"model": "j", "rubric": "r", "reference": "{{ answer "}, "reference"),
    ({"model": "j", "rubric": "Says {{ x.__class__ }}"}, "rubric"),
    ({"model": "j", "rubric": "r", "input": "{% if %}"}, "input"),
    ({"model": "j", "rubric": "r", "scale": "lots"}, "scale"),
    ({"model": "j", "rubric": "r", "template": {"user": "no candidate"}}, "template"),
])
def test_bad_options_fail_at_load_time_naming_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(GraderConfigError) as info:
        build_grader("judge", options)
    assert info.value.field == field


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(GraderConfigError, match="rubrik"):
        build_grader("judge", {"model": "j", "rubric": "r", "rubrik": "x"})


# --- combining votes (hand-checked) ------------------------------------------------------------------------


def test_combine_votes_rules() -> None:
    pf, five = Scale.parse("pass_fail"), Scale.parse("1-5")
    choices = Scale.parse({"choices": {"good": 1.0, "ok": 0.6, "bad": 0.0}})
    miss = Vote(None, error="replay miss: judge 'j' ...", replay_miss=True)
    assert combine_votes([Vote("PASS"), Vote("PASS"), miss], pf, "majority", 0.5).error.startswith("replay miss")
    mean = combine_votes([Vote("PASS"), Vote("FAIL"), Vote("PASS")], pf, "mean", 0.5)
    assert (mean.passed, mean.score, mean.verdict) == (True, pytest.approx(2 / 3), "PASS")
    assert combine_votes([Vote("PASS"), Vote("FAIL"), Vote("FAIL")], pf, "mean", 0.5).passed is False
    # Majority on a range passes against the threshold in scale units.
    assert combine_votes([Vote(3), Vote(3), Vote(5)], five, "majority", 3).passed is True
    assert combine_votes([Vote(2), Vote(2), Vote(5)], five, "majority", 3).passed is False
    rounded = combine_votes([Vote(2), Vote(3)], five, "mean", 3)  # mean 2.5: verdict rounds half up
    assert (rounded.verdict, rounded.passed, rounded.score) == (3, False, pytest.approx(0.375))
    # Choices by mean: the score is the mean of the labels' scores; the verdict the nearest label.
    avg = combine_votes([Vote("good"), Vote("bad"), Vote("ok")], choices, "mean", 0.5)
    assert avg.score == pytest.approx(1.6 / 3) and avg.verdict == "ok" and avg.passed is True
    majority = combine_votes([Vote("ok"), Vote("ok"), Vote("bad")], choices, "majority", 0.7)
    assert (majority.verdict, majority.score, majority.passed) == ("ok", 0.6, False)

"""The pipeline against both endpoint kinds and tool calls, through the real SDK and a local server."""

from __future__ import annotations

import json
from pathlib import Path

from harness.pipeline import RunOptions, run_suite
from harness.suite import load_suite
from harness.testing.fault_server import FaultConfig, FaultServer


def run(tmp_path: Path, text: str) -> list[dict[str, object]]:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    outcome = run_suite(load_suite(path), RunOptions(reports_root=tmp_path / "r", record="live", progress=False))
    return [json.loads(line) for line in outcome.results_path.read_text().splitlines()]


def test_legacy_completions_endpoint_for_base_models(tmp_path: Path) -> None:
    with FaultServer() as server:
        records = run(tmp_path, f"""
suite: base
models:
  - {{name: base-model, base_url: "{server.base_url}", api_key_env: null, api: completions}}
params: {{max_tokens: 20}}
prompts:
  few-shot: {{prompt: "Q: capital of Italy?\\nA: Rome\\nQ: {{{{ q }}}}\\nA:"}}
cases:
  - {{id: fr, vars: {{q: "capital of France?"}}, graders: [{{type: contains, value: "capital of France"}}]}}
""")
        stats = server.stats()
    (record,) = records
    assert record["request"]["prompt"].endswith("Q: capital of France?\nA:")
    assert "messages" not in record["request"]
    assert record["passed"] is True and "capital of France" in record["output"]
    assert record["usage"]["prompt_tokens"] > 0
    assert stats["by_path"].get("/v1/completions") == 1


def test_tools_are_sent_and_tool_calls_graded(tmp_path: Path) -> None:
    config = FaultConfig(tool_call=True, tool_arguments={"city": "Paris", "unit": "celsius"})
    with FaultServer(config) as server:
        records = run(tmp_path, f"""
suite: tools
models:
  - {{name: m, base_url: "{server.base_url}", api_key_env: null}}
prompts:
  v1:
    messages: [{{role: user, content: "Weather in {{{{ city }}}}?"}}]
    tools:
      - type: function
        function:
          name: get_weather
          parameters: {{type: object, properties: {{city: {{type: string}}}}, required: [city]}}
    tool_choice: auto
cases:
  - id: paris
    vars: {{city: Paris}}
    graders:
      - {{type: tool_call, name: get_weather, arguments: {{city: "{{{{ city }}}}"}}}}
  - id: rome
    vars: {{city: Rome}}
    graders:
      - {{type: tool_call, name: get_weather, arguments: {{city: "{{{{ city }}}}"}}}}
""")
    by_case = {r["case_id"]: r for r in records}
    assert by_case["paris"]["request"]["tools"][0]["function"]["name"] == "get_weather"
    assert by_case["paris"]["request"]["tool_choice"] == "auto"
    assert by_case["paris"]["tool_calls"][0]["name"] == "get_weather"
    assert json.loads(by_case["paris"]["tool_calls"][0]["arguments"])["city"] == "Paris"
    assert by_case["paris"]["passed"] is True
    # The server always answers Paris: the Rome case's templated expectation catches it.
    assert by_case["rome"]["passed"] is False and "Paris" in by_case["rome"]["grades"][0]["reason"]

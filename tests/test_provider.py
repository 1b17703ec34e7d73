"""The provider builds the right client per endpoint and sends the exact rendered body."""

from __future__ import annotations

import json

import httpx2
from openai._models import FinalRequestOptions

from harness.execute.provider import make_client, retry_after_seconds
from harness.suite.model import ModelSpec


def built_request(model: ModelSpec, body: dict[str, object]) -> httpx2.Request:
    client = make_client(model, "key", None, 1)
    options = FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body)
    return client._build_request(options)


def test_azure_routes_to_the_deployment_with_the_api_version() -> None:
    model = ModelSpec(id="az", name="gpt4o-deploy", base_url="https://example.invalid", provider="azure",
                      api_version="2024-10-21")
    request = built_request(model, {"model": "gpt4o-deploy", "messages": []})
    assert request.url.path == "/openai/deployments/gpt4o-deploy/chat/completions"
    assert request.url.params["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "key"


def test_openai_compatible_base_url_keeps_its_path_and_body_is_sent_verbatim() -> None:
    model = ModelSpec(id="local", name="smollm2", base_url="http://127.0.0.1:8011/v1")
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "top_k": 5, "seed": 3}
    request = built_request(model, body)
    assert request.url.path == "/v1/chat/completions"
    assert json.loads(request.content) == body  # extra params reach the server untouched
    assert request.headers["authorization"] == "Bearer key"


def test_retry_after_forms() -> None:
    assert retry_after_seconds(httpx2.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(httpx2.Headers({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(httpx2.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_seconds(httpx2.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx2.Headers({})) is None

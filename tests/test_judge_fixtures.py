"""Shared by the judge tests: a suite graded by a judge, its answers and verdicts served by the fault
server's fixed replies (fast, deterministic; the end-to-end test against the real model is
``test_judge_e2e.py``).

No tests here (the ``test_`` prefix only puts it on pytest's import path, as with the other fixture modules).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

_SUITE = """\
suite: judged
models:
  - name: answerer
    base_url: {url}
    api_key_env: null{answerer_price}
judges:
  - id: strict-judge
    name: judge-model
    base_url: {url}
    api_key_env: null
    price: {{input: 3.0, output: 3.0}}
judge: {{model: strict-judge, max_tokens: 50}}
prompts:
  v1:
    - {{role: user, content: "{{{{ question }}}}"}}
cases:
{cases}
graders:
  - {{type: judge, rubric: "{rubric}"}}
"""
# First match wins. Judge requests carry the candidate right before its closing fence; graded requests only
# the question. The answerer gets Spain wrong, so the judge fails that case.
JUDGE_RULES = {
    "Paris.\n<<<END_CANDIDATE_OUTPUT": json.dumps({"reason": "Paris is right.", "verdict": "PASS"}),
    "Rome.\n<<<END_CANDIDATE_OUTPUT": json.dumps({"reason": "Rome is right.", "verdict": "PASS"}),
    "Berlin.\n<<<END_CANDIDATE_OUTPUT": json.dumps({"reason": "Berlin is not in Spain.", "verdict": "FAIL"}),
    "capital of France?": "Paris.",
    "capital of Italy?": "Rome.",
    "capital of Spain?": "Berlin.",
}


def write_judged_suite(folder: Path, url: str, countries: Sequence[str] = ("France", "Spain"), *,
                       rubric: str = "Names the right capital.", answerer_price: bool = False,
                       labelled: bool = False) -> Path:
    """``folder/judged.yaml``: one case per country (id: its name in lower case), graded by the judge.

    Args:
        folder: where the suite file goes.
        url: both models' base URL (a ``${VAR}`` reference works too).
        countries: the cases, in order.
        rubric: the judge's rubric.
        answerer_price: give the answering model a price (1.0 per million tokens each way).
        labelled: give each case the human label ``pass``.
    """
    label = ", label: pass" if labelled else ""
    cases = "\n".join(f'  - {{id: {c.lower()}, vars: {{question: "capital of {c}?"}}{label}}}' for c in countries)
    price = "\n    price: {input: 1.0, output: 1.0}" if answerer_price else ""
    path = folder / "judged.yaml"
    path.write_text(_SUITE.format(url=url, answerer_price=price, cases=cases, rubric=rubric), encoding="utf-8")
    return path

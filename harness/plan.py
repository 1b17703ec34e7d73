"""The plan stage: expand a suite's matrix into trials with stable ids.

A trial is one call: case × prompt version × model × temperature × repeat. Its id hashes everything that
determines the request (the case's content, the prompt's definition, the model and its params, the
temperature and the repeat), so results, cassettes and resumes line up, and an edited prompt never
reuses stale results. Trials are produced lazily: a 100,000-trial plan is never held in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from harness.suite.model import Case, ModelSpec, PromptVersion, Suite


@dataclass(frozen=True)
class Trial:
    id: str
    case: Case
    prompt: PromptVersion
    model: ModelSpec
    temperature: float
    repeat: int

    @property
    def key(self) -> tuple[str, str, str, float, int]:
        return (self.case.id, self.prompt.name, self.model.id, self.temperature, self.repeat)

    def describe(self) -> str:
        return (f"case={self.case.id} prompt={self.prompt.name} model={self.model.id} "
                f"T={self.temperature:g} repeat={self.repeat}")


def trial_id(suite: Suite, case: Case, prompt: PromptVersion, model: ModelSpec, temperature: float,
             repeat: int, case_fp: str | None = None) -> str:
    parts = [
        suite.name, case.id, case_fp or case.fingerprint, prompt.name, prompt.fingerprint,
        model.id, model.fingerprint, repr(float(temperature)), str(repeat), suite.params_fingerprint,
        suite.vars_fingerprint, str(suite.seed),
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class Shard:
    """A deterministic slice ``index``/``count`` (1-based index) of a plan, by trial id."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard must look like I/N (e.g. 2/4), got {text!r}") from None
        if n < 1 or not 1 <= i <= n:
            raise ValueError(f"--shard {text}: need 1 ≤ I ≤ N")
        return cls(i, n)

    def owns(self, trial: Trial) -> bool:
        return self.owns_case(trial.case.id)

    def owns_case(self, case_id: str) -> bool:
        # Hashing the case id (not the trial id) keeps every variant and repeat of a case in one shard, so
        # paired statistics of merged shards equal the unsharded run's, each shard's model/prompt mix matches
        # the whole, and shards balance across models.
        digest = hashlib.sha256(case_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def iter_trials(
    suite: Suite,
    models: Iterable[str] | None = None,
    prompts: Iterable[str] | None = None,
    cases: Iterable[str] | None = None,
    shard: Shard | None = None,
) -> Iterator[Trial]:
    """All trials of the suite in a deterministic order, optionally filtered.

    The order interleaves variants case by case, so a run that stops half-way has comparable coverage of
    every variant, and time-of-day drift affects each variant alike.
    """
    model_set = set(models) if models else None
    prompt_set = set(prompts) if prompts else None
    case_set = set(cases) if cases else None
    chosen_models = [m for m in suite.models if model_set is None or m.id in model_set]
    chosen_prompts = [p for p in suite.prompts.values() if prompt_set is None or p.name in prompt_set]
    for case in suite.iter_cases():
        if case_set is not None and case.id not in case_set:
            continue
        if shard is not None and not shard.owns_case(case.id):
            continue
        fp = case.fingerprint
        for repeat in range(suite.repeats):
            for model in chosen_models:
                for prompt in chosen_prompts:
                    for temperature in suite.temperatures:
                        yield Trial(
                            id=trial_id(suite, case, prompt, model, temperature, repeat, fp),
                            case=case, prompt=prompt, model=model, temperature=temperature, repeat=repeat,
                        )


def count_trials(suite: Suite, **filters: object) -> int:
    return sum(1 for _ in iter_trials(suite, **filters))  # type: ignore[arg-type]

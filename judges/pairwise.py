"""`gpt4-pairwise`: the paper's GPT-4 pairwise protocol against a reference method, through any
OpenAI-compatible server (mechanics in `mobench.pairwise`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobench.judge import PairwiseJudge
from mobench.registry import judges


@dataclass(frozen=True)
class PairwiseParams:
    model: str = field(default="gpt-4", metadata={"help": "model name the server knows"})
    base_url: str | None = field(default=None, metadata={
        "help": "OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (unset: $OPENAI_BASE_URL or OpenAI)"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "environment variable holding the key"})
    reference: str = field(default="sft", metadata={"help": "the method every output is compared with"})
    objectives: tuple[str, ...] = field(default=(), metadata={"help": "objectives to judge (unset: the task's)"})
    max_requests: int = field(default=2000, metadata={"help": "request budget of one `mobench judge` call"})
    max_cost: float = field(default=20.0, metadata={"help": "cost budget in USD of one call"})
    price_input: float = field(default=30.0, metadata={"help": "USD per million prompt tokens"})
    price_output: float = field(default=60.0, metadata={"help": "USD per million completion tokens"})
    timeout: float = field(default=60.0, metadata={"help": "seconds per request"})
    retries: int = field(default=5, metadata={"help": "retries on 429 / 5xx / timeouts, with backoff"})
    backoff: float = field(default=1.0, metadata={"help": "seconds before the first retry (doubles)"})
    temperature: float | None = field(default=0.0, metadata={
        "help": "sampling temperature sent to the judge (none: not sent; reasoning models reject it)"})
    max_tokens: int = field(default=200, metadata={"help": "answer length limit sent to the judge (0: not sent)"})

    def __post_init__(self) -> None:
        if self.max_requests < 0 or self.max_cost < 0 or self.retries < 0 or self.timeout <= 0 or self.backoff < 0:
            raise ValueError("budgets, retries and backoff must be >= 0 and timeout > 0")
        if self.max_tokens < 0 or (self.temperature is not None and self.temperature < 0):
            raise ValueError("max_tokens and temperature must be >= 0")


@judges.register("gpt4-pairwise")
class GPT4Pairwise(PairwiseJudge):
    """Pairwise LLM judge (paper protocol: two 1-10 scores, both orders) vs a reference method's outputs."""

    Params = PairwiseParams

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._client: Any = None

    def client(self) -> Any:
        from mobench.artifacts import default_home
        from mobench.pairwise import ClientSettings, PairwiseClient, VerdictCache

        if self._client is None:
            p = self.params
            settings = ClientSettings(model=p.model, base_url=p.base_url, api_key_env=p.api_key_env,
                                      max_requests=p.max_requests, max_cost=p.max_cost, price_input=p.price_input,
                                      price_output=p.price_output, timeout=p.timeout, retries=p.retries,
                                      backoff=p.backoff, temperature=p.temperature, max_tokens=p.max_tokens)
            cache = VerdictCache(Path(default_home()) / "judge-cache" / "pairwise.sqlite")
            # Budget and connection settings do not change a verdict, so they stay out of the cache key.
            self._client = PairwiseClient(settings, f"{self.name}@{self.version}", cache)
        return self._client

    def win_rates(self, objective: str, prompts: Sequence[str], candidates: Sequence[str],
                  references: Sequence[str]) -> dict[str, Any]:
        from mobench.pairwise import compare

        client = self.client()
        wins, invalid, single = [], 0, 0
        for prompt, candidate, reference in zip(prompts, candidates, references):
            verdict = compare(client, objective, prompt, candidate, reference)
            if verdict.win is None:
                invalid += 1
                continue
            wins.append(verdict.win)
            single += verdict.valid_orders == 1
        rate = sum(wins) / len(wins) if wins else None  # None: no pair gave a verdict
        return {"win_rate": rate, "n": len(wins), "invalid": invalid, "one_order_only": single}

"""RiC, Rewards-in-Context (Yang et al. 2024): one policy conditioned on target scores in its prompt.

Training (one artifact, shared by every μ):
1. The SFT data's gold replies are scored by every objective's judge; scores are z-scored on that
   training set and rounded to one decimal.
2. Conditional SFT from θ_sft: the prompt carries the reply's scores (`format_conditioned`), the
   loss is on the reply only (trl's SFTTrainer, completion-only loss).
3. Online augmentation rounds (default 1): for each RL-split prompt, one objective's target is drawn
   uniformly over its normalised range and the others are set to their maximum; the policy
   answers, the judges score, and samples at or above the 0.7 quantile on any objective are kept
   (with their actual scores as the condition). As RiC's `merge_dataset`, each round fine-tunes on
   every round's kept samples so far plus the offline pairs at or above the same quantile on any
   objective (at most 10,000 of them), so the online data does not wash out the offline conditioning.

Inference maps μ to targets (default, the reference evaluation's l2 rule):
target_i = μ_i / ‖μ‖₂ · (max_i − min_i) + min_i, with [min_i, max_i] the normalised scores' range
on the training set (RiC's evaluation script takes the range of 50,000 standard-normal draws, about
±4.2, instead: wider than a small training set's, and symmetric where a judge's scores are skewed);
`mapping=linf` is RiC's other rule: the largest weight's objective at its maximum, each other one at
min(n·μ_i, 1) · (max_i − min_i) + min_i.

The condition ` <NAME_score> v ...` goes where RiC puts it: right before the prompt's response marker
("\n\nAssistant:", " ### Response:", lfqa's " answer:", the mini tasks' "\nAssistant:", "\nAnswer:",
"\nTL;DR:"), or at the end of a prompt without one; `parse_conditioned` inverts it exactly (removal by position, never
`str.rstrip`, which strips a character set and ate prompt characters in the reference code).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mobench.context import RunContext
from mobench.errors import MobenchError
from mobench.generator import Generator
from mobench.method import Method
from mobench.registry import methods
from mobench.task import PolicyState, Task
from mobench.textdata import prompt_text

STATS_FILE = "ric_stats.json"
_TAG = re.compile(r"<([A-Za-z0-9_-]+)_score> (-?\d+\.\d)")


# Where a prompt hands over to the response; the scores go right before it, as RiC's reference code
# puts them before "\n\nAssistant:" (hh) and before " ### Response:" (summary).
RESPONSE_MARKERS = (" ### Response:", "\n\nAssistant:", "\nAssistant:", "\nAnswer:", "\nTL;DR:", " answer:")
ORIGIN_SAMPLES = 10_000  # RiC's merge_dataset: offline pairs mixed into each online round, at most
_BLOCK = re.compile(r" <[A-Za-z0-9_-]+_score> -?\d+\.\d(?: <[A-Za-z0-9_-]+_score> -?\d+\.\d)*")


def _split_point(prompt: str) -> int:
    """Index where the score block goes: before the last response marker, else at the end."""
    found = [prompt.rfind(m) for m in RESPONSE_MARKERS if prompt.rstrip().endswith(m.rstrip())]
    found = [i for i in found if i >= 0]
    return min(found) if found else len(prompt)  # the longest marker ("\\n\\nAssistant:" over "\\nAssistant:")


def format_conditioned(prompt: str, names: Sequence[str], scores: Sequence[float]) -> str:
    """The prompt with ` <n1_score> 0.5 <n2_score> -1.2` (one decimal) inserted before its response
    marker (e.g. "\n\nAssistant:"), or appended when it has none."""
    if len(names) != len(scores):
        raise ValueError(f"{len(names)} objectives but {len(scores)} scores")
    block = "".join(f" <{name}_score> {_one_decimal(score)}" for name, score in zip(names, scores))
    at = _split_point(prompt)
    return prompt[:at] + block + prompt[at:]


def parse_conditioned(text: str) -> tuple[dict[str, float], str]:
    """Inverse of `format_conditioned`: (scores by objective, the original prompt).

    The block is removed by position (never with `str.rstrip`, which strips a character set and
    ate prompt characters in the reference code)."""
    blocks = list(_BLOCK.finditer(text))
    if not blocks:
        raise ValueError(f"not a RiC-conditioned prompt: {text[:60]!r}")
    block = blocks[-1]
    prompt = text[:block.start()] + text[block.end():]
    if _split_point(prompt) != block.start():
        raise ValueError(f"not a RiC-conditioned prompt (scores not before the response marker): {text[:60]!r}")
    pairs = re.findall(r"<([A-Za-z0-9_-]+)_score> (-?\d+\.\d)", block.group(0))
    return {name: float(value) for name, value in pairs}, prompt


def _one_decimal(x: float) -> str:
    value = round(float(x), 1)
    return f"{0.0 if value == 0 else value:.1f}"  # no "-0.0"


def preference_targets(mu: np.ndarray, low: np.ndarray, high: np.ndarray,
                       mapping: Literal["l2", "linf"] = "l2") -> np.ndarray:
    """μ -> target scores. l2: μ_i / ‖μ‖₂ · (max_i − min_i) + min_i. linf (RiC's other rule): the
    objective of the largest weight at max, each other one at min(n·μ_i, 1) · (max_i − min_i) + min_i."""
    mu, low, high = np.asarray(mu, dtype=float), np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if not mu.any():
        raise ValueError("μ must not be zero")
    if mapping == "l2":
        return mu / np.linalg.norm(mu) * (high - low) + low
    scale = np.minimum(len(mu) * mu, 1.0)
    scale[int(np.argmax(mu))] = 1.0
    return scale * (high - low) + low


@dataclass(frozen=True)
class RicParams:
    mapping: Literal["l2", "linf"] = field(default="l2", metadata={
        "help": "μ -> targets: l2 (reference evaluation: μ/‖μ‖₂) or linf (RiC's min(nμ_i, 1) rule)"})
    online_rounds: int = field(default=1, metadata={"help": "online augmentation rounds after the offline SFT"})
    quantile: float = field(default=0.7, metadata={"help": "online rounds keep samples at or above this quantile"})
    steps: int = field(default=0, metadata={"help": "conditional SFT steps (0: the task's sft_steps)"})
    online_steps: int = field(default=0, metadata={"help": "steps per online round (0: a third of steps)"})

    def __post_init__(self) -> None:
        if self.online_rounds < 0 or self.steps < 0 or self.online_steps < 0:
            raise ValueError("online_rounds, steps and online_steps must be >= 0")
        if not 0 < self.quantile < 1:
            raise ValueError(f"quantile must lie in (0, 1), got {self.quantile}")


@methods.register("ric")
class RiC(Method):
    """RiC: one policy fine-tuned with its replies' scores in the prompt; μ becomes target scores."""

    Params = RicParams
    # 2: online rounds train on the replies as sampled (1 stripped their leading space). 3: kept at or above the
    # quantile (ties were dropped), every round's kept samples plus quantile-selected offline pairs (RiC's
    # merge_dataset; a round trained on its own samples only); linf is RiC's min(nμ_i, 1) rule.
    version = "3"

    def check_task(self, task: Task) -> None:
        if not getattr(task, "token_level", False) or not hasattr(task, "fine_tune"):
            raise MobenchError(f"method 'ric' fine-tunes a text policy on conditioned prompts; task {task.name!r} "
                               "has no text policy (use a text task, e.g. hh2-mini)")

    def _steps(self, task: Any) -> tuple[int, int]:
        steps = self.params.steps or task.params.sft_steps
        return steps, self.params.online_steps or max(1, steps // 3)

    def prepare(self, ctx: RunContext) -> None:
        task: Any = ctx.task
        self.names = [o.name for o in task.objectives]
        steps, online_steps = self._steps(task)
        recipe = {"policy": task.initial_policy_recipe(), "judges": [judge.id for judge in task.judges],
                  "ric": {"steps": steps, "online_rounds": self.params.online_rounds, "online_steps": online_steps,
                          "quantile": self.params.quantile,
                          "format": "' <NAME_score> v.v' block before the response marker",
                          "online_text": "replies as sampled, not stripped, cut where the judges' text was cut",
                          "online_data": f"kept (>= quantile) of every round + offline pairs >= quantile "
                                          f"(at most {ORIGIN_SAMPLES})"},
                  "seed": ctx.seed}

        def build(directory: Path) -> dict[str, Any]:
            state, stats, info = self._train(ctx, steps, online_steps)
            task.save_policy(state, directory)
            (directory / STATS_FILE).write_text(json.dumps(stats))
            return {**info, "stats": stats}

        def load(directory: Path) -> tuple[PolicyState, dict[str, Any]]:
            return task.load_policy(directory), json.loads((directory / STATS_FILE).read_text())

        self.state, self.stats = ctx.artifact("ric-policy", recipe, build, load, uses_packages=task.uses_packages,
                                              uses_rl=False)
        self.model = task.token_model(ctx, self.state)
        ctx.record("score_range", {"min": self.stats["min"], "max": self.stats["max"]})

    def _train(self, ctx: RunContext, steps: int, online_steps: int) -> tuple[PolicyState, dict[str, Any], dict[str, Any]]:
        task: Any = ctx.task
        splits = task.splits()
        prompts = [p for p, _ in splits.sft]
        replies = [r for _, r in splits.sft]
        raw = task.score(prompts, replies)
        mean, std = raw.mean(0), raw.std(0) + 1e-8
        z = np.round((raw - mean) / std, 1)
        stats = {"mean": mean.round(6).tolist(), "std": std.round(6).tolist(),
                 "min": z.min(0).round(1).tolist(), "max": z.max(0).round(1).tolist()}
        pairs = [(format_conditioned(p.text, self.names, s), r) for p, r, s in zip(prompts, replies, z)]
        state, info = task.fine_tune(ctx, ctx.sft_policy(), pairs, steps)
        rounds = []
        rng = np.random.default_rng(ctx.seed)
        low, high = np.asarray(stats["min"]), np.asarray(stats["max"])
        origin, _ = select_at_quantile(z, self.params.quantile)
        if len(origin) > ORIGIN_SAMPLES:  # its own generator: the online targets do not depend on the pool size
            origin = sorted(np.random.default_rng([ctx.seed, 1]).choice(origin, ORIGIN_SAMPLES, replace=False).tolist())
        online: list[tuple[str, str]] = []
        for round_index in range(self.params.online_rounds):
            table = splits.rl
            targets = np.tile(high, (len(table), 1))
            chosen = rng.integers(0, len(self.names), len(table))
            targets[np.arange(len(table)), chosen] = rng.uniform(low[chosen], high[chosen])
            texts = [format_conditioned(p.text, self.names, t) for p, t in zip(table, targets)]
            # Train on what the policy wrote, cut where the judges' text was cut (`trained_reply`); judge
            # the cleaned text, as everywhere else.
            sampled = [task.trained_reply(text) for text in
                       self._decoder(ctx, task.token_model(ctx, state)).generate(texts, strip=False)]
            outputs = [text.strip() for text in sampled]
            scores = np.round((task.score(table, outputs) - mean) / std, 1)
            selected, cut = select_at_quantile(scores, self.params.quantile)
            keep = [i for i in selected if outputs[i]]
            online += [(format_conditioned(table[i].text, self.names, scores[i]), sampled[i]) for i in keep]
            data = online + [pairs[i] for i in origin]
            state, round_info = task.fine_tune(ctx, state, data, online_steps)
            rounds.append({"round": round_index + 1, "generated": len(table), "kept": len(keep),
                           "trained_on": len(data), "quantile_cut": cut.round(2).tolist(),
                           "curve": round_info.get("curve", [])})
        return state, stats, {"offline": info, "online": rounds, "n_pairs": len(pairs)}

    def _decoder(self, ctx: RunContext, model: Any) -> Any:
        from mobench.decoding import Plan, Term

        return ctx.task.decoder(ctx, Plan(base=[Term(model, 1.0, name="ric")]))  # type: ignore[attr-defined]

    def targets(self, mu: np.ndarray) -> np.ndarray:
        return preference_targets(mu, np.asarray(self.stats["min"]), np.asarray(self.stats["max"]), self.params.mapping)

    def generator(self, ctx: RunContext, mu: np.ndarray) -> Generator:
        return _Conditioned(self._decoder(ctx, self.model), self.names, self.targets(mu))


def select_at_quantile(scores: np.ndarray, quantile: float) -> tuple[list[int], np.ndarray]:
    """(rows at or above the `quantile` of their column on any objective, the per-objective cuts):
    RiC's select_data_with_quantile."""
    cut = np.quantile(scores, quantile, axis=0)
    return [i for i in range(len(scores)) if (scores[i] >= cut).any()], cut


class _Conditioned:
    """Answers each prompt with the target scores written in front of it."""

    def __init__(self, decoder: Any, names: list[str], targets: np.ndarray) -> None:
        self.decoder, self.names, self.targets = decoder, names, targets

    def generate(self, prompts: Sequence[Any]) -> list[str]:
        return self.decoder.generate([format_conditioned(prompt_text(p), self.names, self.targets) for p in prompts])

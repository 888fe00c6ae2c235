"""The judge contract: batched, deterministic scoring with a stable id used in cache keys."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from mobench.registry import Component


class Judge(Component):
    """Scores outputs for one objective. Subclasses set `Params` and implement `score`."""

    scores_text: ClassVar[bool] = True  # False: scores the synthetic tasks' parameter vectors
    loads_model: ClassVar[bool] = False  # True: loads the hub id or local folder in its `model` parameter
    counts_tokens: ClassVar[bool] = False  # True: `count_tokens` counts with the judge's own tokenizer

    def assets(self) -> list[Any]:
        """The models this judge loads, as `mobench.hub.Asset`s (checked before any work)."""
        if not self.loads_model:
            return []
        from mobench.hub import Asset

        return [Asset(f"model of judge {self.name!r}", self.params.model, "model", f"{self.name}:model=PATH")]

    def check_outputs_fit(self, task: Any) -> None:
        """Raise MobenchError when this judge cannot score `task`'s outputs (checked by `mobench judge`
        before any work); the default accepts every task of the right kind."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text under this judge's tokenizer (the reference code drops training and test
        examples its reward models cannot read); judges with `counts_tokens` implement it."""
        raise NotImplementedError(f"judge {self.name!r} has no tokenizer")

    def sample_weights(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float] | None:
        """Each sample's weight in a cell's mean score, or None (the default) for a plain mean.
        FineGrainedRLHF pools its segment ratios over an evaluation set by segment count."""
        return None

    @property
    def id(self) -> str:
        """`name:param=value:…@version`, from resolved parameters, so it is stable across runs."""
        parts = [self.name]
        for key, value in self.resolved_params().items():
            parts.append(f"{key}={json.dumps(value, separators=(',', ':'))}")
        return ":".join(parts) + f"@{self.version}"

    @abstractmethod
    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        """One float per (prompt, output) pair; higher is better."""


class PairwiseJudge(Judge):
    """Compares a method's outputs with a reference method's outputs on saved runs
    (`mobench judge RUN_DIR --judges NAME`); it cannot score outputs on its own."""

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        from mobench.errors import MobenchError

        raise MobenchError(f"judge {self.name!r} compares two methods' outputs; use it with "
                           f"`mobench judge RUN_DIR --judges {self.name}`, not as a task objective")

    @abstractmethod
    def win_rates(self, objective: str, prompts: Sequence[str], candidates: Sequence[str],
                  references: Sequence[str]) -> dict[str, Any]:
        """Win rate of `candidates` over `references` on `objective`, with counts and usage."""


def weighted_mean(values: Any, weights: Sequence[float]) -> float:
    """Σ wᵢ·vᵢ / Σ wᵢ; an all-zero weight (e.g. every answer empty) gives 0.0: nothing was judged correct."""
    import numpy as np

    total = float(np.sum(weights))
    return float(np.dot(np.asarray(values, dtype=float), np.asarray(weights, dtype=float)) / total) if total > 0 else 0.0


def mean_score(judge: Judge, prompts: Sequence[Any], outputs: Sequence[Any], scores: Any) -> float:
    """A judge's mean over one cell's samples: plain, or weighted by its `sample_weights`."""
    import numpy as np

    weights = judge.sample_weights(prompts, outputs)
    return float(np.mean(scores)) if weights is None else weighted_mean(scores, weights)

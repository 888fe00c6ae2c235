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

    def assets(self) -> list[Any]:
        """The models this judge loads, as `mobench.hub.Asset`s (checked before any work)."""
        if not self.loads_model:
            return []
        from mobench.hub import Asset

        return [Asset(f"model of judge {self.name!r}", self.params.model, "model", f"{self.name}:model=PATH")]

    def check_outputs_fit(self, task: Any) -> None:
        """Raise MobenchError when this judge cannot score `task`'s outputs (checked by `mobench judge`
        before any work); the default accepts every task of the right kind."""

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

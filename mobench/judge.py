"""The judge contract: batched, deterministic scoring with a stable id used in cache keys."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from mobench.registry import Component


class Judge(Component):
    """Scores outputs for one objective. Subclasses set `Params` and implement `score`."""

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

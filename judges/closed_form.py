"""Closed-form rewards for the synthetic tasks, where the exact answer is known."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobench.judge import Judge
from mobench.registry import judges


@dataclass(frozen=True)
class QuadraticParams:
    center: tuple[float, ...] = field(metadata={"help": "the reward's maximiser c"})
    curvature: tuple[float, ...] = field(metadata={"help": "per-coordinate curvature k > 0"})

    def __post_init__(self) -> None:
        if len(self.center) != len(self.curvature):
            raise ValueError("center and curvature must have the same length")
        if any(k <= 0 for k in self.curvature):
            raise ValueError("curvatures must be positive")


@judges.register("quadratic")
class QuadraticReward(Judge):
    """Closed-form quadratic reward r(θ) = −Σ_d k_d (θ_d − c_d)² of a parameter vector θ."""

    Params = QuadraticParams
    scores_text = False

    def check_outputs_fit(self, task: Any) -> None:
        from mobench.errors import MobenchError

        dim = getattr(task, "dim", None)
        if dim is not None and dim != len(self.params.center):
            raise MobenchError(f"judge {self.name!r} has a {len(self.params.center)}-dimensional center, but "
                               f"task {task.name!r} outputs {dim}-dimensional θ")

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        center = np.asarray(self.params.center)
        curvature = np.asarray(self.params.curvature)
        thetas = np.asarray(outputs, dtype=float).reshape(len(outputs), len(center))
        return (-(curvature * (thetas - center) ** 2).sum(axis=1)).tolist()

"""Weight-space soups: Rewarded Soups (paper 3.1.1) and Bone Soup (paper 3.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from mobench.context import RunContext
from mobench.errors import MobenchError
from mobench.generator import Generator
from mobench.merging import task_arithmetic
from mobench.method import Method
from mobench.registry import methods
from mobench.soups import backbone_weights, bone_soup_coefficients, extrapolation_scale
from mobench.task import PolicyState, Task


def _needs_two_objectives(method: Method, task: Task) -> None:
    if task.n_objectives < 2:
        raise MobenchError(f"method {method.name!r} needs a task with at least two objectives; "
                           f"{task.name!r} has {task.n_objectives}")


@methods.register("rs")
class RewardedSoups(Method):
    """Rewarded Soups: merge single-reward RL experts with coefficients λ = μ (Rame et al. 2023)."""

    def check_task(self, task: Task) -> None:
        _needs_two_objectives(self, task)

    def prepare(self, ctx: RunContext) -> None:
        n = ctx.task.n_objectives
        self.sft: PolicyState = ctx.sft_policy()
        self.experts: list[PolicyState] = [ctx.rl_policy(np.eye(n)[i]) for i in range(n)]

    def generator(self, ctx: RunContext, mu: np.ndarray) -> Generator:
        return ctx.task.generator(ctx, task_arithmetic(self.sft, self.experts, mu))


@dataclass(frozen=True)
class BoneSoupParams:
    beta: float = field(default=0.7, metadata={"help": "dominant reward weight of each backbone, in (1/n, 1)"})
    alpha: float = field(default=0.0, metadata={
        "help": "extrapolation θ̂ + α(θ̂ − θ_sft) (paper Eq. 13; the public code's a is α = a/(1−a))"})

    def __post_init__(self) -> None:
        if not 0.0 < self.beta < 1.0:
            raise ValueError(f"beta must lie in (1/n, 1), got {self.beta}")
        if self.alpha < 0.0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")


@methods.register("bone-soup")
class BoneSoup(Method):
    """Bone Soup: backbones trained on circulant reward mixes B, merged with λ = B⁻¹μ (paper 3.3)."""

    Params = BoneSoupParams

    def check_task(self, task: Task) -> None:
        _needs_two_objectives(self, task)
        try:
            backbone_weights(self.params.beta, task.n_objectives)
        except ValueError as exc:
            raise MobenchError(f"bone-soup on {task.name!r}: {exc}") from None

    def prepare(self, ctx: RunContext) -> None:
        self.weights = backbone_weights(self.params.beta, ctx.task.n_objectives)
        self.sft: PolicyState = ctx.sft_policy()
        self.backbones: list[PolicyState] = [ctx.rl_policy(column) for column in self.weights.T]
        ctx.record("backbone_weights", self.weights.T.round(10).tolist())

    def coefficients(self, mu: np.ndarray) -> np.ndarray:
        """λ = B⁻¹μ, scaled by 1 + α for the extrapolation away from θ_sft."""
        return extrapolation_scale(self.params.alpha) * bone_soup_coefficients(self.weights, mu)

    def generator(self, ctx: RunContext, mu: np.ndarray) -> Generator:
        return ctx.task.generator(ctx, task_arithmetic(self.sft, self.backbones, self.coefficients(mu)))

"""Weight-space soups: Rewarded Soups (paper 3.1.1) and Bone Soup (paper 3.3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mobench.context import RunContext
from mobench.errors import MobenchError
from mobench.generator import Generator
from mobench.merging import task_arithmetic
from mobench.method import Method
from mobench.preferences import simplex_grid
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
    beta_select: tuple[float, ...] = field(default=(), metadata={
        "help": "candidate βs, e.g. [0.6,0.7,0.8]: short RL runs each, best validation HV wins (overrides beta)"})
    alpha_select: tuple[float, ...] = field(default=(), metadata={
        "help": "candidate αs, e.g. [0,0.1,0.2]: best validation HV wins (overrides alpha)"})
    select_fraction: float = field(default=0.25, metadata={"help": "RL budget share of a β-selection run"})
    select_grid: int = field(default=5, metadata={"help": "preference grid of the validation fronts"})

    def __post_init__(self) -> None:
        for beta in (self.beta, *self.beta_select):
            if not 0.0 < beta < 1.0:
                raise ValueError(f"beta must lie in (1/n, 1), got {beta}")
        for alpha in (self.alpha, *self.alpha_select):
            if alpha < 0.0:
                raise ValueError(f"alpha must be >= 0, got {alpha}")
        if not 0.0 < self.select_fraction <= 1.0:
            raise ValueError(f"select_fraction must lie in (0, 1], got {self.select_fraction}")
        if self.select_grid < 2:
            raise ValueError(f"select_grid must be >= 2, got {self.select_grid}")


@methods.register("bone-soup")
class BoneSoup(Method):
    """Bone Soup: backbones trained on circulant reward mixes B, merged with λ = B⁻¹μ (paper 3.3)."""

    Params = BoneSoupParams

    def check_task(self, task: Task) -> None:
        _needs_two_objectives(self, task)
        if len(self.params.beta_select) > 1 or len(self.params.alpha_select) > 1:
            simplex_grid(task.n_objectives, self.params.select_grid, label="bone-soup:select_grid")  # size check
        for beta in (self.params.beta, *self.params.beta_select):
            try:
                backbone_weights(beta, task.n_objectives)
            except ValueError as exc:
                raise MobenchError(f"bone-soup on {task.name!r}: {exc}") from None

    def prepare(self, ctx: RunContext) -> None:
        from mobench.selection import select_best

        n = ctx.task.n_objectives
        self.sft: PolicyState = ctx.sft_policy()
        beta = self.params.beta
        if len(self.params.beta_select) > 1:
            fraction = self.params.select_fraction

            def short_run_front(candidate: float) -> Callable[[np.ndarray], Generator]:
                weights = backbone_weights(candidate, n)
                backbones = [ctx.rl_policy(column, fraction) for column in weights.T]
                return lambda mu: self._merged(ctx, weights, backbones, 0.0, mu)

            beta = select_best(ctx, self, "beta", list(self.params.beta_select), short_run_front,
                               self.params.select_grid, depends_on=("select_fraction",))
        elif self.params.beta_select:
            beta = self.params.beta_select[0]
        self.weights = backbone_weights(beta, n)
        self.backbones: list[PolicyState] = [ctx.rl_policy(column) for column in self.weights.T]
        self.alpha = self.params.alpha_select[0] if self.params.alpha_select else self.params.alpha
        if len(self.params.alpha_select) > 1:
            self.alpha = select_best(
                ctx, self, "alpha", list(self.params.alpha_select),
                lambda a: (lambda mu: self._merged(ctx, self.weights, self.backbones, a, mu)), self.params.select_grid,
                depends_on=())  # the chosen β's backbones are among the loaded artifacts
        ctx.record("beta", beta)
        ctx.record("alpha", self.alpha)
        ctx.record("backbone_weights", self.weights.T.round(10).tolist())

    def coefficients(self, mu: np.ndarray, weights: np.ndarray | None = None, alpha: float | None = None) -> np.ndarray:
        """λ = B⁻¹μ, scaled by 1 + α for the extrapolation away from θ_sft."""
        weights = self.weights if weights is None else weights
        alpha = self.alpha if alpha is None else alpha
        return extrapolation_scale(alpha) * bone_soup_coefficients(weights, mu)

    def _merged(self, ctx: RunContext, weights: np.ndarray, backbones: list[PolicyState], alpha: float,
                mu: np.ndarray) -> Generator:
        return ctx.task.generator(ctx, task_arithmetic(self.sft, backbones, self.coefficients(mu, weights, alpha)))

    def generator(self, ctx: RunContext, mu: np.ndarray) -> Generator:
        return self._merged(ctx, self.weights, self.backbones, self.alpha, mu)

"""Decoding-time methods: MOD (Shi et al. 2024) and MAGE's four variants (paper 3.2–3.4).

Both run on the decoding engine (`mobench.decoding`) and need a token-level task.

* `mod`: the experts θ_i (RL with w = e_i, shared with Rewarded Soups) mixed at every token,
  Σ_i μ_i log π_i (reverse KL) or their weighted harmonic mean (forward KL).
* `mage-e`, `mage-e-m`, `mage-i`, `mage-i-m`: a base model for μ (Bone Soup merge by default)
  steered at every token by value guidance scaled by γ:
  - E: explicit value models, one per objective (`mobench.values`), score γ·V(x, y<t)[v];
  - I: implicit values log π*(v) − log π_ref(v), π_ref = θ_sft, π* = the stage-1 Bone Soup backbones
    "repurposed" at no training cost (paper 6.1.2);
  - without -M the guides are ensembled (n guide forwards): E's value models with weights μ_i; I's
    backbones with the Bone Soup coefficients λ = B⁻¹μ, since backbone i's implicit reward is B[:, i]·r
    and Σ λ_i B[:, i] = μ (weights μ would aim at Bμ, e.g. (0.7, 0.3) at μ = (1, 0));
  - with -M they are merged into one guide (Eq. 24): E merges the value models with μ; I merges the
    backbones with Bone Soup (λ = B⁻¹μ; paper Table 3's MAGE-I-M) or naively (Σ μ_i θ_i of the same
    backbones; Table 3's MAGE-I-M').
  γ is chosen on the validation split from `gamma_grid` unless given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

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

Decoding = Literal["sample", "greedy", "beam"]


def _needs_token_task(method: Method, task: Task, min_objectives: int = 2) -> None:
    if not getattr(task, "token_level", False):
        raise MobenchError(f"method {method.name!r} steers decoding token by token; task {task.name!r} has no "
                           f"tokens (use a text task, e.g. hh2-mini)")
    if task.n_objectives < min_objectives:
        raise MobenchError(f"method {method.name!r} needs a task with at least {min_objectives} objectives; "
                           f"{task.name!r} has {task.n_objectives}")


def _decode_overrides(params: Any) -> dict[str, Any]:
    overrides: dict[str, Any] = {"mode": params.decoding}
    if params.decoding == "beam":
        overrides.update(beam_width=params.beam_width, expansion=params.expansion, lookahead=params.lookahead)
    return overrides


# ----------------------------------------------------------------------------- MOD

@dataclass(frozen=True)
class ModParams:
    divergence: Literal["reverse-kl", "forward-kl"] = field(default="reverse-kl", metadata={
        "help": "reverse-kl: Σ μ_i log π_i; forward-kl: weighted harmonic mean of the experts"})
    decoding: Literal["sample", "greedy"] = field(default="sample", metadata={
        "help": "sample: the task's sampling (paper: top-p 0.9, top-k 50, T 1); greedy: argmax"})


@methods.register("mod")
class MOD(Method):
    """MOD: mix the single-objective experts' next-token distributions with weights μ (Shi et al. 2024)."""

    Params = ModParams

    def check_task(self, task: Task) -> None:
        _needs_token_task(self, task)

    def prepare(self, ctx: RunContext) -> None:
        n = ctx.task.n_objectives
        self.experts = [ctx.task.token_model(ctx, ctx.rl_policy(np.eye(n)[i])) for i in range(n)]

    def generator(self, ctx: RunContext, mu: np.ndarray) -> Generator:
        from mobench.decoding import Plan, Term

        base = [Term(model, float(m), name=f"expert{i}") for i, (model, m) in enumerate(zip(self.experts, mu))]
        plan = Plan(base=base, base_form=self.params.divergence)
        return ctx.task.decoder(ctx, plan, ctx.task.decode_config(mode=self.params.decoding))


# ----------------------------------------------------------------------------- MAGE

@dataclass(frozen=True)
class MageParams:
    gamma: float | None = field(default=None, metadata={
        "help": "guidance strength γ; unset: chosen on the validation split from gamma_grid"})
    gamma_grid: tuple[float, ...] = field(default=(0.1, 0.2, 1.0, 3.0, 5.0), metadata={
        "help": "candidate γs (paper: 0.1, 0.2, 1, 3, 5)"})
    decoding: Decoding = field(default="sample", metadata={
        "help": "sample (task sampling, paper top-p .9/top-k 50/T 1), greedy, or beam look-ahead"})
    beam_width: int = field(default=2, metadata={"help": "beam look-ahead: beams kept per prompt (b)"})
    expansion: int = field(default=2, metadata={"help": "beam look-ahead: continuations per beam (c)"})
    lookahead: int = field(default=8, metadata={"help": "beam look-ahead: tokens between selections (l)"})
    base: Literal["bone-soup", "rs", "sft"] = field(default="bone-soup", metadata={
        "help": "the steered model: Bone Soup merge (paper), Rewarded Soups merge, or θ_sft (Figure 2)"})
    beta: float = field(default=0.7, metadata={"help": "Bone Soup backbones' dominant reward weight"})
    alpha: float = field(default=0.0, metadata={"help": "Bone Soup extrapolation α"})
    guide_merge: Literal["bone-soup", "naive"] = field(default="bone-soup", metadata={
        "help": "mage-i-m: merge the backbones with Bone Soup (paper) or naively as Σ μ_i θ_i (Table 3's I-M')"})
    select_grid: int = field(default=5, metadata={"help": "preference grid of the γ-selection fronts"})

    def __post_init__(self) -> None:
        if self.gamma is not None and self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")
        if self.gamma is None and (not self.gamma_grid or min(self.gamma_grid) < 0):
            raise ValueError("gamma_grid needs at least one γ >= 0")
        if not 0.0 < self.beta < 1.0:
            raise ValueError(f"beta must lie in (0, 1) (and in (1/n, 1) for n objectives), got {self.beta}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        for name in ("beam_width", "expansion", "lookahead"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.select_grid < 2:
            raise ValueError(f"select_grid must be >= 2, got {self.select_grid}")


class Mage(Method):
    """Base of the four MAGE variants; `explicit` and `merged` pick the guidance."""

    Params = MageParams
    explicit: ClassVar[bool] = True
    merged: ClassVar[bool] = True

    def check_task(self, task: Task) -> None:
        _needs_token_task(self, task)
        if self.params.guide_merge != "bone-soup" and (self.explicit or not self.merged):
            raise MobenchError(f"guide_merge applies to mage-i-m only (the merged implicit guide), not {self.name}")
        simplex_grid(task.n_objectives, self.params.select_grid, label=f"{self.name}:select_grid")  # size check
        if self.params.base == "bone-soup" or not self.explicit:  # implicit guides are the backbones
            try:
                backbone_weights(self.params.beta, task.n_objectives)
            except ValueError as exc:
                raise MobenchError(f"{self.name} on {task.name!r}: {exc}") from None

    # --- stage 1: the base ---------------------------------------------------------------------
    def prepare(self, ctx: RunContext) -> None:
        from mobench.selection import select_best

        task = ctx.task
        n = task.n_objectives
        self.sft: PolicyState = ctx.sft_policy()
        # The implicit guides' π* are always the backbones (stage 1); the experts serve only base = rs.
        needs_backbones = self.params.base == "bone-soup" or not self.explicit
        if needs_backbones:
            self.weights = backbone_weights(self.params.beta, n)
            self.backbones: list[PolicyState] = [ctx.rl_policy(column) for column in self.weights.T]
            ctx.record("backbone_weights", self.weights.T.round(10).tolist())
        if self.params.base == "rs":
            self.experts: list[PolicyState] = [ctx.rl_policy(np.eye(n)[i]) for i in range(n)]
        # θ_sft as a model: π_ref of the implicit guides, and the base when base = sft (else not loaded).
        self.ref_model = task.token_model(ctx, self.sft) if (not self.explicit or self.params.base == "sft") else None
        # --- stage 2: the guides -------------------------------------------------------------
        if self.explicit:
            self.values = [task.value_model(ctx, i) for i in range(n)]
            if not self.merged:
                self.value_models = [task.token_model(ctx, v, value=True) for v in self.values]
        elif not self.merged:
            self.backbone_models = [task.token_model(ctx, b) for b in self.backbones]
        if self.params.gamma is not None:
            self.gamma = float(self.params.gamma)
        elif len(self.params.gamma_grid) == 1:
            self.gamma = float(self.params.gamma_grid[0])
        else:
            self.gamma = float(select_best(ctx, self, "gamma", list(self.params.gamma_grid),
                                           lambda g: (lambda mu: self._generator(ctx, mu, g)),
                                           self.params.select_grid))
        ctx.record("gamma", self.gamma)

    def _bone_soup(self, mu: np.ndarray) -> PolicyState:
        coefficients = extrapolation_scale(self.params.alpha) * bone_soup_coefficients(self.weights, mu)
        return task_arithmetic(self.sft, self.backbones, coefficients)

    def base_state(self, mu: np.ndarray) -> PolicyState:
        if self.params.base == "bone-soup":
            return self._bone_soup(mu)
        if self.params.base == "rs":
            return task_arithmetic(self.sft, self.experts, mu)
        return self.sft

    def guides(self, ctx: RunContext, mu: np.ndarray, gamma: float, base_model: Any) -> list[Any]:
        """The guidance terms for μ (coefficients include γ)."""
        from mobench.decoding import Term

        task = ctx.task
        if self.explicit and self.merged:
            merged = task_arithmetic(None, self.values, mu)  # Eq. 24, offsets included
            return [Term(task.token_model(ctx, merged, value=True), gamma, "values",
                         offset=float(merged["value_offset"]), name="merged-value")]
        if self.explicit:
            return [Term(model, gamma * float(m), "values", offset=float(v["value_offset"]), name=f"value{i}")
                    for i, (model, v, m) in enumerate(zip(self.value_models, self.values, mu))]
        ref = Term(self.ref_model, -gamma * float(np.sum(mu)), name="ref")
        if self.merged:
            if self.params.guide_merge == "bone-soup":
                star = self._bone_soup(mu)
                # Same merge as the base: reuse its model, so it runs once per token.
                model = base_model if self.params.base == "bone-soup" else task.token_model(ctx, star)
            else:  # naive: Σ μ_i θ_i of the same backbones
                model = task.token_model(ctx, task_arithmetic(self.sft, self.backbones, mu))
            return [Term(model, gamma, name="merged-pi-star"), ref]
        # λ = B⁻¹μ sums to Σμ (B's columns sum to 1), so the reference keeps its weight −γΣμ; with
        # extrapolation both scale by 1 + α, as the merged guide π*(μ) of MAGE-I-M does.
        scale = extrapolation_scale(self.params.alpha)
        lam = scale * bone_soup_coefficients(self.weights, mu)
        ref = Term(self.ref_model, -gamma * scale * float(np.sum(mu)), name="ref")
        return [Term(model, gamma * float(c), name=f"pi-star{i}")
                for i, (model, c) in enumerate(zip(self.backbone_models, lam))] + [ref]

    def _generator(self, ctx: RunContext, mu: np.ndarray, gamma: float) -> Generator:
        from mobench.decoding import Plan, Term

        base_state = self.base_state(mu)
        base_model = self.ref_model if base_state is self.sft else ctx.task.token_model(ctx, base_state)
        guides = self.guides(ctx, mu, gamma, base_model) if gamma != 0 else []
        plan = Plan(base=[Term(base_model, 1.0, name="base")], guides=guides)
        return ctx.task.decoder(ctx, plan, ctx.task.decode_config(**_decode_overrides(self.params)))

    def generator(self, ctx: RunContext, mu: np.ndarray) -> Generator:
        return self._generator(ctx, mu, self.gamma)


@methods.register("mage-e")
class MageE(Mage):
    """MAGE-E: Bone Soup base guided by an ensemble of explicit value models (weights μ)."""

    version = "2"  # 2: value models trained 3 epochs at lr 1e-4 (were 4 at 1e-3, which overfit)
    explicit, merged = True, False


@methods.register("mage-e-m")
class MageEM(Mage):
    """MAGE-E-M: Bone Soup base guided by one μ-merged explicit value model (paper's MAGE)."""

    version = "2"  # see MageE
    explicit, merged = True, True


@methods.register("mage-i")
class MageI(Mage):
    """MAGE-I: Bone Soup base guided by an ensemble of the backbones' implicit values (weights λ = B⁻¹μ).

    The implicit value of backbone i is log π*_i/π_ref, π*_i the stage-1 backbone and π_ref θ_sft."""

    # 2: π* are the stage-1 backbones (paper 6.1.2), were extra RL experts with w = e_i; 3: weighted by
    # λ = B⁻¹μ, were μ (which aims the guidance at Bμ rather than μ).
    version = "3"
    explicit, merged = False, False


@methods.register("mage-i-m")
class MageIM(Mage):
    """MAGE-I-M: Bone Soup base guided by one merged implicit value log π*(μ)/π_ref."""

    version = "2"  # 2: guide_merge=naive merges the backbones (Table 3's I-M'); it merged RL experts
    explicit, merged = False, True

"""MORLHF: the oracle baseline that trains one policy per preference."""

from __future__ import annotations

import numpy as np

from mobench.context import RunContext
from mobench.generator import Generator
from mobench.method import Method
from mobench.registry import methods


@methods.register("morlhf")
class MORLHF(Method):
    """MORLHF: one RL run per preference μ with reward weights w = μ (expensive oracle baseline)."""

    def prepare_preference(self, ctx: RunContext, mu: np.ndarray) -> None:
        ctx.build_rl_policy(mu)  # built, not held: a run loads each policy when it needs it

    def generator(self, ctx: RunContext, mu: np.ndarray) -> Generator:
        return ctx.task.generator(ctx, ctx.rl_policy(mu))

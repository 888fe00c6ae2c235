"""The unsteered SFT policy: the same output for every preference, a reference point for the others."""

from __future__ import annotations

import numpy as np

from mobench.context import RunContext
from mobench.generator import Generator
from mobench.method import Method
from mobench.registry import methods


@methods.register("sft")
class SFT(Method):
    """The supervised fine-tuned policy, unsteered (the same policy at every μ)."""

    def prepare(self, ctx: RunContext) -> None:
        self.sft = ctx.sft_policy()

    def generator(self, ctx: RunContext, mu: np.ndarray) -> Generator:
        return ctx.task.generator(ctx, self.sft)

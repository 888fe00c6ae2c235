"""Choosing a method's hyper-parameters on the validation split (never on the test prompts).

A candidate is scored by the hypervolume of the front its generators produce over a coarse
preference grid, judged on the task's validation prompts; ties go to the earlier candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mobench.context import RunContext
from mobench.generator import Generator
from mobench.metrics import hypervolume
from mobench.preferences import simplex_grid


def validation_front(ctx: RunContext, make_generator: Callable[[np.ndarray], Generator],
                     grid: int) -> tuple[float, list[list[float]]]:
    """(HV, mean rewards per μ) of the generators built for a `grid`-point simplex grid."""
    prompts = ctx.task.validation_prompts()
    prefs = simplex_grid(ctx.task.n_objectives, grid)
    rewards = []
    for mu in prefs:
        outputs = make_generator(mu).generate(prompts)
        rewards.append(ctx.task.score(prompts, outputs).mean(axis=0))
    front = np.asarray(rewards)
    return float(hypervolume(front, np.asarray(ctx.task.reference_point))), front.round(6).tolist()


def select_best(ctx: RunContext, name: str, candidates: Sequence[Any],
                make_factory: Callable[[Any], Callable[[np.ndarray], Generator]], grid: int) -> Any:
    """Evaluate each candidate's validation front, record the table, and return the best candidate."""
    table = []
    for candidate in candidates:
        hv, front = validation_front(ctx, make_factory(candidate), grid)
        table.append({"candidate": candidate, "validation_hv": round(hv, 6), "front": front})
        ctx.reporter.log(f"{name} = {candidate}: validation HV {hv:.4f}")
    best = max(range(len(table)), key=lambda i: (table[i]["validation_hv"], -i))
    ctx.record(f"{name}_selection", {"chosen": candidates[best], "grid": grid, "candidates": table})
    return candidates[best]

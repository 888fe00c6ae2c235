"""Choosing a method's hyper-parameters on the validation split (never on the test prompts).

A candidate is scored by the hypervolume of the front its generators produce over a coarse
preference grid, judged on the task's validation prompts; ties go to the earlier candidate.
A selection is stored as an artifact, so `prepare`, an interrupted sweep or a later run with more
preference points does not search again (a γ search can decode more replies than the test sweep).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mobench.context import RunContext
from mobench.generator import Generator
from mobench.metrics import hypervolume
from mobench.preferences import simplex_grid

if TYPE_CHECKING:
    from mobench.method import Method

SELECTION_FILE = "selection.json"


def validation_front(ctx: RunContext, make_generator: Callable[[np.ndarray], Generator],
                     grid: int) -> tuple[float, list[list[float]]]:
    """(HV, mean rewards per μ) of the generators built for a `grid`-point simplex grid."""
    prompts = ctx.task.validation_prompts()
    prefs = simplex_grid(ctx.task.n_objectives, grid, label="select_grid")
    rewards = []
    for mu in prefs:
        outputs = make_generator(mu).generate(prompts)
        rewards.append(ctx.task.mean_rewards(prompts, outputs, ctx.task.score(prompts, outputs)))
    front = np.asarray(rewards)
    return float(hypervolume(front, np.asarray(ctx.task.reference_point))), front.round(6).tolist()


def _content(prompt: Any) -> Any:
    return prompt.to_dict() if hasattr(prompt, "to_dict") else prompt


def select_best(ctx: RunContext, method: Method, name: str, candidates: Sequence[Any],
                make_factory: Callable[[Any], Callable[[np.ndarray], Generator]], grid: int,
                depends_on: Sequence[str] | None = None) -> Any:
    """Evaluate each candidate's validation front, record the table, and return the best candidate.

    `depends_on` names the method parameters the candidates' fronts depend on besides the candidates,
    the grid and the artifacts loaded so far (default: all), so that changing another parameter (Bone
    Soup's α candidates) does not repeat a search (its β)."""
    from mobench.cells import stable_hash

    def build(directory: Path) -> dict[str, Any]:
        table = []
        for candidate in candidates:
            hv, front = validation_front(ctx, make_factory(candidate), grid)
            table.append({"candidate": candidate, "validation_hv": round(hv, 6), "front": front})
            ctx.reporter.log(f"{name} = {candidate}: validation HV {hv:.4f}")
        best = max(range(len(table)), key=lambda i: (table[i]["validation_hv"], -i))
        (directory / SELECTION_FILE).write_text(json.dumps({"chosen_index": best, "candidates": table}))
        return {"chosen": candidates[best]}

    def load(directory: Path) -> dict[str, Any]:
        return json.loads((directory / SELECTION_FILE).read_text())

    task = ctx.task
    params = method.resolved_params()
    if depends_on is not None:
        params = {key: params[key] for key in depends_on}
    recipe = {"method": {"name": method.name, "version": method.version, "params": params},
              "selection": name, "candidates": list(candidates), "grid": grid, "seed": ctx.seed,
              "policy": task.policy_recipe(), "judges": [judge.id for judge in task.judges],
              "reference_point": list(task.reference_point),
              # What the candidates are built from: the artifacts the method has loaded so far (θ_sft,
              # backbones of the β chosen before α, value models), by id.
              "inputs": sorted(ctx.artifacts_used),
              # The validation prompts' content (eval-only parameters such as samples per prompt change it).
              "validation": stable_hash([_content(p) for p in task.validation_prompts()])}
    selection = ctx.artifact("selection", recipe, build, load, trains=False)
    best = selection["chosen_index"]
    ctx.record(f"{name}_selection", {"chosen": candidates[best], "grid": grid, "candidates": selection["candidates"]})
    return candidates[best]

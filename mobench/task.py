"""The task contract: objectives and their judges, evaluation data, the HV reference point, and the
policy family that methods train and merge.

Methods are written against this contract only. A policy *state* is a mapping from parameter
names to arrays or tensors (the quadratic task: {"theta": θ}; a text task: a model's state dict),
so merging code is the same for every task.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mobench.generator import Generator
from mobench.judge import Judge, weighted_mean
from mobench.params import params_to_dict
from mobench.registry import Component, judges

if TYPE_CHECKING:
    from mobench.context import RunContext

PolicyState = Mapping[str, Any]


@dataclass(frozen=True)
class Objective:
    name: str
    judge: str  # a judge spec, e.g. "quadratic:center=[1,1]:curvature=[1,1]"
    description: str = ""


class Task(Component):
    """A multi-objective trade-off. Subclasses declare the class attributes and the policy family."""

    objectives: ClassVar[tuple[Objective, ...]] = ()
    reference_point: ClassVar[tuple[float, ...]] = ()
    reference_point_note: ClassVar[str] = ""
    default_grid: ClassVar[int] = 11
    # True for tasks whose policies decode token by token (what MOD and MAGE steer).
    token_level: ClassVar[bool] = False
    outputs_text: ClassVar[bool] = False  # True: outputs are text replies (what text judges score)
    # Packages whose versions every results file of this task records.
    uses_packages: ClassVar[tuple[str, ...]] = ()

    @property
    def n_objectives(self) -> int:
        return len(self.objectives)

    @cached_property
    def judges(self) -> list[Judge]:
        return [judges.create(objective.judge) for objective in self.objectives]

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> np.ndarray:
        """Rewards as an (n_samples x n_objectives) array, one judge per objective."""
        columns = [judge.score(prompts, outputs) for judge in self.judges]
        return np.asarray(columns, dtype=float).T.reshape(len(outputs), self.n_objectives)

    def sample_weights(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[np.ndarray | None] | None:
        """Per objective, each sample's weight in a cell's mean (None for a judge that takes a plain mean),
        or None when every judge does (`Judge.sample_weights`)."""
        columns = [judge.sample_weights(prompts, outputs) for judge in self.judges]
        if all(column is None for column in columns):
            return None
        return [None if column is None else np.asarray(column, dtype=float) for column in columns]

    def mean_rewards(self, prompts: Sequence[Any], outputs: Sequence[Any], scores: np.ndarray) -> np.ndarray:
        """One cell's mean reward per objective from `score`'s array, as each judge aggregates
        (`Judge.sample_weights`; most judges: a plain mean)."""
        return pooled_means(scores, self.sample_weights(prompts, outputs))

    @abstractmethod
    def evaluation_prompts(self) -> list[Any]:
        """The prompts every method answers at every μ (the test split)."""

    def validation_prompts(self) -> list[Any]:
        """The prompts hyper-parameters are selected on (a split apart from the test prompts where the
        task has one; the quadratic tasks have no prompts, so they use the same single empty prompt)."""
        return self.evaluation_prompts()

    def prompt_record(self, prompt: Any) -> Any:
        """How a prompt appears in per-sample records (JSON): by default the prompt itself."""
        return prompt

    def point_output(self, outputs: list[Any]) -> Any:
        """What results.json shows as a point's `output`: by default every output, in prompt order."""
        return outputs

    # --- the policy family -------------------------------------------------------------------
    @abstractmethod
    def policy_recipe(self) -> dict[str, Any]:
        """Everything that defines how policies are trained (goes into artifact recipes)."""

    def initial_policy_recipe(self) -> dict[str, Any]:
        """Everything that defines θ_sft, for the artifacts built from it without RL (RiC, MODPO, value
        models): a text task leaves its RL settings out, so an RL-only change retrains none of them."""
        return self.policy_recipe()

    @abstractmethod
    def initial_policy(self, ctx: RunContext) -> PolicyState:
        """θ_sft: the starting point of RL and the reference of extrapolation."""

    @abstractmethod
    def train_policy(self, ctx: RunContext, init: PolicyState, weights: np.ndarray,
                     fraction: float) -> tuple[PolicyState, dict[str, Any]]:
        """RL with reward weights w from `init`, for `fraction` of the full budget.

        Returns the trained state and training information for the artifact manifest.
        """

    @abstractmethod
    def save_policy(self, state: PolicyState, directory: Path) -> None: ...

    @abstractmethod
    def load_policy(self, directory: Path) -> PolicyState: ...

    @abstractmethod
    def generator(self, ctx: RunContext, state: PolicyState) -> Generator:
        """A generator that answers prompts with the policy `state`."""

    def spec(self) -> str:
        """`name` plus the parameters that differ from their defaults, e.g. `quad:eta=0.1`."""
        defaults = params_to_dict(self.Params())
        changed = {k: v for k, v in self.resolved_params().items() if defaults.get(k) != v}
        return self.name + "".join(f":{k}={_spec_value(v)}" for k, v in changed.items())

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.spec(),
            "version": self.version,
            "params": self.resolved_params(),
            "objectives": [{"name": o.name, "judge": j.id} for o, j in zip(self.objectives, self.judges)],
            "reference_point": list(self.reference_point),
            "reference_point_note": self.reference_point_note,
        }


def _spec_value(value: Any) -> str:
    """A parameter value as the spec parser reads it back (lists as `[a,b]`, not Python's repr)."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def pooled_means(scores: np.ndarray, weights: Sequence[np.ndarray | None] | None) -> np.ndarray:
    """Column means of a cell's (n_samples x n_objectives) rewards, weighted for the objectives whose
    judge pools by weights (`Task.sample_weights`; None: every mean plain)."""
    # One mean over the whole array, not one per column: a column's mean can differ from it in the last
    # bit, and unweighted runs must keep reproducing their committed results exactly.
    means = np.asarray(scores, dtype=float).mean(axis=0)
    for i, column in enumerate(weights or []):
        if column is not None:
            means[i] = weighted_mean(scores[:, i], column)
    return means

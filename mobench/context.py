"""What a method sees while it prepares and generates: the task, the seed, and artifact access.

Every artifact a method touches is recorded, so each results file names the artifacts (ids and
recipes) it used. Loaded artifacts are memoised for the whole run, so methods that share
artifacts (Rewarded Soups' experts, MORLHF at μ = e_i) load them once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mobench.artifacts import ArtifactStore
from mobench.preferences import canonical
from mobench.progress import Reporter
from mobench.task import PolicyState, Task


class RunContext:
    def __init__(self, task: Task, seed: int, store: ArtifactStore, *, allow_training: bool = True,
                 reporter: Reporter | None = None, memo: dict[str, Any] | None = None) -> None:
        self.task = task
        self.seed = seed
        self.store = store
        self.allow_training = allow_training
        self.reporter = reporter or Reporter(quiet=True)
        self.memo: dict[str, Any] = memo if memo is not None else {}
        self.artifacts_used: dict[str, dict[str, Any]] = {}
        self.details: dict[str, Any] = {}
        self._building = 0  # > 0 while an artifact's build runs: what it loads is its own dependency

    def take_artifacts_used(self) -> dict[str, dict[str, Any]]:
        """The artifacts touched since the last call (prepare, then each cell), in first-use order."""
        used, self.artifacts_used = self.artifacts_used, {}
        return used

    def record(self, key: str, value: Any) -> None:
        """Note a choice the method made while preparing (a selected β, α, γ …) for the results file."""
        self.details[key] = value

    def artifact(self, kind: str, recipe: dict[str, Any], build: Callable[[Path], dict[str, Any] | None],
                 load: Callable[[Path], Any] | None, uses_packages: tuple[str, ...] = (), uses_rl: bool = True,
                 trains: bool = True) -> Any:
        """Load the artifact named by (kind, recipe), building it first if it is missing; `load=None`
        only makes sure it is built (`mobench prepare` need not hold every MORLHF policy in memory).

        `uses_rl=False` declares that neither the build nor anything it loads runs RL: the task's RL-only
        parameters then stay out of the recipe (see `artifact_params`). `trains=False` (a selection on the
        validation split) may be built under `--no-train`, which forbids training only."""
        from mobench.params import artifact_params

        full_recipe = {"task": self.task.name, "task_version": self.task.version,
                       "task_params": artifact_params(self.task.params, uses_rl), **recipe}
        packages = tuple(dict.fromkeys((*self.task.uses_packages, *uses_packages)))

        def logged_build(directory: Path) -> dict[str, Any] | None:
            self.reporter.log(f"building {kind} artifact ({_short(recipe)})")
            self._building += 1
            try:
                return build(directory)
            finally:
                self._building -= 1

        artifact, path = self.store.get_or_build(kind, full_recipe, logged_build,
                                                 allow_build=self.allow_training or not trains,
                                                 uses_packages=packages)
        # Only direct uses are listed: a build's own inputs are in its recipe, and listing them would make
        # the list depend on what the store already held (`prepare` then `run` vs `run` alone).
        if not self._building:
            self.artifacts_used[artifact] = {"kind": kind, "recipe": full_recipe}
        if load is None:
            return None
        if artifact not in self.memo:
            self.memo[artifact] = load(path)
        return self.memo[artifact]

    def sft_policy(self) -> PolicyState:
        """θ_sft, the task's initial policy."""
        return self.task.initial_policy(self)

    def rl_policy(self, weights: np.ndarray | list[float], fraction: float = 1.0) -> PolicyState:
        """The policy trained by RL with reward weights w (shared by every method that asks for w)."""
        return self._rl_artifact(weights, fraction, load=True)

    def build_rl_policy(self, weights: np.ndarray | list[float]) -> None:
        """Build the RL policy for w if it is missing, without holding it in memory (`mobench prepare`)."""
        self._rl_artifact(weights, 1.0, load=False)

    def _rl_artifact(self, weights: np.ndarray | list[float], fraction: float, load: bool) -> Any:
        w = canonical(weights)
        task = self.task

        def build(directory: Path) -> dict[str, Any]:
            state, info = task.train_policy(self, self.sft_policy(), np.asarray(w), fraction)
            task.save_policy(state, directory)
            return info

        recipe = {"policy": task.policy_recipe(), "weights": w, "fraction": fraction, "seed": self.seed}
        return self.artifact("rl-policy", recipe, build, task.load_policy if load else None)


def _short(recipe: dict[str, Any]) -> str:
    shown = {k: v for k, v in recipe.items() if k in ("weights", "fraction", "objective", "seed")}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "…"

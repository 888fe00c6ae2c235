"""Synthetic quadratic tasks (paper 3.3.2, Example 1, and 4.1, Theorem 1).

The policy is a parameter vector θ; objective i rewards r_i(θ) = −Σ_d k_{i,d} (θ_d − c_{i,d})².
"Training a policy for reward weights w" is real gradient ascent (torch) on wᵀr(θ) − η‖θ − θ_sft‖²
from θ_sft = 0, so the same methods and code paths as the text tasks run here, and the exact
optimum is known in closed form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mobench.registry import tasks
from mobench.task import Objective, PolicyState, Task

if TYPE_CHECKING:
    from mobench.context import RunContext


@dataclass(frozen=True)
class QuadraticTaskParams:
    eta: float = field(default=0.0, metadata={"help": "proximity penalty η‖θ − θ_sft‖² in training"})
    steps: int = field(default=2000, metadata={"help": "gradient-ascent steps of a full training run"})

    def __post_init__(self) -> None:
        if self.eta < 0:
            raise ValueError("eta must be >= 0")
        if self.steps < 1:
            raise ValueError("steps must be >= 1")


def _objective(name: str, center: tuple[float, ...], curvature: tuple[float, ...]) -> Objective:
    spec = f"quadratic:center={list(center)}:curvature={list(curvature)}".replace(" ", "")
    return Objective(name, spec, f"−Σ k(θ − c)², c = {center}, k = {curvature}")


class QuadraticTask(Task):
    """Base of the quadratic tasks; subclasses set CENTERS and CURVATURES (n objectives × d)."""

    Params = QuadraticTaskParams
    version = "1"
    uses_packages = ("torch",)
    CENTERS: ClassVar[tuple[tuple[float, ...], ...]] = ()
    CURVATURES: ClassVar[tuple[tuple[float, ...], ...]] = ()

    @property
    def dim(self) -> int:
        return len(self.CENTERS[0])

    def evaluation_prompts(self) -> list[Any]:
        return [""]  # the policy's output does not depend on a prompt

    def point_output(self, outputs: list[Any]) -> Any:
        return outputs[0]

    def optimum(self, weights: np.ndarray) -> np.ndarray:
        """Closed-form maximiser of wᵀr(θ) − η‖θ‖² (θ_sft = 0), for tests and documentation."""
        k = np.asarray(self.CURVATURES) * np.asarray(weights)[:, None]
        c = np.asarray(self.CENTERS)
        return (k * c).sum(axis=0) / (k.sum(axis=0) + self.params.eta)

    # --- policy family -----------------------------------------------------------------------
    def policy_recipe(self) -> dict[str, Any]:
        return {"optimizer": "gradient-ascent", "steps": self.params.steps, "eta": self.params.eta,
                "theta_sft": [0.0] * self.dim}

    def initial_policy(self, ctx: RunContext) -> PolicyState:
        return {"theta": np.zeros(self.dim)}

    def train_policy(self, ctx: RunContext, init: PolicyState, weights: np.ndarray,
                     fraction: float) -> tuple[PolicyState, dict[str, Any]]:
        import torch

        centers = torch.tensor(self.CENTERS, dtype=torch.float64)
        curvatures = torch.tensor(self.CURVATURES, dtype=torch.float64)
        w = torch.tensor(weights, dtype=torch.float64)
        theta_sft = torch.tensor(np.asarray(init["theta"]), dtype=torch.float64)
        theta = theta_sft.clone().requires_grad_(True)
        # Step 1/L for the L-smooth concave objective: converges geometrically on every coordinate.
        smoothness = 2 * float(((w[:, None] * curvatures).sum(0) + self.params.eta).max())
        optimizer = torch.optim.SGD([theta], lr=1.0 / smoothness, maximize=True)
        steps = max(1, round(self.params.steps * fraction))
        curve = []
        for step in range(steps):
            optimizer.zero_grad()
            rewards = -(curvatures * (theta - centers) ** 2).sum(dim=1)
            objective = w @ rewards - self.params.eta * ((theta - theta_sft) ** 2).sum()
            objective.backward()
            optimizer.step()
            objective = objective.detach()
            if step % max(1, steps // 20) == 0 or step == steps - 1:
                curve.append({"step": step, "objective": round(objective.item(), 12)})
        return {"theta": theta.detach().numpy().copy()}, {"algorithm": "gradient ascent (torch SGD, lr 1/L)",
                                                            "steps": steps, "curve": curve}

    def save_policy(self, state: PolicyState, directory: Path) -> None:
        (directory / "theta.json").write_text(json.dumps([float(x) for x in state["theta"]]))

    def load_policy(self, directory: Path) -> PolicyState:
        return {"theta": np.asarray(json.loads((directory / "theta.json").read_text()), dtype=float)}

    def generator(self, ctx: RunContext, state: PolicyState) -> _ThetaGenerator:
        return _ThetaGenerator(np.asarray(state["theta"], dtype=float))


class _ThetaGenerator:
    """The 'output' of a quadratic policy is its parameter vector."""

    def __init__(self, theta: np.ndarray) -> None:
        self.theta = [round(float(x), 10) + 0.0 for x in theta]

    def generate(self, prompts: list[Any]) -> list[Any]:
        return [list(self.theta) for _ in prompts]


@tasks.register("quad")
class Quad(QuadraticTask):
    """Paper Example 1: r1 = −(x−1)² − (y−1)², r2 = −(x−3)² − 4(y+1)²; θ_sft = (0, 0)."""

    CENTERS = ((1.0, 1.0), (3.0, -1.0))
    CURVATURES = ((1.0, 1.0), (1.0, 4.0))
    objectives = (_objective("r1", CENTERS[0], CURVATURES[0]), _objective("r2", CENTERS[1], CURVATURES[1]))
    reference_point = (-10.0, -25.0)
    reference_point_note = ("below the worst value of each reward on the exact front "
                            "(r1 >= -8 at θ=(3,-1), r2 >= -20 at θ=(1,1)), rounded down")


@tasks.register("quad3")
class Quad3(QuadraticTask):
    """Three quadratic rewards in R² with distinct, anisotropic curvatures (exercises n = 3)."""

    CENTERS = ((1.0, 1.0), (3.0, -1.0), (0.0, -2.0))
    CURVATURES = ((1.0, 1.0), (1.0, 4.0), (4.0, 0.5))
    objectives = tuple(_objective(f"r{i + 1}", c, k) for i, (c, k) in enumerate(zip(CENTERS, CURVATURES)))
    default_grid = 6
    reference_point = (-12.0, -25.0, -40.0)
    reference_point_note = ("below the worst value of each reward over the three single-reward optima "
                            "(-10, -20, -36.5), rounded down")

"""The method contract: declare and build what is needed, then a generator for each μ."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from mobench.generator import Generator
from mobench.registry import Component

if TYPE_CHECKING:
    from mobench.context import RunContext
    from mobench.task import Task


class Method(Component):
    """A CMOG method. Subclasses set `Params` (a dataclass) and implement `generator`."""

    # Packages whose versions every results file that uses this method records.
    uses_packages: ClassVar[tuple[str, ...]] = ()

    def check_task(self, task: Task) -> None:
        """Raise MobenchError if this method cannot run on `task` (called before anything loads)."""

    def own_preferences(self, task: Task) -> np.ndarray | None:
        """The preferences this method can serve, when it trains one model per point of its own
        grid (MODPO); None: every preference of the run's grid. Results state each method's N."""
        return None

    def prepare(self, ctx: RunContext) -> None:
        """Train or load everything every μ needs; selections are recorded with ctx.record()."""

    def prepare_preference(self, ctx: RunContext, mu: np.ndarray) -> None:
        """Train or load what preference μ alone needs (MORLHF: its own RL policy). `mobench prepare`
        calls it for every μ of the run after `prepare`; a run builds it when it first needs it."""

    @abstractmethod
    def generator(self, ctx: RunContext, mu: np.ndarray) -> Generator:
        """The generator for preference μ."""

"""What a method builds for one preference μ: something that turns prompts into outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Generator(Protocol):
    def generate(self, prompts: Sequence[Any]) -> list[Any]:
        """One output per prompt, in order."""
        ...

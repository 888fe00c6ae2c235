"""Progress bars (rich) on a terminal, plain status lines otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Reporter:
    """Status messages and progress bars for long steps (training, sweeps), written to stderr."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False)

    @contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[Any]:
        """A progress bar with `.advance(n)` and `.update(description=...)`."""
        if self.quiet or not self.console.is_terminal:
            self.log(f"{description} ({total} steps)" if total else description)
            yield _NullBar()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=False) as progress:
            task_id = progress.add_task(description, total=total)
            yield _RichBar(progress, task_id)


class _NullBar:
    def advance(self, steps: int = 1) -> None:
        pass

    def update(self, **_: Any) -> None:
        pass


class _RichBar:
    def __init__(self, progress: Any, task_id: Any) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task_id, steps)

    def update(self, **fields: Any) -> None:
        self._progress.update(self._task_id, **fields)

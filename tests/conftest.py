"""Shared fixtures: an isolated artifact store and working directory, and the CLI in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MOBENCH_HOME and working directory (default run dirs land there)."""
    home = tmp_path / "home"
    monkeypatch.setenv("MOBENCH_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    from mobench.cli import main

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


def run_subprocess(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`mobench ARGS` in a fresh interpreter (for plugins, timing and kill tests)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mobench.cli", *args], capture_output=True, text=True,
                          env=full_env, **kwargs)

"""Shared fixtures: an isolated artifact store and working directory, and the CLI in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
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


@pytest.fixture(autouse=True)
def fresh_hub_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`--offline` sets the offline variables in the process, and hub probes are remembered per process:
    no test inherits either from the one before."""
    from mobench import hub

    saved = {name: os.environ.get(name) for name in hub.OFFLINE_ENV}
    monkeypatch.setattr(hub, "_HUB_PROBES", {})
    monkeypatch.setattr(hub, "_UNREACHABLE_BECAUSE", [])
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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


def first_word_value_data() -> tuple:
    """A tiny GPT-2 and 160 samples whose reward is set by the reply's first word ("yes" 1, "no" 0):
    a token-level signal a value model must pick up. Returns (tokenizer, model, prompts, replies,
    rewards, groups), token ids as the value trainer takes them."""
    import numpy as np

    from mobench.tinylm import TinyLMSpec, build_model, train_tokenizer

    words = "maybe hello there friend water fire".split()
    rng = np.random.default_rng(0)
    tokenizer = train_tokenizer([" ".join(rng.choice(words + ["yes", "no"], 8)) for _ in range(200)], 280)
    model = build_model(TinyLMSpec(vocab_size=280, n_layer=1, n_embd=32, n_head=2, n_positions=64), tokenizer, 0)
    prompts, replies, rewards, groups = [], [], [], []
    for i in range(160):
        first = "yes" if i % 2 else "no"
        replies.append(tokenizer(f" {first} " + " ".join(rng.choice(words, 5)))["input_ids"])
        prompts.append(tokenizer("User: hi\nAssistant:")["input_ids"])
        rewards.append(1.0 if first == "yes" else 0.0)
        groups.append(i)
    return tokenizer, model, prompts, replies, rewards, groups


def git_head(repo: Path) -> str | None:
    """HEAD of `repo`, or None without a checkout, without git, or where git refuses it (safe.directory)."""
    try:
        done = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 and (repo / ".git").exists() else None

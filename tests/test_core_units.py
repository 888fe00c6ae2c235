"""Unit behaviour of the core pieces that every method relies on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from mobench.errors import MobenchError


# --- merging ---------------------------------------------------------------------------------

def test_task_arithmetic_identities():
    from mobench.merging import task_arithmetic

    rng = np.random.default_rng(0)
    ref = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    models = [{k: v + rng.normal(size=v.shape) for k, v in ref.items()} for _ in range(3)]
    coeffs = [0.2, 0.5, 0.3]
    # Σ λ = 1: relative to the reference or not, the same merge.
    merged = task_arithmetic(ref, models, coeffs)
    plain = task_arithmetic(None, models, coeffs)
    for key in ref:
        np.testing.assert_allclose(merged[key], plain[key])
    # A one-hot coefficient returns that model; all zeros return the reference.
    one_hot = task_arithmetic(ref, models, [0, 1, 0])
    zeros = task_arithmetic(ref, models, [0, 0, 0])
    for key in ref:
        np.testing.assert_allclose(one_hot[key], models[1][key])
        np.testing.assert_allclose(zeros[key], ref[key])
    # Negative coefficients extrapolate: θ_ref + 1.5(θ_1 − θ_ref) − 0.5(θ_2 − θ_ref).
    extrapolated = task_arithmetic(ref, models[:2], [1.5, -0.5])
    np.testing.assert_allclose(extrapolated["w"], ref["w"] + 1.5 * (models[0]["w"] - ref["w"])
                               - 0.5 * (models[1]["w"] - ref["w"]))


def test_task_arithmetic_on_torch_tensors_and_mismatched_models():
    import torch

    from mobench.merging import task_arithmetic

    a = {"w": torch.ones(2)}
    b = {"w": torch.full((2,), 3.0)}
    assert torch.allclose(task_arithmetic(None, [a, b], [0.5, 0.5])["w"], torch.full((2,), 2.0))
    with pytest.raises(ValueError, match="different parameters"):
        task_arithmetic(None, [a, {"v": torch.ones(2)}], [0.5, 0.5])
    with pytest.raises(ValueError, match="coefficients"):
        task_arithmetic(None, [a, b], [1.0])


def test_bf16_weights_are_merged_in_fp32_and_rounded_once():
    import torch

    from mobench.merging import task_arithmetic

    weights = {"w": torch.randn(4096, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)}
    merged = task_arithmetic(None, [weights, weights], [0.3, 0.7])
    assert merged["w"].dtype == torch.bfloat16 and torch.equal(merged["w"], weights["w"])  # a model with itself
    other = {"w": weights["w"] + 1e-2}
    half = task_arithmetic(None, [weights, other], [0.5, 0.5])["w"]
    exact = ((weights["w"].float() + other["w"].float()) / 2).to(torch.bfloat16)
    assert torch.equal(half, exact)


def test_bone_soup_coefficients_recover_mu():
    from mobench.soups import backbone_weights, bone_soup_coefficients

    for n in (2, 3, 4):
        weights = backbone_weights(0.7, n)
        assert np.allclose(weights.sum(axis=0), 1.0)
        mu = np.random.default_rng(n).dirichlet(np.ones(n))
        lam = bone_soup_coefficients(weights, mu)
        assert np.allclose(weights @ lam, mu)  # the merged reward weights equal μ


# --- parameters ------------------------------------------------------------------------------

def test_spec_parsing_keeps_brackets_together():
    from mobench.params import parse_spec, split_top_level

    assert split_top_level("a:xs=[1,2],b") == ["a:xs=[1,2]", "b"]
    assert parse_spec("bone-soup:beta=0.7:alpha=0") == ("bone-soup", {"beta": "0.7", "alpha": "0"})
    with pytest.raises(MobenchError, match="given twice"):
        parse_spec("rs:a=1:a=2")


def test_task_spec_round_trips_through_the_parser():
    from mobench.registry import tasks

    task = tasks.create("hh2:judge_models=[helpful=/m/h,humor=/m/x]:n_rl=7")
    again = tasks.create(task.spec())
    assert again.params == task.params and again.params.judge_models == ("helpful=/m/h", "humor=/m/x")


@dataclass(frozen=True)
class P:
    gamma: float = 1.0
    steps: int = 10
    mode: Literal["greedy", "sample"] = "greedy"
    sizes: tuple[int, ...] = (1,)
    flag: bool = False


def test_typed_parameters_are_coerced_and_checked():
    from mobench.params import build_params

    params = build_params(P, {"gamma": "0.5", "steps": "3", "mode": "sample", "sizes": "[2,3]",
                              "flag": "true"}, where="method 'x'")
    assert params == P(0.5, 3, "sample", (2, 3), True)
    with pytest.raises(MobenchError, match="steps"):
        build_params(P, {"steps": "2.5"}, where="method 'x'")
    with pytest.raises(MobenchError, match="mode"):
        build_params(P, {"mode": "beam"}, where="method 'x'")
    with pytest.raises(MobenchError, match="did you mean 'gamma'"):
        build_params(P, {"gama": "1"}, where="method 'x'")


# --- artifact store --------------------------------------------------------------------------

def test_source_revision_names_the_checkout_or_nothing(tmp_path, monkeypatch):
    from conftest import git_head

    import mobench
    from mobench.versions import source_revision

    repo = Path(mobench.__file__).resolve().parent.parent
    head = git_head(repo)
    if head is not None:  # a checkout that git reads (CI's clean clone)
        assert source_revision()["commit"] == head
    (tmp_path / "mobench").mkdir()  # an installed copy: no checkout around it
    monkeypatch.setattr(mobench, "__file__", str(tmp_path / "mobench" / "__init__.py"))
    assert source_revision() is None


def test_source_revision_counts_code_changes_not_rewritten_results(tmp_path, monkeypatch):
    """A rerun of a committed reference run rewrites files under results/: that is output, not code."""
    import shutil
    import subprocess

    import mobench
    from mobench.versions import source_revision

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "checkout"
    (repo / "mobench").mkdir(parents=True)
    (repo / "results" / "quad").mkdir(parents=True)
    (repo / "mobench" / "__init__.py").write_text("")
    (repo / "results" / "quad" / "table.md").write_text("old\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    monkeypatch.setattr(mobench, "__file__", str(repo / "mobench" / "__init__.py"))
    assert source_revision()["modified"] is False
    (repo / "results" / "quad" / "table.md").write_text("new\n")
    assert source_revision()["modified"] is False
    (repo / "mobench" / "__init__.py").write_text("x = 1\n")
    assert source_revision()["modified"] is True


def test_artifact_is_built_once_and_content_addressed(tmp_path):
    from mobench.artifacts import ArtifactStore

    store = ArtifactStore(tmp_path)
    calls = []

    def build(folder: Path) -> dict:
        calls.append(folder)
        (folder / "weights.txt").write_text("1 2 3")
        return {"loss": 0.5}

    first = store.get_or_build("policy", {"w": [1, 0], "seed": 0}, build)
    second = store.get_or_build("policy", {"seed": 0, "w": [1, 0]}, build)  # key order is irrelevant
    assert first == second and len(calls) == 1
    other = store.get_or_build("policy", {"w": [0, 1], "seed": 0}, build)
    assert other[0] != first[0] and len(calls) == 2
    manifest = store.manifest(first[0])
    assert manifest["recipe"] == {"w": [1, 0], "seed": 0} and manifest["info"] == {"loss": 0.5}
    assert "wall_time_s" in manifest and "mobench" in manifest["versions"] and "source" in manifest
    with pytest.raises(MobenchError, match="--no-train"):
        store.get_or_build("policy", {"w": [0.5, 0.5]}, build, allow_build=False)


def test_failed_build_leaves_nothing_complete(tmp_path):
    from mobench.artifacts import ArtifactStore

    store = ArtifactStore(tmp_path)

    def broken(folder: Path) -> dict:
        (folder / "half.bin").write_text("partial")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        store.get_or_build("policy", {"seed": 1}, broken)
    assert not store.root.exists() or not any(store.root.iterdir())
    built = store.get_or_build("policy", {"seed": 1}, lambda f: (f / "ok").write_text("done") and None)
    assert (built[1] / "ok").read_text() == "done"


KILLED_BUILD = """
import os, sys, time
from pathlib import Path
from mobench.artifacts import ArtifactStore

def build(folder):
    (folder / "weights.bin").write_text("half")
    print("building", flush=True)
    time.sleep(60)

ArtifactStore(Path(sys.argv[1])).get_or_build("policy", {"seed": 2}, build)
"""


def test_killed_build_leaves_nothing_a_later_run_takes_for_complete(tmp_path):
    from mobench.artifacts import ArtifactStore, artifact_id

    script = tmp_path / "build.py"
    script.write_text(KILLED_BUILD)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "home")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "building"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ArtifactStore(tmp_path / "home")
    assert not store.exists(artifact_id("policy", {"seed": 2}))
    rebuilt: list[bool] = []

    def build(folder: Path) -> None:
        rebuilt.append(True)
        (folder / "weights.bin").write_text("full")

    assert list((tmp_path / "home" / "tmp").glob("policy-*"))  # the killed build's half-written folder
    _, folder = store.get_or_build("policy", {"seed": 2}, build)
    assert rebuilt == [True] and (folder / "weights.bin").read_text() == "full"
    assert not list((tmp_path / "home" / "tmp").glob("policy-*"))  # the rebuild cleared it away


def test_leftovers_of_killed_processes_are_removed_unless_in_use(tmp_path):
    import fcntl

    from mobench.artifacts import ArtifactStore
    from mobench.cells import CellStore

    store = ArtifactStore(tmp_path / "home")
    dead = tmp_path / "home" / "tmp" / "policy-aaaa.123.deadbeef"  # a recipe that will never be built again
    live = tmp_path / "home" / "tmp" / "policy-bbbb.456.cafecafe"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / "weights.bin").write_text("half")
    (tmp_path / "home" / "locks").mkdir()
    with open(tmp_path / "home" / "locks" / "policy-bbbb.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process is building policy-bbbb right now
        assert store.remove_stale_staging() == [dead.name]
    assert not dead.exists() and live.exists()

    cells = CellStore(tmp_path / "run")
    cells.cells.mkdir(parents=True)
    old, fresh = cells.cells / ".abc.json.x1.tmp", cells.cells / ".def.json.x2.tmp"
    for tmp in (old, fresh):
        tmp.write_text("{")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert cells.remove_stale_temporaries() == [old.name] and fresh.exists()


# --- leaderboard -----------------------------------------------------------------------------

def test_leaderboard_collects_runs_into_one_table_per_task(cli, tmp_path):
    assert cli("-q", "run", "--task", "quad", "--methods", "rs,morlhf", "--grid", "3", "--out", "runs/quad").code == 0
    assert cli("-q", "run", "--task", "quad3", "--methods", "rs", "--grid", "3", "--out", "runs/quad3").code == 0
    result = cli("leaderboard", "runs", "--out", "board")
    assert result.code == 0, result.err
    markdown = (tmp_path / "board" / "leaderboard.md").read_text()
    assert markdown.count("\n## ") == 2 and "| rs " in markdown and "| morlhf " in markdown
    assert "**" in markdown  # best value marked
    html = (tmp_path / "board" / "leaderboard.html").read_text()
    assert html.count("<table") == 2 and ("<b>" in html or "<strong>" in html)
    # Another seed is another table, not a row that silently replaces the first run's.
    assert cli("-q", "run", "--task", "quad", "--methods", "rs", "--grid", "3", "--seed", "1",
               "--out", "runs/quad-seed1").code == 0
    assert cli("leaderboard", "runs", "--out", "board3").code == 0
    markdown = (tmp_path / "board3" / "leaderboard.md").read_text()
    assert markdown.count("\n## ") == 3 and "seed 0, preferences grid:3, Ctrl strict ties" in markdown
    only_md = cli("leaderboard", "runs", "--format", "md", "--out", "board2")
    assert only_md.code == 0 and not (tmp_path / "board2" / "leaderboard.html").exists()
    # One method under two spellings (one method id) is one row: the later file's, and the command says so.
    assert cli("-q", "run", "--task", "quad", "--methods", "bone-soup", "--grid", "3", "--out", "runs/quad-a").code == 0
    assert cli("-q", "run", "--task", "quad", "--methods", "bone-soup:beta=0.7", "--grid", "3",
               "--out", "runs/quad-b").code == 0
    spelled = cli("leaderboard", "runs", "--out", "board4")
    tables = (tmp_path / "board4" / "leaderboard.md").read_text().split("\n## ")[1:]
    quad_table = next(t for t in tables if t.startswith("quad (") and "— seed 0," in t)
    assert "| rs " in quad_table
    assert "| bone-soup:beta=0.7 |" in quad_table and "| bone-soup |" not in quad_table  # runs/quad-b sorts later
    assert "bone-soup (runs/quad-a) by bone-soup:beta=0.7 (runs/quad-b)" in spelled.err

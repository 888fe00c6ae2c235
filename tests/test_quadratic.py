"""Paper Example 1 and Theorem 1 on the synthetic quadratic tasks, through the real code paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mobench.artifacts import ArtifactStore
from mobench.context import RunContext
from mobench.registry import methods, tasks
from mobench.soups import backbone_weights, bone_soup_coefficients


def _output(method_spec: str, mu, task_spec: str = "quad") -> np.ndarray:
    task = tasks.create(task_spec)
    method = methods.create(method_spec)
    method.check_task(task)
    ctx = RunContext(task, seed=0, store=ArtifactStore())
    method.prepare(ctx)
    (output,) = method.generator(ctx, np.asarray(mu, dtype=float)).generate([""])
    return np.asarray(output)


@pytest.mark.parametrize("spec, expected", [
    ("rs", (2.0, 0.0)),
    ("bone-soup:beta=0.6:alpha=0", (2.0, -0.5844)),
    ("morlhf", (2.0, -0.6)),
])
def test_example_1_at_equal_preference(spec, expected):
    assert _output(spec, (0.5, 0.5)) == pytest.approx(expected, abs=1e-3)


def test_bone_soup_backbones_are_the_papers():
    """θ_bone = (1.8, −5/11) for w = (0.6, 0.4) and (2.2, −5/7) for w = (0.4, 0.6)."""
    task = tasks.create("quad")
    ctx = RunContext(task, seed=0, store=ArtifactStore())
    assert ctx.rl_policy([0.6, 0.4])["theta"] == pytest.approx((1.8, -5 / 11), abs=1e-9)
    assert ctx.rl_policy([0.4, 0.6])["theta"] == pytest.approx((2.2, -5 / 7), abs=1e-9)


def test_backbone_preference_is_recovered_exactly():
    """μ' = (0.4, 0.6) is a backbone's own weight vector: Bone Soup returns that backbone, the optimum."""
    task = tasks.create("quad")
    assert _output("bone-soup:beta=0.6", (0.4, 0.6)) == pytest.approx(task.optimum(np.array([0.4, 0.6])), abs=1e-9)


@pytest.mark.parametrize("task_spec", ["quad", "quad3", "quad:eta=0.5"])
def test_morlhf_training_reaches_the_closed_form_optimum(task_spec):
    task = tasks.create(task_spec)
    rng = np.random.default_rng(0)
    for mu in rng.dirichlet(np.ones(task.n_objectives), size=3):
        assert _output("morlhf", mu, task_spec) == pytest.approx(task.optimum(mu), abs=1e-6)


def test_extrapolation_moves_away_from_sft():
    plain = _output("bone-soup:beta=0.6:alpha=0", (0.5, 0.5))
    extrapolated = _output("bone-soup:beta=0.6:alpha=0.5", (0.5, 0.5))
    assert extrapolated == pytest.approx(1.5 * plain, abs=1e-9)  # θ_sft = 0


def test_theorem_1_bone_soup_beats_soup_inside_the_interval():
    """Isotropic quadratics with distinct k: for μ in the theorem's interval, g_μ(bone) > g_μ(soup)."""
    k1, k2, t1, t2 = 1.0, 3.0, np.array([1.0, 1.0]), np.array([3.0, -1.0])

    def argmax(w):
        return (w[0] * k1 * t1 + w[1] * k2 * t2) / (w[0] * k1 + w[1] * k2)

    def g(mu, theta):
        return -mu * k1 * np.sum((theta - t1) ** 2) - (1 - mu) * k2 * np.sum((theta - t2) ** 2)

    for beta in (0.6, 0.7, 0.8):
        half = np.sqrt(2 * beta**2 - 2 * beta + 1) / 2
        weights = backbone_weights(beta, 2)
        for mu in np.linspace(0.5 - half, 0.5 + half, 9)[1:-1]:
            lam = bone_soup_coefficients(weights, np.array([mu, 1 - mu]))
            bone = lam[0] * argmax(weights[:, 0]) + lam[1] * argmax(weights[:, 1])
            soup = mu * t1 + (1 - mu) * t2
            assert g(mu, bone) > g(mu, soup)


def test_circulant_weights_for_three_objectives():
    weights = backbone_weights(0.6, 3)
    assert weights.sum(axis=0) == pytest.approx(np.ones(3))
    assert weights[0, 1] == pytest.approx(0.2)
    mu = np.array([0.2, 0.3, 0.5])
    lam = bone_soup_coefficients(weights, mu)
    assert weights @ lam == pytest.approx(mu)
    assert lam.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\(1/n, 1\)"):
        backbone_weights(0.3, 3)


def test_quad3_run_end_to_end(cli, tmp_path):
    result = cli("-q", "run", "--task", "quad3", "--methods", "rs,bone-soup,morlhf", "--grid", "3",
                 "--out", str(tmp_path / "q3"))
    assert result.code == 0, result.err
    data = json.loads((tmp_path / "q3" / "results.json").read_text())
    assert data["config"]["n_preferences"] == 6
    assert all(len(p["mu"]) == 3 for p in data["methods"]["rs"]["points"])
    assert data["methods"]["morlhf"]["metrics"]["ip"] >= data["methods"]["rs"]["metrics"]["ip"] - 1e-9


def test_bone_soup_selects_beta_and_alpha_on_validation_and_records_them(cli):
    import json
    from pathlib import Path

    spec = "bone-soup:beta_select=[0.6,0.8]:alpha_select=[0,0.5]"
    result = cli("-q", "run", "--task", "quad", "--methods", spec, "--grid", "3", "--out", "sel")
    assert result.code == 0, result.err
    details = json.loads(Path("sel/results.json").read_text())["methods"][spec]["details"]
    for name, candidates in (("beta", [0.6, 0.8]), ("alpha", [0, 0.5])):
        table = details[f"{name}_selection"]["candidates"]
        assert [row["candidate"] for row in table] == candidates
        best = max(table, key=lambda row: row["validation_hv"])
        assert details[f"{name}_selection"]["chosen"] == best["candidate"] == details[name]

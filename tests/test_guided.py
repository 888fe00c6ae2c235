"""MOD and the four MAGE variants on the micro text task: the equalities the methods must satisfy,
value models, γ selection, and the errors a user gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import REPO

PLUGIN = str(REPO / "tests" / "micro_text.py")
MICRO = "micro-text:sft_steps=30:rl_steps=4:n_test=6:samples=1:max_new_tokens=10"


def _samples(results_dir: Path) -> dict[tuple[str, tuple[float, ...]], list[str]]:
    """(method spec, μ) -> the sampled outputs, in prompt order, from the run's cell records."""
    out = {}
    for cell in sorted((results_dir / "cells").glob("*.json")):
        record = json.loads(cell.read_text())
        out[(record["method"], tuple(record["mu"]))] = [s["output"] for s in record["samples"]]
    return out


def test_gamma_zero_is_the_base_and_every_method_runs(cli, isolated):
    specs = ["bone-soup", "mage-e:gamma=0", "mage-e-m:gamma=0", "mage-i:gamma=0", "mage-i-m:gamma=0", "mod",
             "mage-e-m"]
    result = cli("--plugin", PLUGIN, "-q", "run", "--task", MICRO, "--methods", ",".join(specs), "--grid", "3",
                 "--out", "run")
    assert result.code == 0, result.err
    results = json.loads(Path("run/results.json").read_text())
    samples = _samples(Path("run"))
    names = {key[0] for key in samples}
    base = {mu: out for (name, mu), out in samples.items() if name == "bone-soup"}
    assert len(base) == 3
    for name in names - {"bone-soup", "mod"}:
        if "gamma=0" in name:
            assert {mu: out for (n, mu), out in samples.items() if n == name} == base, name
    # γ chosen on the validation split, recorded with every candidate's validation HV.
    selected = next(m for spec, m in results["methods"].items() if spec == "mage-e-m")
    table = selected["details"]["gamma_selection"]
    assert [row["candidate"] for row in table["candidates"]] == [0.1, 0.2, 1.0, 3.0, 5.0]
    assert selected["details"]["gamma"] == table["chosen"]
    kinds = sorted(a["kind"] for a in selected["artifacts"])
    assert kinds.count("value-model") == 2
    value_recipe = next(a["recipe"] for a in selected["artifacts"] if a["kind"] == "value-model")
    assert value_recipe["value_data"]["judges"] == ["micro-long@1", "micro-short@2"]
    manifest = json.loads(next(isolated.glob("artifacts/value-model-*/manifest.json")).read_text())
    held = manifest["info"]["heldout"]
    assert {"mse", "constant_mse", "final_spearman"} <= set(held) and held["n"] > 0
    # MOD decodes with Rewarded Soups' experts: the same artifacts, not retrained.
    mod = results["methods"]["mod"]
    assert sorted(tuple(a["recipe"]["weights"]) for a in mod["artifacts"] if a["kind"] == "rl-policy") == \
        [(0.0, 1.0), (1.0, 0.0)]


@pytest.fixture(scope="module")
def micro(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One artifact store for the in-process tests of this module (trained once)."""
    from mobench.artifacts import ArtifactStore
    from mobench.registry import load_plugin, tasks

    load_plugin(PLUGIN)
    # Longer SFT so greedy replies are not empty; a strong RL step so the experts differ from θ_sft.
    task = tasks.create(MICRO.replace("sft_steps=30", "sft_steps=150").replace("rl_steps=4", "rl_steps=8:rl_lr=0.003"))
    store = ArtifactStore(tmp_path_factory.mktemp("home"))
    return {"task": task, "store": store, "prompts": task.evaluation_prompts()}


def _context(micro: dict[str, Any]) -> Any:
    from mobench.context import RunContext

    return RunContext(micro["task"], 0, micro["store"])


def _generate(micro: dict[str, Any], spec: str, mu: list[float]) -> list[str]:
    from mobench.registry import methods

    ctx = _context(micro)
    method = methods.create(spec)
    method.check_task(micro["task"])
    method.prepare(ctx)
    return method.generator(ctx, np.asarray(mu)).generate(micro["prompts"])


@pytest.mark.parametrize("mode", ["greedy", "sample"])
@pytest.mark.parametrize("i", [0, 1])
def test_mod_at_a_vertex_is_decoding_of_that_expert(micro, i, mode):
    from mobench.decoding import Plan, Term

    mu = [1.0 - i, float(i)]
    ctx = _context(micro)
    task = micro["task"]
    expert = task.token_model(ctx, ctx.rl_policy(np.eye(2)[i]))
    alone = task.decoder(ctx, Plan(base=[Term(expert, 1.0)]), task.decode_config(mode=mode)).generate(micro["prompts"])
    assert any(alone)
    assert _generate(micro, f"mod:decoding={mode}", mu) == alone
    assert _generate(micro, f"mod:decoding={mode}", [0.5, 0.5]) != alone or mode == "greedy"


@pytest.mark.parametrize("variant", ["mage-e"])
@pytest.mark.parametrize("mu", [[1.0, 0.0], [0.0, 1.0]])
def test_merged_guidance_with_one_objective_equals_the_ensemble(micro, variant, mu):
    name, _, extra = variant.partition(":")
    options = ":gamma=1.0" + (f":{extra}" if extra else "")
    merged = _generate(micro, f"{name}-m{options}", mu)
    assert any(merged)
    assert merged == _generate(micro, f"{name}{options}", mu)


def test_mage_i_weights_the_backbones_by_bone_soup_coefficients(micro):
    """Backbone i's implicit reward is B[:, i]·r, so λ = B⁻¹μ aims the ensemble at μ itself."""
    from mobench.registry import methods
    from mobench.soups import backbone_weights

    ctx = _context(micro)
    method = methods.create("mage-i:gamma=2")
    method.prepare(ctx)
    mu = np.asarray([1.0, 0.0])
    terms = method.generator(ctx, mu).decoder.plan.guides
    lam = np.linalg.solve(backbone_weights(0.7, 2), mu)  # (1.75, -0.75)
    assert [t.weight for t in terms] == pytest.approx([2 * lam[0], 2 * lam[1], -2.0])
    assert backbone_weights(0.7, 2) @ lam == pytest.approx(mu)
    # With extrapolation α the ensemble scales by 1 + α, like the merged π*(μ) of MAGE-I-M.
    extrapolated = methods.create("mage-i:gamma=2:alpha=0.5")
    extrapolated.prepare(ctx)
    terms = extrapolated.generator(ctx, mu).decoder.plan.guides
    assert [t.weight for t in terms] == pytest.approx([3 * lam[0], 3 * lam[1], -3.0])


def test_guidance_changes_the_output_and_the_base_choice_matters(micro):
    plain = _generate(micro, "mage-e-m:gamma=0", [0.5, 0.5])
    assert _generate(micro, "mage-e-m:gamma=5", [0.5, 0.5]) != plain
    assert _generate(micro, "mage-i-m:gamma=5", [0.5, 0.5]) != plain
    assert _generate(micro, "mage-i-m:gamma=0:base=sft", [0.5, 0.5]) != plain


def test_a_merged_guide_equal_to_the_base_runs_once_per_token(micro):
    from mobench.registry import methods

    ctx = _context(micro)
    method = methods.create("mage-i-m:gamma=1")
    method.prepare(ctx)
    plan = method.generator(ctx, np.asarray([0.3, 0.7])).decoder.plan
    assert len(plan.models()) == 2  # the base (= the merged π*) and π_ref


@pytest.mark.parametrize("spec, models", [("mage-i:gamma=1", 4), ("mage-i-m:gamma=1:guide_merge=naive", 3)])
def test_implicit_guides_are_the_stage_one_backbones(micro, spec, models):
    """Paper 6.1.2: the backbones are repurposed as π*, so MAGE-I trains no RL model beyond Bone Soup's."""
    from mobench.registry import methods

    ctx = _context(micro)
    ctx.take_artifacts_used()
    method = methods.create(spec)
    method.prepare(ctx)
    rl = [a["recipe"]["weights"] for a in ctx.take_artifacts_used().values() if a["kind"] == "rl-policy"]
    assert sorted(rl) == [[0.3, 0.7], [0.7, 0.3]]  # the β = 0.7 backbones, no single-objective expert
    assert len(method.generator(ctx, np.asarray([0.3, 0.7])).decoder.plan.models()) == models


def test_beam_look_ahead_runs_through_the_method(micro):
    out = _generate(micro, "mage-i-m:gamma=1:decoding=beam:beam_width=2:expansion=2:lookahead=3", [0.3, 0.7])
    assert len(out) == len(micro["prompts"])
    assert out == _generate(micro, "mage-i-m:gamma=1:decoding=beam:beam_width=2:expansion=2:lookahead=3", [0.3, 0.7])


def test_value_model_learns_a_token_level_signal():
    """On synthetic data whose reward is set by the reply's first word, the value model beats a constant."""
    from conftest import first_word_value_data
    from mobench.values import ValueSettings, train_value_model

    tokenizer, model, prompts, replies, rewards, groups = first_word_value_data()
    _, info = train_value_model(model, prompts, replies, rewards, groups, tokenizer.pad_token_id,
                                ValueSettings(epochs=8, batch_size=16, learning_rate=3e-3), seed=0)
    held = info["heldout"]
    assert held["mse"] < 0.8 * held["constant_mse"]
    assert held["final_spearman"] > 0.3


def test_guided_methods_refuse_tasks_without_tokens(cli):
    result = cli("run", "--task", "quad", "--methods", "mage-e-m")
    assert result.code != 0
    assert "token by token" in result.err and "quad" in result.err
    result = cli("run", "--task", "quad", "--methods", "mod:divergence=js")
    assert result.code != 0 and "divergence" in result.err

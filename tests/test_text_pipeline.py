"""The text policy family end to end on a micro task: SFT and GRPO through trl, merging of full
weights and LoRA ΔW products, artifacts named in results, determinism, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


import pytest

from conftest import REPO

PLUGIN = str(REPO / "tests" / "micro_text.py")
MICRO = "micro-text:sft_steps=30:rl_steps=4:n_test=6:samples=1:max_new_tokens=10"


def _run(cli, out: str, methods: str = "sft,rs,bone-soup,morlhf", task: str = MICRO):
    result = cli("--plugin", PLUGIN, "-q", "run", "--task", task, "--methods", methods, "--grid", "3", "--out", out)
    assert result.code == 0, result.err
    return json.loads(Path(out, "results.json").read_text())


def test_text_methods_run_and_name_their_artifacts_and_judges(cli, isolated):
    results = _run(cli, "run1")
    assert set(results["methods"]) == {"sft", "rs", "bone-soup", "morlhf"}
    assert [o["judge"] for o in results["task"]["objectives"]] == ["micro-long@1", "micro-short@2"]
    for version_of in ("torch", "transformers", "trl"):
        assert results["versions"][version_of] != "not installed"
    rs = results["methods"]["rs"]
    kinds = sorted(a["kind"] for a in rs["artifacts"])
    assert kinds == ["rl-policy", "rl-policy", "sft-policy"]
    weights = sorted(tuple(a["recipe"]["weights"]) for a in rs["artifacts"] if a["kind"] == "rl-policy")
    assert weights == [(0.0, 1.0), (1.0, 0.0)]
    # Rewarded Soups' experts are the policies MORLHF trains at μ = e_i: shared, not retrained.
    morlhf_ids = {a["id"] for a in results["methods"]["morlhf"]["artifacts"]}
    assert {a["id"] for a in rs["artifacts"]} <= morlhf_ids
    point = rs["points"][0]
    assert set(point["output"]) == {"examples", "mean_words", "distinct_ratio"} and len(point["rewards"]) == 2
    # The HV's spread over the test prompts, from the cells' per-sample rewards.
    spread = rs["uncertainty"]
    assert spread["unit"] == "test prompt" and spread["resamples"] == 1000 and spread["hv_se"] > 0
    assert spread["hv_ci95"][0] <= spread["hv_ci95"][1] and spread["n_prompts"] == 6
    # Every method of the run shares the draws, so any two pair up; the resamples themselves are not kept.
    assert results["methods"]["morlhf"]["uncertainty"]["prompts_sha"] == spread["prompts_sha"]
    paired = spread["paired"]["morlhf"]
    assert set(spread["paired"]) == {"sft", "bone-soup", "morlhf"} and "hv_resamples" not in spread
    assert paired["difference"] == pytest.approx(rs["metrics"]["hv"] - results["methods"]["morlhf"]["metrics"]["hv"])
    assert paired["ci95"][0] <= paired["ci95"][1] and paired["se"] >= 0
    # The SFT method answers the same way at every μ (same seed, same policy).
    assert len({json.dumps(p["rewards"]) for p in results["methods"]["sft"]["points"]}) == 1
    manifests = list((isolated / "artifacts").glob("rl-policy-*/manifest.json"))
    info = json.loads(manifests[0].read_text())["info"]
    assert info["settings"]["algorithm"].startswith("grpo") and info["curve"]
    assert {"mean_words", "distinct_ratio"} <= set(info["reply_statistics"])


def test_a_judge_with_sample_weights_sets_the_cell_mean_and_the_rejudged_mean(cli, isolated):
    results = _run(cli, "pooled", "sft", MICRO.replace("micro-text", "micro-pooled"))
    judged = cli("--plugin", PLUGIN, "-q", "judge", "pooled", "--judges", "micro-long-pooled")
    assert judged.code == 0, judged.err
    report = json.loads(next(Path("pooled/judged").glob("*.json")).read_text())
    cells = [json.loads(path.read_text()) for path in Path("pooled/cells").rglob("*.json")]
    for point, rejudged in zip(results["methods"]["sft"]["points"], report["methods"]["sft"]["points"]):
        cell = next(c for c in cells if c["mu"] == point["mu"])
        words = [len(str(s["output"]).split()) for s in cell["samples"]]
        long_scores = [s["rewards"][0] for s in cell["samples"]]
        pooled = sum(w * r for w, r in zip(words, long_scores)) / sum(words)
        assert point["rewards"][0] == pytest.approx(pooled) and rejudged["mean"] == pytest.approx(pooled, abs=1e-6)
        assert point["rewards"][1] == pytest.approx(sum(s["rewards"][1] for s in cell["samples"]) / len(words))
    assert len(set(words)) > 1  # replies of several lengths: the weighted mean is not the plain one
    # The cells keep each sample's weights, so the bootstrap pools as the cell did (its means reproduce them).
    assert all(s["weights"][0] >= 0 and s["weights"][1] is None for c in cells for s in c["samples"])
    assert results["methods"]["sft"]["uncertainty"]["hv_se"] >= 0


def test_same_command_same_results_with_fresh_stores(cli, isolated, monkeypatch, tmp_path):
    first = Path("a")
    _run(cli, str(first), methods="rs")
    monkeypatch.setenv("MOBENCH_HOME", str(tmp_path / "other-home"))
    _run(cli, "b", methods="rs")
    assert (first / "results.json").read_bytes() == Path("b", "results.json").read_bytes()


def test_a_cell_computed_on_other_data_is_computed_again(cli, isolated):
    _run(cli, "run", methods="sft")
    cell_path = sorted(Path("run/cells").glob("*.json"))[0]
    cell = json.loads(cell_path.read_text())
    assert cell["data_sha"]  # the task's data fingerprint
    cell_path.write_text(json.dumps({**cell, "data_sha": "another-corpus"}))
    result = cli("--plugin", PLUGIN, "run", "--task", MICRO, "--methods", "sft", "--grid", "3", "--out", "run")
    assert result.code == 0, result.err
    assert "sft: 1 of 3 preferences" in result.err
    assert json.loads(cell_path.read_text())["data_sha"] == cell["data_sha"]


def test_no_train_refuses_to_build(cli):
    result = cli("--plugin", PLUGIN, "run", "--task", MICRO, "--methods", "rs", "--no-train", "--grid", "3")
    assert result.code == 2 and "--no-train" in result.err


def test_prepare_builds_what_run_then_reuses(cli, isolated):
    result = cli("--plugin", PLUGIN, "-q", "prepare", "--task", MICRO, "--methods", "rs,bone-soup")
    assert result.code == 0, result.err
    assert result.out.count("rl-policy-") == 4 and result.out.count("sft-policy-") == 1
    assert not Path("results").exists()  # prepare writes artifacts only, no empty run directory
    ran = cli("--plugin", PLUGIN, "run", "--task", MICRO, "--methods", "rs,bone-soup", "--grid", "3", "--no-train")
    assert ran.code == 0, ran.err
    assert "building" not in ran.err + ran.out


def test_lora_merge_equals_full_weight_merge_of_delta_products():
    import torch
    from peft import get_peft_model

    from mobench.lora import adapter_deltas, lora_config, merge_lora
    from mobench.merging import task_arithmetic
    from mobench.tinylm import TinyLMSpec, build_model, train_tokenizer

    tokenizer = train_tokenizer(["hello there friend"] * 20, 280)
    base = build_model(TinyLMSpec(vocab_size=280, n_layer=1, n_embd=16, n_head=2, n_positions=32), tokenizer, 0)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    deltas, full_states = [], []
    for seed in (1, 2):
        model = build_model(TinyLMSpec(vocab_size=280, n_layer=1, n_embd=16, n_head=2, n_positions=32), tokenizer, 0)
        peft_model = get_peft_model(model, lora_config(4))
        torch.manual_seed(seed)
        for name, param in peft_model.named_parameters():
            if "lora_" in name:  # B starts at zero; give both factors values so ΔW ≠ 0
                param.data.normal_(0, 0.2)
        deltas.append(adapter_deltas(peft_model))
        full_states.append({k: v.clone() for k, v in peft_model.merge_and_unload().state_dict().items()})
    # One adapter at coefficient 1 is peft's own merge.
    single = merge_lora(base_state, [deltas[0]], [1.0])
    for key in base_state:
        torch.testing.assert_close(single[key], full_states[0][key])
    # Negative coefficients and extrapolation: ΔW products merged = full-weight task arithmetic.
    coefficients = [1.4, -0.4]
    via_deltas = merge_lora(base_state, deltas, coefficients)
    via_full = task_arithmetic(base_state, full_states, coefficients)
    for key in base_state:
        torch.testing.assert_close(via_deltas[key], via_full[key])
    assert any(not torch.equal(via_deltas[k], base_state[k]) for k in base_state)


def test_lora_policies_run_end_to_end(cli):
    results = _run(cli, "lora", methods="rs", task=MICRO + ":lora_r=2")
    assert results["methods"]["rs"]["n_points"] == 3


def test_killed_sft_training_leaves_nothing_taken_for_complete(tmp_path, isolated):
    task = MICRO.replace("sft_steps=30", "sft_steps=100000")
    proc = subprocess.Popen([sys.executable, "-m", "mobench.cli", "--plugin", PLUGIN, "run", "--task", task,
                             "--methods", "sft", "--grid", "3", "--out", str(tmp_path / "killed")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "MOBENCH_HOME": str(isolated)})
    assert proc.stdout is not None
    for line in proc.stdout:
        if "building sft-policy" in line:
            break
    deadline = time.time() + 60
    while time.time() < deadline and not any((isolated / "tmp").glob("sft-policy-*")):
        time.sleep(0.2)
    time.sleep(2.0)  # well inside training
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # The half-trained model stays in the staging area; nothing in the store looks complete.
    assert list((isolated / "tmp").glob("sft-policy-*"))
    assert not list(isolated.glob("artifacts/*/manifest.json"))
    assert not list(isolated.glob("artifacts/sft-policy-*"))


def test_sft_recipe_follows_the_data_content():
    """Changing the data (not only its version string) changes the artifact recipe, so no stale reuse."""
    import dataclasses

    from mobench.registry import load_plugin

    load_plugin(PLUGIN)  # the same module object the CLI tests load, so nothing registers twice
    plugin = sys.modules["mobench_plugin_micro_text"]
    MicroText, micro_splits = plugin.MicroText, plugin.micro_splits

    class Edited(MicroText):
        def splits(self):
            base = micro_splits()
            return dataclasses.replace(base, sft=base.sft[:-1])

    assert MicroText().initial_policy_recipe()["data_sha"] != Edited().initial_policy_recipe()["data_sha"]
    assert MicroText().initial_policy_recipe() == MicroText().initial_policy_recipe()


def test_limit_trial_reuses_every_trained_artifact(cli, isolated):
    """--limit only changes how many test prompts are answered: nothing is retrained."""
    _run(cli, "full", methods="rs")
    before = sorted(p.name for p in (isolated / "artifacts").iterdir())
    result = cli("--plugin", PLUGIN, "-q", "run", "--task", MICRO, "--methods", "rs", "--grid", "3", "--out", "short",
                 "--limit", "2")
    assert result.code == 0, result.err
    assert sorted(p.name for p in (isolated / "artifacts").iterdir()) == before
    short = json.loads(Path("short/results.json").read_text())
    assert short["task"]["params"]["n_test"] == 2 and short["methods"]["rs"]["points"][0]["output"]


def test_an_rl_only_change_retrains_rl_and_nothing_built_without_it(cli, isolated):
    """A new RL learning rate retrains the RL policies but reuses θ_sft (hours at 7B)."""
    _run(cli, "base", methods="rs")
    sft_before = {p.name for p in (isolated / "artifacts").glob("sft-policy-*")}
    rl_before = {p.name for p in (isolated / "artifacts").glob("rl-policy-*")}
    other = _run(cli, "other", methods="rs", task=MICRO + ":rl_lr=0.0003")
    assert {p.name for p in (isolated / "artifacts").glob("sft-policy-*")} == sft_before
    assert len({p.name for p in (isolated / "artifacts").glob("rl-policy-*")} - rl_before) == 2
    used = {a["kind"]: a for a in other["methods"]["rs"]["artifacts"]}
    assert "rl_lr" not in used["sft-policy"]["recipe"]["task_params"]
    assert used["rl-policy"]["recipe"]["task_params"]["rl_lr"] == 0.0003


class _Captured(Exception):
    pass


class _CapturingStore:
    """Answers the first artifact request by raising its id: what a call would build, without building."""

    def get_or_build(self, kind, recipe, build, allow_build=True, uses_packages=()):
        from mobench.artifacts import artifact_id

        raise _Captured(artifact_id(kind, recipe))


def _first_artifact_id(task, call, seed: int = 0) -> str:
    from mobench.context import RunContext

    try:
        call(RunContext(task, seed, _CapturingStore()))
    except _Captured as captured:
        return str(captured)
    raise AssertionError("no artifact asked for")


def _micro_task_class():
    from mobench.registry import load_plugin

    load_plugin(PLUGIN)
    return sys.modules["mobench_plugin_micro_text"].MicroText


def test_artifacts_built_without_rl_keep_their_ids_across_an_rl_sweep():
    from mobench.registry import methods

    micro = _micro_task_class()
    calls = {"sft-policy": lambda ctx: ctx.sft_policy(),
             "value-data": lambda ctx: ctx.task.value_data(ctx),
             "value-model": lambda ctx: ctx.task.value_model(ctx, 0),
             "ric-policy": lambda ctx: methods.create("ric").prepare(ctx),
             "modpo-policy": lambda ctx: methods.create("modpo").prepare(ctx),
             "rl-policy": lambda ctx: ctx.rl_policy([1.0, 0.0])}
    base, swept = {"rl_lr": 1e-4}, {"rl_lr": 3e-4, "rl_steps": 7, "kl_beta": 0.1}
    for kind, call in calls.items():
        first = _first_artifact_id(micro(micro.Params(**base)), call)
        assert first.startswith(kind), kind  # the call asked for this artifact first
        assert (first == _first_artifact_id(micro(micro.Params(**swept)), call)) == (kind != "rl-policy"), kind
    sft = calls["sft-policy"]
    assert _first_artifact_id(micro(), sft) != _first_artifact_id(micro(micro.Params(sft_steps=31)), sft)


def test_a_selection_is_searched_again_when_what_it_scores_changes():
    import dataclasses

    from mobench.registry import methods
    from mobench.selection import select_best

    micro = _micro_task_class()

    class Edited(micro):
        def splits(self):
            base = super().splits()
            return dataclasses.replace(base, sft=base.sft[:-1])

    def select(method_spec: str):
        return lambda ctx: select_best(ctx, methods.create(method_spec), "gamma", [0.1, 1.0], None, 3)

    first = _first_artifact_id(micro(), select("mage-e-m"))
    assert first.startswith("selection-")
    assert first == _first_artifact_id(micro(), select("mage-e-m"))
    assert first != _first_artifact_id(Edited(), select("mage-e-m"))  # other data, other policies
    assert first != _first_artifact_id(micro(), select("mage-e-m"), seed=1)
    assert first != _first_artifact_id(micro(), select("mage-e-m:select_grid=3"))
    assert first != _first_artifact_id(micro(micro.Params(rl_lr=3e-4)), select("mage-e-m"))  # other backbones
    assert first != _first_artifact_id(micro(micro.Params(samples=3)), select("mage-e-m"))  # other prompts


def test_a_tasks_reply_cleaning_reaches_evaluation_and_rl_rewards():
    from mobench.text_task import DecoderGenerator

    micro = _micro_task_class()

    class Cut(micro):
        def clean_reply(self, text: str) -> str:
            return text.split("|")[0].strip()

    task = Cut()
    table = task.splits().rl[:2]
    long_reward = task.reward_functions(table)[0]
    assert long_reward(None, ["one two | three four five", "one two"], [0, 1]) == \
        long_reward(None, ["one two", "one two"], [0, 1])

    class Sampled:
        def generate(self, texts, strip=True):
            return [" one two | three" if not strip else "one two | three" for _ in texts]

    generator = DecoderGenerator(Sampled(), task.clean_reply)
    assert generator.generate(table) == ["one two", "one two"]
    assert generator.generate(table, strip=False) == [" one two | three"] * 2  # as sampled, for training


def test_grpo_scores_left_padded_prompts_at_their_sampling_positions():
    """trl scores GRPO batches with a mask but no position ids; GPT-2 must count from the mask."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from mobench.training import positions_from_mask

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=1, n_head=2,
                                       bos_token_id=0, eos_token_id=0)).eval()
    unpadded = model(input_ids=torch.tensor([[5, 6, 7]])).logits[0, -1]
    padded = {"input_ids": torch.tensor([[0, 0, 5, 6, 7]]), "attention_mask": torch.tensor([[0, 0, 1, 1, 1]])}
    assert not torch.allclose(model(**padded).logits[0, -1], unpadded, atol=1e-3)  # what trl got
    positions_from_mask(model)
    assert torch.allclose(model(**padded).logits[0, -1], unpadded, atol=1e-5)


@pytest.mark.parametrize("name", ["hh1-mini", "hh2-mini", "summary-mini", "qa-mini"])
def test_every_sft_pair_of_a_mini_task_fits_its_sft_length(name):
    """SFT truncates longer pairs on the right: the target's end and its EOS would never be learnt
    (summary-mini lost them for 12% of its pairs at 128 tokens)."""
    from mobench.registry import tasks
    from mobench.tinylm import train_tokenizer

    task = tasks.create(name)
    splits = task.splits()
    tokenizer = train_tokenizer(splits.tokenizer_corpus(), task.lm_spec.vocab_size)  # the policy's, deterministic
    longest = max(len(tokenizer(p.text + reply + tokenizer.eos_token)["input_ids"]) for p, reply in splits.sft)
    assert longest <= task.sft_settings().max_length <= task.lm_spec.n_positions

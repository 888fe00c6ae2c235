"""The paper tasks' real loading, prompt-building and scoring code on fixtures with the real schemas."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from paper_fixtures import (save_bart_classifier, save_causal_policy, save_distilbert_classifier,  # noqa: E402
                            save_gpt2_classifier, save_longformer, write_hh, write_qa, write_summary)

from mobench.data_paper import (clean_dialogue_reply, hh_transcript, qa_context, qa_question,  # noqa: E402
                                split_hh, summary_prompt)
from mobench.errors import MobenchError  # noqa: E402
from mobench.registry import judges, tasks  # noqa: E402
from mobench.textdata import TextPrompt  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))


def test_hh_split_matches_the_reference_code_by_hand():
    transcript = ("\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke"
                  "\n\nAssistant: Why did the chicken cross the road? \n")
    prompt, response = split_hh(transcript)
    assert prompt == "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke \n\nAssistant:"
    assert response == "Why did the chicken cross the road?"
    # A human turn ending in letters of "Assistant:" keeps them (the reference's rstrip would eat them).
    assert split_hh("\n\nHuman: Is it a giant\n\nAssistant: Yes.")[0] == "\n\nHuman: Is it a giant \n\nAssistant:"
    with pytest.raises(MobenchError, match="not an hh-rlhf transcript"):
        split_hh("Human: no assistant turn")
    # What RiC's length filters measure: the transcript itself, rebuilt from the split.
    assert hh_transcript(*split_hh(transcript)) == transcript.rstrip()
    with pytest.raises(MobenchError, match="not an hh prompt"):
        hh_transcript("Human: hi", "hello")


def test_replies_are_cut_at_an_invented_next_turn():
    # RiC's and MOD's get_clean_data, marker by marker.
    assert clean_dialogue_reply(" Sure, here it is.\n\nHuman: thanks\n\nAssistant: ok") == "Sure, here it is."
    assert clean_dialogue_reply("Yes.\nAssistant: and more") == "Yes."
    assert clean_dialogue_reply("One.\n\n\nTwo.") == "One."
    assert clean_dialogue_reply("  plain reply ") == "plain reply"


def test_summary_prompt_by_hand():
    # RiC replaces the post's newlines with spaces and strips nothing.
    assert summary_prompt("My cat\nwon't eat.\n") == ("### Instruction: Generate a one-sentence summary of this post. "
                                                     "### Input: My cat won't eat.  ### Response: ")


def _hh_spec(data: Path, models: dict[str, Path]) -> str:
    """hh2 on the fixtures, judges included: the reference's length filters read their tokenizers."""
    return (f"hh2:dataset={data}:policy={models['policy']}:"
            f"judge_models=[helpful={models['gpt2-rm']},humor={models['humor']}]")


def test_hh_task_reads_local_rows(tmp_path, models):
    data = write_hh(tmp_path / "hh")
    task = tasks.create(f"{_hh_spec(data, models)}:n_sft=8:n_rl=5:n_validation=3:n_test=3")
    splits = task.splits()
    assert len(splits.sft) == 8 and len(splits.rl) == 5 and len(splits.validation) == 3
    # Test = every 4th test row; the evaluation takes n_test of them spread over the split (hh-rlhf's
    # test split starts with thousands of red-team rows).
    assert [p.text.split("number ")[1].split(" ")[0] for p in splits.test] == ["1000", "1004", "1008", "1012"]
    assert [p.id for p in task.evaluation_prompts()] == [splits.test[i].id for i in (0, 1, 2)]
    spread = tasks.create(f"{_hh_spec(data, models)}:n_sft=8:n_rl=5:n_validation=3:n_test=2")
    assert [p.id for p in spread.evaluation_prompts()] == [splits.test[0].id, splits.test[2].id]
    assert task.decode_config().batch_size == 16 and task.decode_config(batch_size=4).batch_size == 4
    prompt, reply = splits.sft[0]
    # The SFT target follows "Assistant:" after a space, as in the transcripts RiC trains on.
    assert prompt.text.endswith(" \n\nAssistant:") and reply.startswith(" Why did the chicken")
    assert prompt.references[0].startswith("Why did the chicken")
    assert not {p.id for p in splits.rl} & {p.id for p, _ in splits.sft}


def test_long_prompts_are_dropped_and_counted(tmp_path, models):
    from transformers import AutoTokenizer

    data = write_hh(tmp_path / "hh")
    rows = (data / "test.jsonl").read_text().splitlines()
    long_row = json.loads(rows[0])
    long_row["chosen"] = "\n\nHuman: why did the dog sit on the mat?" * 12 + long_row["chosen"]
    (data / "test.jsonl").write_text("\n".join([json.dumps(long_row)] + rows[1:]) + "\n")
    tokenizer = AutoTokenizer.from_pretrained(models["policy"])
    spec = f"{_hh_spec(data, models)}:n_sft=8:n_rl=5:n_validation=3"
    full = tasks.create(spec).splits()
    lengths = [len(tokenizer(p.text)["input_ids"]) for p in full.test]
    limit = sorted(lengths)[-2]  # only the long transcript is longer
    task = tasks.create(f"{spec}:max_prompt_tokens={limit}")
    splits = task.splits()
    assert all(len(tokenizer(p.text)["input_ids"]) <= limit for p in splits.test + splits.rl + splits.validation)
    dropped = task.describe()["dropped_prompts"]
    assert dropped["prompt_token_limit"] == limit
    assert dropped["by_split"]["test"] == len(full.test) - len(splits.test) == sum(n > limit for n in lengths) > 0
    assert dropped["by_filter"][f"sft/rl/validation/test: 1-{limit} policy tokens of the prompt"] == dropped["by_split"]["test"]
    # The fixture policy has 512 positions: the new tokens lower the limit the same way.
    lowered = tasks.create(f"{spec}:max_new_tokens={512 - limit}").describe()["dropped_prompts"]
    assert lowered["prompt_token_limit"] == limit and lowered["by_split"]["test"] == 1
    assert sum(dropped["by_filter"].values()) == sum(dropped["by_split"].values())
    with pytest.raises(MobenchError, match="no sft example: none passes the length filters .*1-12 policy tokens"):
        tasks.create(f"{spec}:max_new_tokens=500").splits()
    with pytest.raises(MobenchError, match="leaves no room for a prompt"):
        tasks.create(f"{spec}:max_new_tokens=512").splits()


def test_hh_keeps_what_the_reference_filters_keep_then_selects(tmp_path, models):
    """RiC's hh filters (sft/utils.py, ppo/utils.py): SFT transcripts + EOS of 8-512 policy tokens, RL
    prompts of 8-256 policy tokens whose transcript every reward model reads in 8-256 tokens, test
    prompts of 8-512 tokens under every tokenizer; n_rl examples are then spread over what is left."""
    import dataclasses

    from transformers import AutoTokenizer

    from mobench.hub_task import LengthFilter

    data = write_hh(tmp_path / "hh", n_train=60)
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    for i in (1, 3, 5, 7):  # odd rows feed RL and validation: make some transcripts long
        rows[i]["chosen"] = rows[i]["chosen"] + " The chicken ran." * 90
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = [json.loads(line) for line in (data / "test.jsonl").read_text().splitlines()]
    for i in (0, 4):  # test prompts of two lengths (the test split keeps every 4th row)
        rows[i]["chosen"] = rows[i]["chosen"].replace("Tell me a joke", "Please tell me a long and funny joke")
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = tasks.create(f"{_hh_spec(data, models)}:n_sft=10:n_rl=6:n_validation=3")
    rules = {rule.describe(): rule for rule in task.reference_filters}
    assert set(rules) >= {"sft: 8-512 policy tokens of the transcript", "rl: 8-256 policy tokens of the prompt",
                          "rl: 8-256 judges tokens of the transcript", "validation/test: 8-512 judges tokens of the prompt"}
    splits, dropped = task.splits(), task.describe()["dropped_prompts"]
    assert dropped["by_filter"]["rl: 8-256 judges tokens of the transcript"] >= 1
    assert len(splits.rl) == 6 and len(splits.sft) == 10 and len(splits.validation) == 3  # selected after filtering
    for judge in task.judges:
        counts = judge.count_tokens([hh_transcript(p.text, p.references[0]) for p in splits.rl])
        assert all(8 <= n <= 256 for n in counts)
    assert sum(dropped["by_filter"].values()) == sum(dropped["by_split"].values())
    # Each rule against each tokenizer's own counts of the very text RiC measures, at its bounds.
    pools = task.load_splits()
    transcripts = [hh_transcript(p.text, p.references[0]) for p in pools.rl]
    counts = [judge.count_tokens(transcripts) for judge in task.judges]
    bound = sorted(max(a, b) for a, b in zip(*counts))[len(transcripts) // 2]
    task.reference_filters = (LengthFilter(("rl",), "transcript", "judges", 1, bound),)
    kept, report = task.fit_prompts(pools)
    expected = [p.id for p, a, b in zip(pools.rl, *counts) if max(a, b) <= bound]
    assert [p.id for p in kept.rl] == expected and report["by_split"]["rl"] == len(pools.rl) - len(expected) > 0
    fewest = [min(a, b) for a, b in zip(*[judge.count_tokens([p.text for p in pools.test]) for judge in task.judges])]
    low = max(fewest)  # a prompt needs `low` tokens under every judge's tokenizer
    task.reference_filters = (LengthFilter(("test",), "prompt", "judges", low, 512),)
    kept, report = task.fit_prompts(pools)
    assert [p.id for p in kept.test] == [p.id for p, n in zip(pools.test, fewest) if n >= low]
    assert 0 < report["by_split"]["test"] < len(pools.test)
    # SFT counts the EOS it appends: a transcript of n tokens needs a bound of n + 1.
    policy = AutoTokenizer.from_pretrained(models["policy"])
    first = len(policy(hh_transcript(pools.sft[0][0].text, pools.sft[0][1]))["input_ids"])
    task.reference_filters = (LengthFilter(("sft",), "transcript", "policy", 1, first),)
    assert pools.sft[0] not in task.fit_prompts(pools)[0].sft
    task.reference_filters = (LengthFilter(("sft",), "transcript", "policy", 1, first + 1),)
    assert pools.sft[0] in task.fit_prompts(pools)[0].sft
    assert dataclasses.replace(task.reference_filters[0], min_tokens=2).describe() == \
        f"sft: 2-{first + 1} policy tokens of the transcript"


def test_a_judge_folder_without_its_tokenizer_is_a_clear_error(tmp_path, models):
    import shutil

    bare = tmp_path / "bare-rm"
    bare.mkdir()
    shutil.copy(models["gpt2-rm"] / "config.json", bare / "config.json")
    data = write_hh(tmp_path / "hh")
    spec = f"hh2:dataset={data}:policy={models['policy']}:judge_models=[helpful={bare},humor={models['humor']}]"
    with pytest.raises(MobenchError, match="encodes text as nothing"):
        tasks.create(spec).splits()
    missing = f"hh2:dataset={data}:policy={models['policy']}:judge_models=[helpful=/nowhere/rm,humor={models['humor']}]"
    with pytest.raises(MobenchError, match="(?s)not reachable.*/nowhere/rm.*judge_models=\\[helpful=PATH\\]"):
        tasks.create(missing).splits()  # the data needs the judges' tokenizers: named before any loading


def test_a_policy_folder_that_cannot_be_loaded_is_a_clear_error(tmp_path, models):
    data = write_hh(tmp_path / "hh")
    (tmp_path / "empty-policy").mkdir()
    spec = _hh_spec(data, models).replace(str(models["policy"]), str(tmp_path / "empty-policy"))
    with pytest.raises(MobenchError, match="cannot load the policy's config from"):
        tasks.create(spec).splits()


def test_training_keeps_fp32_weights_and_lora_deltas_land_on_the_cpu_in_fp32():
    import torch

    from mobench.lora import lora_deltas
    from mobench.tinylm import TinyLMSpec, build_model, train_tokenizer
    from mobench.training import fp32_master_weights

    tokenizer = train_tokenizer(["a b c d e f g"] * 20, 280)
    model = build_model(TinyLMSpec(vocab_size=280, n_layer=1, n_embd=16, n_head=2, n_positions=32), tokenizer, 0)
    model.to(torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in fp32_master_weights(model).parameters())
    state = {"base_model.model.x.lora_A.weight": torch.ones(2, 3, dtype=torch.bfloat16),
             "base_model.model.x.lora_B.weight": torch.ones(4, 2, dtype=torch.bfloat16)}
    delta = lora_deltas(state, 0.5, False)["x.weight"]
    assert delta.dtype == torch.float32 and delta.device.type == "cpu" and torch.equal(delta, torch.ones(4, 3))


def test_summary_task_filters_and_deduplicates_the_evaluation_posts(tmp_path, models):
    task = tasks.create(f"summary:dataset={write_summary(tmp_path / 's')}:policy={models['policy']}:n_test=10:n_sft=6")
    splits = task.splits()
    # 100 < len(post) < 1200, post not None, one per id, sorted by id.
    assert [p.id for p in splits.test] == ["summary:t3_00001", "summary:t3_00003", "summary:t3_00007"]
    first = splits.test[0]
    assert first.text.startswith("### Instruction: Generate a one-sentence summary of this post. ### Input: My cat")
    # The prompt keeps the post as RiC builds it; the judges read it stripped (RiC's get_post).
    assert "\n" not in first.text and first.source == first.text.split("### Input: ")[1].split("### Response")[0].strip()
    assert first.text.split("### Input: ")[1].endswith("dog.  ### Response: ")
    for prompt, reply in splits.sft:  # the preferred summary (choice = i % 2), newline-free
        i = int(prompt.id.split("_")[1])
        assert reply == f"summary {'AB'[i % 2]} of {i}"
    assert len(splits.sft) == 6 and {int(p.id.split("_")[1]) % 2 for p in splits.rl} == {1}
    # Training posts pass RiC's 100-1200 character filter too (no short, missing or over-long post).
    used = {p.id for p in splits.rl + splits.validation} | {p.id for p, _ in splits.sft}
    assert not used & {"summary:t3_00040", "summary:t3_00041", "summary:t3_00042"}


def test_qa_task_reads_the_four_files(tmp_path, models):
    task = tasks.create(f"lfqa-fr:dataset={write_qa(tmp_path / 'qa')}:policy={models['policy']}:n_sft=5")
    splits = task.splits()
    assert len(splits.sft) == 5 and len(splits.rl) == 12 and len(splits.validation) == 6 and len(splits.test) == 6
    prompt = splits.test[0]
    assert prompt.text.startswith("question: Where did cat") and "wikipage: Page" in prompt.text
    assert qa_question(prompt).startswith("Where did cat") and prompt.references
    # A causal policy is told where its answer starts, with the reward models' own separator.
    assert prompt.text.endswith(" answer:") and not qa_context(prompt).endswith("answer:")
    assert qa_context(prompt) + " answer:" == " ".join(prompt.text.split())
    assert task.params.max_prompt_tokens == 1024  # paper Table 1: 1024-token QA inputs


def _manual(model_dir: Path, cls_name: str, text, pair=None, index: int = 0) -> float:
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = getattr(transformers, cls_name).from_pretrained(model_dir).eval()
    with torch.no_grad():
        return float(model(**tok(text, pair, return_tensors="pt")).logits[0, index])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"gpt2-rm": save_gpt2_classifier(root / "gpt2-rm"), "humor": save_distilbert_classifier(root / "humor"),
            "bart": save_bart_classifier(root / "bart"), "policy": save_causal_policy(root / "policy"),
            "rel": save_longformer(root / "rel", "token", 3), "fact": save_longformer(root / "fact", "token", 3),
            "comp": save_longformer(root / "comp", "sequence", 1)}


def test_reward_model_judges_feed_the_reference_inputs_and_read_the_reference_logit(models):
    # On a GPU the judges read in bf16 (their GPU dtype), the manual reference in fp32.
    tol = dict(rel=2e-2, abs=1e-2) if torch.cuda.is_available() else dict(abs=1e-4)
    hh = [TextPrompt("\n\nHuman: hi \n\nAssistant:"), TextPrompt("\n\nHuman: tell me a joke \n\nAssistant:")]
    replies = ["hello, I can help", "why did the chicken cross the road"]
    helpful = judges.create(f"rm-helpful:model={models['gpt2-rm']}:batch_size=2")
    assert helpful.inputs(hh, replies) == ([p.text for p in hh], replies)
    scores = helpful.score(hh, replies)
    for prompt, reply, score in zip(hh, replies, scores):  # batched (padded) == one at a time
        assert score == pytest.approx(_manual(models["gpt2-rm"], "AutoModelForSequenceClassification",
                                              prompt.text, reply), **tol)
    humor = judges.create(f"rm-humor:model={models['humor']}")
    assert humor.inputs(hh, replies) == (replies, None)
    assert humor.score(hh, replies)[1] == pytest.approx(
        _manual(models["humor"], "AutoModelForSequenceClassification", replies[1], index=1), **tol)
    posts = [TextPrompt("### Instruction: x ### Input: p ### Response: ", source="my cat sat on the mat")] * 2
    faithful = judges.create(f"rm-faithful:model={models['bart']}")
    assert faithful.inputs(posts, replies) == (replies, ["my cat sat on the mat"] * 2)
    assert faithful.score(posts, replies)[0] == pytest.approx(
        _manual(models["bart"], "AutoModelForSequenceClassification", replies[0], "my cat sat on the mat", 1), **tol)
    summary = judges.create(f"rm-summary:model={models['gpt2-rm']}")
    assert summary.inputs(posts, ["a cat"])[0] == ["a cat <|endoftext|> my cat sat on the mat"]
    with pytest.raises(MobenchError, match="carry their post"):
        summary.score([TextPrompt("no post")], ["a cat"])


def test_fine_grained_segments_and_scores(models):
    from mobench.judges.fine_grained import SEP, segment_input, subsentences

    assert subsentences("one two three four five, six seven eight nine ten, eleven") == [
        "one two three four five,", "six seven eight nine ten, eleven"]
    # FineGrainedRLHF's rule: a split needs more than 5 words after it, and a short middle piece gives
    # its start to the next piece (it merges backwards).
    assert subsentences("one two three four five, six seven eight nine ten") == [
        "one two three four five, six seven eight nine ten"]
    assert subsentences("a1 a2 a3 a4 a5, b1 b2, c1 c2 c3 c4 c5 c6 c7") == [
        "a1 a2 a3 a4 a5, b1 b2,", "c1 c2 c3 c4 c5 c6 c7"]
    assert subsentences("") == [] and subsentences("one") == ["one"]
    assert segment_input("question: q", ["a b.", "c d."]) == f"question: q answer: {SEP} a b. {SEP} c d."
    prompt = TextPrompt("question: Where did the cat sit? context: wikipage: Cats text: The cat sat on the mat. "
                        "answer:")  # the policy's prompt ends with the answer cue; the judges read it without
    answers = ["The cat sat on the mat. It was sunny, and the dog ran in the park all day long.", ""]
    rel = judges.create(f"fg-relevance:model={models['rel']}:segmenter=regex")
    fact = judges.create(f"fg-factuality:model={models['fact']}:segmenter=regex")
    for judge in (rel, fact):
        scores = judge.score([prompt] * 2, answers)
        assert 0.0 <= scores[0] <= 1.0 and scores[1] == 0.0
        assert scores == judge.score([prompt] * 2, answers)
    # A cell pools segments as FineGrainedRLHF's aggregate_metrics does: Σ correct / Σ segments, so the
    # empty answer (no segment) does not halve the mean, and a longer answer counts more.
    assert fact.sample_weights([prompt] * 2, answers) == [2.0, 0.0]
    assert rel.sample_weights([prompt] * 2, answers) == [float(len(rel.segments(answers[0]))), 0.0]
    three = answers + ["The dog ran."]
    task = tasks.create("lfqa-fr")
    task.__dict__["judges"] = [fact, rel]  # the fixtures' models, without loading the task's data
    scores = task.score([prompt] * 3, three)
    pooled = task.mean_rewards([prompt] * 3, three, scores)
    assert pooled[0] == pytest.approx((2 * scores[0, 0] + scores[2, 0]) / 3)
    assert pooled[1] == pytest.approx((rel.sample_weights([prompt], three[:1])[0] * scores[0, 1] + scores[2, 1])
                                      / (rel.sample_weights([prompt], three[:1])[0] + 1))
    assert task.mean_rewards([prompt], [""], task.score([prompt], [""])).tolist() == [0.0, 0.0]
    comp = judges.create(f"fg-completeness:model={models['comp']}")
    raw = _manual(models["comp"], "AutoModelForSequenceClassification",
                  f"question: Where did the cat sit? context: wikipage: Cats text: The cat sat on the mat. "
                  f"answer: {answers[0]}")
    assert comp.score([prompt], answers[:1])[0] == pytest.approx((raw + 0.44677690555995353) / 8.301160619054132,
                                                                 abs=1e-4)
    with pytest.raises(Exception, match="needs model=PATH"):
        judges.create("fg-relevance").score([prompt], ["x"])


def test_paper_task_runs_end_to_end_offline_on_local_copies(cli, models, tmp_path):
    data = write_hh(tmp_path / "hh")
    spec = f"{_hh_spec(data, models)}:sft_steps=2:rl_steps=1:n_sft=8:n_rl=4:n_validation=2:max_new_tokens=6"
    result = cli("-q", "run", "--task", spec, "--methods", "sft,rs,mod", "--grid", "2", "--limit", "2",
                 "--offline", "--out", "run")
    assert result.code == 0, result.err
    results = json.loads(Path("run/results.json").read_text())
    assert results["task"]["params"]["n_test"] == 2
    assert [o["judge"].split(":")[0] for o in results["task"]["objectives"]] == ["rm-helpful", "rm-humor"]
    assert results["methods"]["rs"]["n_points"] == 2
    sft = next(a for a in results["methods"]["sft"]["artifacts"] if a["kind"] == "sft-policy")
    assert sft["recipe"]["policy"]["policy_model"] == str(models["policy"])


def test_offline_run_names_every_missing_asset_before_any_work(cli):
    result = cli("run", "--task", "hh1:dataset=/nowhere/hh", "--methods", "rs", "--offline")
    assert result.code != 0
    for expected in ("dataset: /nowhere/hh", "dataset=PATH", "policy base model: HuggingFaceTB/SmolLM2-135M",
                     "Ray2333/gpt2-large-helpful-reward_model", "judge_models=[harmless=PATH]"):
        assert expected in result.err


def test_a_run_without_the_network_names_every_hub_asset_at_once(tmp_path):
    from conftest import run_subprocess

    # A closed local port stands in for a hub that cannot be reached: no retries, one list.
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"), "MOBENCH_HOME": str(tmp_path / "m")}
    ran = run_subprocess("run", "--task", "hh1", "--methods", "rs", env=env)
    assert ran.returncode != 0 and "Traceback" not in ran.stderr
    for expected in ("dataset: Anthropic/hh-rlhf", "policy base model: HuggingFaceTB/SmolLM2-135M",
                     "Ray2333/gpt2-large-helpful-reward_model", "Ray2333/gpt2-large-harmless-reward_model",
                     "not in the hub cache, and the hub is unreachable", "ConnectError", "--offline"):
        assert expected in ran.stderr


def test_ls_tasks_lists_paper_tasks_with_their_assets(cli):
    result = cli("ls", "tasks")
    assert result.code == 0
    for name in ("hh1", "hh2", "summary", "lfqa-fr", "lfqa-cr", "lfqa-fc", "lfqa"):
        assert f" {name} " in result.out
    assert "Anthropic/hh-rlhf" in result.out and "not set" in result.out
    assert "[missing" in result.out  # the reachability status, not swallowed as rich markup
    assert "judge_models=[" in result.out or "[helpful=" in result.out


def test_sft_and_ric_fine_tuning_train_lora_adapters_and_merge_them_when_the_task_uses_lora(tmp_path, models):
    import torch
    from transformers import AutoModelForCausalLM

    from mobench.artifacts import ArtifactStore
    from mobench.context import RunContext

    data = write_hh(tmp_path / "hh")
    task = tasks.create(f"{_hh_spec(data, models)}:lora_r=4:sft_steps=3:n_sft=8:n_rl=4:"
                        f"n_validation=2:max_new_tokens=6")
    ctx = RunContext(task, 0, ArtifactStore(tmp_path / "home"))
    state = task.initial_policy(ctx)
    base = AutoModelForCausalLM.from_pretrained(models["policy"]).state_dict()
    assert not any("lora_" in key or "base_layer" in key for key in state) and set(state) >= {k for k in base if "attn.bias" not in k}
    # (bf16 on a GPU: the policy's dtype there; the saved random weights are fp32)
    assert torch.equal(state["transformer.wte.weight"], base["transformer.wte.weight"].to(state["transformer.wte.weight"].dtype))  # not adapted
    assert not torch.equal(state["transformer.h.0.attn.c_attn.weight"],
                           base["transformer.h.0.attn.c_attn.weight"].to(state["transformer.h.0.attn.c_attn.weight"].dtype))
    manifest = json.loads(next((tmp_path / "home").glob("artifacts/sft-policy-*/manifest.json")).read_text())
    assert manifest["recipe"]["policy"]["sft_lora_r"] == 4 and manifest["info"]["lora_rank"] == 4
    # RiC's conditioned fine-tuning goes through the same LoRA path.
    tuned, info = task.fine_tune(ctx, state, [("<R1> 0.5 hello?", " hi there")] * 4, steps=2)
    assert info["lora_rank"] == 4 and set(tuned) == set(state) and not any("lora_" in key for key in tuned)
    assert torch.equal(tuned["transformer.wte.weight"], state["transformer.wte.weight"])
    assert not torch.equal(tuned["transformer.h.0.attn.c_attn.weight"], state["transformer.h.0.attn.c_attn.weight"])

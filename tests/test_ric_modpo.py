"""RiC's prompt format and μ mapping; RiC and MODPO end to end on the micro task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from mobench.methods.modpo import preference_pairs
from mobench.methods.ric import format_conditioned, parse_conditioned, preference_targets

PLUGIN = str(REPO / "tests" / "micro_text.py")
MICRO = "micro-text:sft_steps=30:rl_steps=4:n_test=6:samples=1:max_new_tokens=10"


@pytest.mark.parametrize("scores", [[0.5, -1.2], [0.04, -0.04], [2.25, -0.35], [0.0, 3.0]])
@pytest.mark.parametrize("prompt", ["\n\nHuman: what is 2+2? \n\nAssistant:", "User: hi\nAssistant:",
                                    "### Instruction: Summarise. ### Input: a post ### Response: ",
                                    "no marker here"])
def test_ric_format_round_trips(scores, prompt):
    text = format_conditioned(prompt, ["helpful", "humor"], scores)
    parsed, back = parse_conditioned(text)
    assert back == prompt
    assert parsed == {"helpful": round(scores[0], 1) + 0.0, "humor": round(scores[1], 1) + 0.0}
    assert "-0.0" not in text
    assert format_conditioned(back, list(parsed), list(parsed.values())) == text  # a fixed point


def test_ric_scores_sit_where_the_reference_puts_them():
    """Right before the response marker, as RiC's `... <rm1_score> 0.5 <rm2_score> -1.2\n\nAssistant:`."""
    hh = format_conditioned("\n\nHuman: hi\n\nAssistant:", ["rm1", "rm2"], [0.5, -1.2])
    assert hh == "\n\nHuman: hi <rm1_score> 0.5 <rm2_score> -1.2\n\nAssistant:"
    summary = format_conditioned("### Instruction: S. ### Input: post ### Response: ", ["rm1", "rm2"], [0.5, -1.2])
    assert summary == "### Instruction: S. ### Input: post <rm1_score> 0.5 <rm2_score> -1.2 ### Response: "


def test_ric_prompt_recovery_keeps_characters_a_character_set_strip_would_eat():
    """The reference code's rstrip('\n\nAssistant:') strips any of those characters; removal by position does not."""
    prompt = "\n\nHuman: Is it a giant\n\nAssistant:"
    _, back = parse_conditioned(format_conditioned(prompt, ["helpful"], [0.5]))
    assert back == prompt


def test_ric_rejects_malformed_conditions():
    for text in ["no condition here", "User: x <helpful_score> y\nAssistant:",
                 "User: a <helpful_score> 0.5 b\nAssistant:"]:
        with pytest.raises(ValueError, match="not a RiC-conditioned prompt"):
            parse_conditioned(text)


def test_ric_targets_match_hand_computed_values():
    low, high = np.array([-2.0, -1.0]), np.array([2.0, 3.0])
    # l2: μ/‖μ‖₂ · (max − min) + min
    np.testing.assert_allclose(preference_targets(np.array([1.0, 0.0]), low, high), [2.0, -1.0])
    np.testing.assert_allclose(preference_targets(np.array([0.5, 0.5]), low, high),
                               [0.5 / np.sqrt(0.5) * 4 - 2, 0.5 / np.sqrt(0.5) * 4 - 1])
    np.testing.assert_allclose(preference_targets(np.array([0.3, 0.7]), low, high),
                               [0.3 / np.hypot(0.3, 0.7) * 4 - 2, 0.7 / np.hypot(0.3, 0.7) * 4 - 1])
    # linf, RiC's map_rewards_from_preference(method='linf'): the largest weight's objective at max, each
    # other one at min(n·μ_i, 1) · (max − min) + min.
    np.testing.assert_allclose(preference_targets(np.array([0.5, 0.5]), low, high, "linf"), [2.0, 3.0])
    np.testing.assert_allclose(preference_targets(np.array([0.2, 0.8]), low, high, "linf"), [-0.4, 3.0])
    np.testing.assert_allclose(preference_targets(np.array([0.6, 0.4]), low, high, "linf"), [2.0, 2.2])
    np.testing.assert_allclose(preference_targets(np.array([0.0, 1.0]), low, high, "linf"), [-2.0, 3.0])
    with pytest.raises(ValueError, match="must not be zero"):
        preference_targets(np.zeros(2), low, high)


def test_ric_online_selection_keeps_ties_at_the_quantile_as_the_reference():
    from mobench.methods.ric import select_at_quantile

    # 60 of 100 scores pile up at 0.4 (a judge that saturates): the 0.7 quantile is 0.4, and RiC's
    # `>=` keeps the pile; a strict `>` would keep one sample.
    first = np.array([0.4] * 60 + [0.1] * 39 + [0.9])
    scores = np.stack([first, np.zeros(100)], axis=1)
    assert len(select_at_quantile(scores[:, :1], 0.7)[0]) == 61
    # Any objective at or above its own quantile keeps the row.
    two = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert select_at_quantile(two, 0.7)[0] == [1, 2]


def test_ric_conditions_lfqa_prompts_before_their_answer_cue():
    prompt = "question: Where? context: wikipage: A text: B answer:"
    text = format_conditioned(prompt, ["factuality", "relevance"], [0.5, -1.2])
    assert text == "question: Where? context: wikipage: A text: B <factuality_score> 0.5 <relevance_score> -1.2 answer:"
    assert parse_conditioned(text)[1] == prompt


def test_methods_train_on_the_text_the_judges_scored():
    from mobench.registry import tasks

    task = tasks.create("hh2")  # its clean_reply cuts at an invented next turn; nothing is loaded
    assert task.trained_reply(" Sure.\n\nHuman: and you?\n\nAssistant: me") == " Sure."
    assert task.trained_reply(" Plain reply. ") == " Plain reply. "  # nothing cut: exactly as sampled
    assert task.trained_reply("\nYes.\nAssistant: more") == "\nYes."  # the policy's own leading whitespace kept


def test_ric_and_modpo_run_resume_and_report_their_points(cli, isolated):
    args = ("--plugin", PLUGIN, "-q", "run", "--task", MICRO, "--methods",
            "ric:steps=20:online_steps=5,modpo:steps=3:batch_size=4", "--grid", "3", "--out", "run")
    result = cli(*args)
    assert result.code == 0, result.err
    results = json.loads(Path("run/results.json").read_text())
    ric, modpo = results["methods"]["ric:steps=20:online_steps=5"], results["methods"]["modpo:steps=3:batch_size=4"]
    assert ric["n_points"] == 3
    assert modpo["n_points"] == 3 and [p["mu"] for p in modpo["points"]] == [[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]]
    assert sorted(a["kind"] for a in modpo["artifacts"]).count("modpo-policy") == 3
    kinds = {a["kind"] for a in ric["artifacts"]}
    assert "ric-policy" in kinds
    manifest = json.loads(next(isolated.glob("artifacts/ric-policy-*/manifest.json")).read_text())
    online = manifest["info"]["online"]
    assert len(online) == 1 and 0 < online[0]["kept"] <= online[0]["generated"]
    # The round trains on its kept samples and the offline pairs at or above the quantile (RiC's merge_dataset).
    assert online[0]["kept"] < online[0]["trained_on"] <= online[0]["kept"] + 80
    assert len(manifest["info"]["stats"]["min"]) == 2
    dpo = json.loads(next(isolated.glob("artifacts/modpo-policy-*/manifest.json")).read_text())
    assert dpo["info"]["n_pairs"] > 0 and dpo["info"]["settings"]["algorithm"].startswith("modpo")
    # A rerun computes nothing and writes the same results.
    before = Path("run/results.json").read_bytes()
    again = cli(*args)
    assert again.code == 0
    assert json.loads(Path("run/timing.json").read_text())["computed_this_run_s"] == {}
    assert Path("run/results.json").read_bytes() == before


def test_modpo_refuses_bad_weights_and_tasks(cli):
    result = cli("--plugin", PLUGIN, "run", "--task", MICRO, "--methods", "modpo:weights=[0,0.5]")
    assert result.code != 0 and "(0, 1]" in result.err
    result = cli("run", "--task", "quad", "--methods", "modpo")
    assert result.code != 0 and "text policy" in result.err
    result = cli("run", "--task", "quad", "--methods", "ric")
    assert result.code != 0 and "text policy" in result.err


def test_modpo_pairs_keep_the_replies_as_sampled():
    data = {"prompt_index": [0, 0, 0, 1, 1], "rewards": [[0.2, 0.9], [0.8, 0.1], [0.5, 0.5], [0.3, 0.3], [0.3, 0.3]]}
    replies = [" low", "TL;DR: high", " mid", " tie", " tie too"]
    pairs = preference_pairs(data, ["p0", "p1"], replies, main=0, other=1)
    # Prompt 1's samples tie on the main objective: no pair. No space is added or removed.
    assert pairs == [{"prompt": "p0", "chosen": "TL;DR: high", "rejected": " low", "delta_other": pytest.approx(-0.8)}]
    assert preference_pairs(data, ["p0", "p1"], replies, main=0, other=1, min_gap=0.7) == []

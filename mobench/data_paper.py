"""Reading the paper tasks' datasets, following the reference code's conventions (RiC, Yang et al.
2024, `ppo/utils.py`, `sft/utils.py`; MOD and Bone Soup reuse it).

These functions build each split's *pool* of candidates; `HubTextTask` then applies the reference's
token-length filters (`LengthFilter`) and spreads the requested number of examples over what is left.

* hh-rlhf rows are whole transcripts (`chosen`, `rejected`: "\\n\\nHuman: …\\n\\nAssistant: …").
  The prompt is everything before the last "\\n\\nAssistant:", then " \\n\\nAssistant:" (RiC's form,
  also the helpful/harmless reward models' input format); the response is the last reply, stripped.
  The SFT target is " " + the reply: RiC trains on whole transcripts, where the reply follows
  "Assistant:" after a space. Evaluation: the test split, every 4th row (RiC / MOD). Replies are cut at
  an invented next turn before they are scored (`clean_dialogue_reply`, RiC's and MOD's `get_clean_data`).
* summarize_from_feedback (`comparisons`): posts of 100–1200 characters (measured before newlines are
  replaced, in every split), and the prompt
  "### Instruction: Generate a one-sentence summary of this post. ### Input: {post} ### Response: "
  with the post's newlines replaced by spaces (not stripped, as RiC builds it; the judges read it
  stripped, as RiC's `get_post` gives it); the SFT target is the preferred summary. Evaluation: the
  validation split, one row per post id (sorted by id), the first 2000.
* FineGrainedRLHF qa_feedback (local JSON files of the repo's tasks/qa_feedback/data): `text` is the
  prompt ("question: … context: wikipage: … text: …"), `answer` the references, `passages`
  [[title, sentence, …], …] the evidence, `question` the question. The reference policy is T5 (an
  encoder-decoder); a causal policy is given `text` + " answer:", the reward models' own separator,
  so that it knows where its answer starts (`QA_ANSWER_CUE`; the judges read `text` without it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from mobench.errors import MobenchError
from mobench.textdata import MiniSplits, TextPrompt

ASSISTANT = "\n\nAssistant:"
SUMMARY_INSTRUCTION = "Generate a one-sentence summary of this post."
QA_ANSWER_CUE = " answer:"
# Where RiC's and MOD's evaluation (`get_clean_data`) cut a generated reply, in this order.
NEXT_TURN_MARKERS = ("\n\nHuman:", "\nHuman:", "\n\nAssistant:", "\nAssistant:", "\n\n\n")


def clean_dialogue_reply(text: str) -> str:
    """The reply up to an invented next dialogue turn (or a run of blank lines), stripped."""
    for marker in NEXT_TURN_MARKERS:
        text = text.split(marker)[0].strip()
    return text


def split_hh(transcript: str) -> tuple[str, str]:
    """(prompt, response) of an hh-rlhf transcript, as RiC splits it."""
    parts = transcript.split(ASSISTANT)
    if len(parts) < 2:
        raise MobenchError(f"not an hh-rlhf transcript (no {ASSISTANT!r}): {transcript[:60]!r}")
    return ASSISTANT.join(parts[:-1]) + " " + ASSISTANT, parts[-1].strip()


def hh_transcript(prompt: str, reply: str) -> str:
    """The transcript `split_hh` took apart (what RiC's length filters measure), but for whitespace
    after the reply, which the split strips."""
    if not prompt.endswith(" " + ASSISTANT):
        raise MobenchError(f"not an hh prompt (no final {' ' + ASSISTANT!r}): {prompt[-60:]!r}")
    return prompt[:-len(" " + ASSISTANT)] + ASSISTANT + " " + reply.strip()


def summary_prompt(post: str) -> str:
    return f"### Instruction: {SUMMARY_INSTRUCTION} ### Input: {clean_post(post)} ### Response: "


def clean_post(post: str) -> str:
    """The post as RiC puts it in the prompt: newlines replaced by spaces, nothing stripped."""
    return post.replace("\n", " ")


def summary_post_fits(post: str | None) -> bool:
    """RiC's post filter (`build_dataset_summary`), on the raw post."""
    return post is not None and 100 < len(post) < 1200


def _id(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:12]


def evenly(items: Sequence[Any], n: int) -> list[Any]:
    """n items spread evenly over `items` (all when n is 0 or covers them): deterministic, unbiased by order."""
    if n <= 0 or n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def hh_splits(train_rows: list[dict[str, Any]], test_rows: list[dict[str, Any]]) -> MiniSplits:
    """Pools: SFT on train `chosen` replies; RL and validation prompts from other train rows; test =
    every 4th test row."""
    train: dict[str, TextPrompt] = {}
    for row in train_rows:
        prompt, response = split_hh(row["chosen"])
        if response:
            train.setdefault(f"hh:{_id(prompt)}", TextPrompt(prompt, references=(response,), id=f"hh:{_id(prompt)}"))
    # One row per distinct prompt (hh-rlhf repeats first turns), then alternate, so no prompt is in two splits.
    unique = list(train.values())
    sft_part, rest = unique[0::2], unique[1::2]
    test = []
    for row in test_rows[0::4]:
        prompt, response = split_hh(row["chosen"])
        test.append(TextPrompt(prompt, references=(response,), id=f"hh:{_id(prompt)}"))
    return MiniSplits(sft=[(p, " " + p.references[0]) for p in sft_part], rl=rest[0::2], validation=rest[1::2],
                      test=test)


def summary_splits(train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> MiniSplits:
    """Pools: SFT, RL and validation from the train posts (one row per post, alternating, so no post is
    in two splits); test from the validation split."""
    def prompt_of(row: dict[str, Any]) -> TextPrompt:
        post = row["info"]["post"]
        summary = row["summaries"][row["choice"]]["text"].replace("\n", " ").strip()
        # The judges read the post stripped (RiC's get_post); the prompt keeps it as built.
        return TextPrompt(summary_prompt(post), references=(summary,), source=clean_post(post).strip(),
                          id=f"summary:{row['info'].get('id') or _id(post)}")

    by_post: dict[str, TextPrompt] = {}
    for row in train_rows:
        if summary_post_fits((row.get("info") or {}).get("post")):
            prompt = prompt_of(row)
            by_post.setdefault(prompt.id, prompt)
    train = list(by_post.values())
    sft_part, rest = train[0::2], train[1::2]
    unique: dict[str, dict[str, Any]] = {}
    for row in eval_rows:
        info = row.get("info") or {}
        if info.get("id") is not None and summary_post_fits(info.get("post")):
            unique.setdefault(info["id"], row)
    test = [prompt_of(unique[key]) for key in sorted(unique)][:2000]
    return MiniSplits(sft=[(p, p.references[0]) for p in sft_part], rl=rest[0::2], validation=rest[1::2], test=test)


def passages_text(passages: Sequence[Sequence[str]]) -> str:
    return " ".join(f"wikipage: {p[0]} text: {' '.join(p[1:])}" for p in passages if p)


def qa_prompt(row: dict[str, Any]) -> TextPrompt:
    answers = row.get("answer") or []
    answers = [answers] if isinstance(answers, str) else list(answers)
    text = " ".join(row["text"].split())
    return TextPrompt(text + QA_ANSWER_CUE, references=tuple(answers),
                      source=passages_text(row.get("passages") or []), id=f"qa:{_id(text)}")


def qa_context(prompt: TextPrompt | str) -> str:
    """The qa_feedback `text` of a policy prompt (without the answer cue), whitespace-normalised: what
    the fine-grained reward models put before " answer:"."""
    text = " ".join((prompt.text if isinstance(prompt, TextPrompt) else str(prompt)).split())
    return text[:-len(QA_ANSWER_CUE.strip())].rstrip() if text.endswith(QA_ANSWER_CUE.strip()) else text


def qa_question(prompt: TextPrompt | str) -> str:
    """The question of a qa_feedback prompt ("question: … context: …")."""
    text = prompt.text if isinstance(prompt, TextPrompt) else str(prompt)
    head = text.split(" context:")[0]
    return head[len("question:"):].strip() if head.startswith("question:") else head.strip()

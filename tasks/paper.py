"""The paper's tasks (section 5.1, appendix 2) on their real datasets and judges.

Hub ids are the defaults; every dataset, policy and judge model accepts a local path instead
(`--task hh2:dataset=/data/hh-rlhf:policy=/models/llama`, judge models through the judge spec
parameters below). Nothing loads until a run needs it, and a missing asset is reported before any
work (`mobench ls tasks` shows where each comes from). The policy is a pretrained causal LM (preset
`small` = SmolLM2-135M by default; `preset=llama2-7b` is the paper's Table 1) — see
`mobench.hub_task`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mobench.data_paper import clean_dialogue_reply, hh_splits, hh_transcript, qa_prompt, summary_splits
from mobench.hub_task import HubTextTask, LengthFilter, PaperTaskParams
from mobench.registry import tasks
from mobench.task import Objective
from mobench.textdata import MiniSplits, TextPrompt


@dataclass(frozen=True)
class HHParams(PaperTaskParams):
    max_new_tokens: int = field(default=128, metadata={"help": "reply length limit (paper: 128)"})
    n_test: int = field(default=500, metadata={"help": "test prompts (every 4th test row; the paper ~2k)",
                                                   "eval_only": True})
    samples: int = field(default=1, metadata={"help": "sampled replies per test prompt", "eval_only": True})


@dataclass(frozen=True)
class SummaryParams(PaperTaskParams):
    max_new_tokens: int = field(default=48, metadata={"help": "summary length limit (paper: 48)"})
    n_test: int = field(default=500, metadata={"help": "test posts (the paper: 2000)", "eval_only": True})
    samples: int = field(default=1, metadata={"help": "sampled summaries per post", "eval_only": True})


@dataclass(frozen=True)
class QAParams(PaperTaskParams):
    max_new_tokens: int = field(default=200, metadata={"help": "answer length limit (paper: 200)"})
    max_prompt_tokens: int = field(default=1024, metadata={
        "help": "longer question+passage prompts are dropped (paper Table 1: inputs of 1024 tokens)"})
    n_test: int = field(default=500, metadata={"help": "test questions (test.json has 948)", "eval_only": True})
    samples: int = field(default=1, metadata={"help": "sampled answers per question", "eval_only": True})


class _HH(HubTextTask):
    Params = HHParams
    default_dataset = "Anthropic/hh-rlhf"
    reference_point = (-10.0, -10.0)
    reference_point_note = "below every raw reward-model score the reference code reports"
    # RiC (and MOD, Bone Soup): sft/utils.py build_dataset keeps transcripts + EOS of 8-512 policy tokens;
    # ppo/utils.py build_dataset keeps RL prompts of 8-256 policy tokens whose whole transcript the reward
    # model reads in 8-256 tokens; build_dataset_eval keeps test prompts of 8-512 tokens under the policy's
    # and every reward model's tokenizer. (RiC's RL filter uses one reward model's tokenizer, the one
    # trained on or the first named; the RL prompts here serve every objective's runs, so all of them.)
    reference_filters = (
        LengthFilter(("sft",), "transcript", "policy", 8, 512),
        LengthFilter(("rl",), "prompt", "policy", 8, 256),
        LengthFilter(("rl",), "transcript", "judges", 8, 256),
        LengthFilter(("validation", "test"), "prompt", "policy", 8, 512),
        LengthFilter(("validation", "test"), "prompt", "judges", 8, 512),
    )

    def build_splits(self, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> MiniSplits:
        return hh_splits(train_rows, eval_rows)

    def transcript(self, prompt: TextPrompt, reply: str) -> str:
        return hh_transcript(prompt.text, reply)

    def clean_reply(self, text: str) -> str:
        return clean_dialogue_reply(text)


@tasks.register("hh1")
class HH1(_HH):
    """Helpful vs harmless assistant replies on Anthropic hh-rlhf (reward models of Ray2333)."""

    objectives = (Objective("helpful", "rm-helpful"), Objective("harmless", "rm-harmless"))


@tasks.register("hh2")
class HH2(_HH):
    """Helpful vs humorous assistant replies on Anthropic hh-rlhf (helpful RM, humor-no-humor)."""

    objectives = (Objective("helpful", "rm-helpful"), Objective("humor", "rm-humor"))


@tasks.register("summary")
class Summary(HubTextTask):
    """Faithful vs good one-sentence summaries of Reddit posts (openai/summarize_from_feedback)."""

    Params = SummaryParams
    objectives = (Objective("faithful", "rm-faithful"), Objective("summary", "rm-summary"))
    default_dataset = "openai/summarize_from_feedback"
    dataset_config = "comparisons"
    dataset_splits = ("train", "validation")
    reference_point = (-10.0, -10.0)
    reference_point_note = "below every raw reward-model score the reference code reports"
    # RiC's build_dataset_summary (sft/ and ppo/utils.py): SFT transcripts + EOS and prompts of 8-512
    # policy tokens (its reward-model tokenizer argument is unused there).
    reference_filters = (
        LengthFilter(("sft",), "transcript", "policy", 8, 512),
        LengthFilter(("rl", "validation", "test"), "prompt", "policy", 8, 512),
    )

    def build_splits(self, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> MiniSplits:
        return summary_splits(train_rows, eval_rows)

    def clean_reply(self, text: str) -> str:
        return clean_dialogue_reply(text)  # the reference evaluation cleans summaries the same way


class _LFQA(HubTextTask):
    """Long-form QA on FineGrainedRLHF qa_feedback (files of the repo's tasks/qa_feedback/data)."""

    Params = QAParams
    default_dataset = ""  # not on the hub: dataset=PATH to the folder with train_1k.json, train.json, dev.json, test.json
    reference_point = (-1.0, -1.0)
    reference_point_note = "the lowest segment ratio / standardised completeness"

    def dataset_source(self) -> str:
        return self.params.dataset or "./qa_feedback/data"

    def load_splits(self) -> MiniSplits:
        """Four files: train_1k (SFT), train (RL prompts), dev (validation), test. FineGrainedRLHF truncates
        its T5 inputs at 1024 tokens rather than dropping any; a causal policy needs the answer cue at
        the end, so prompts over `max_prompt_tokens` are dropped instead (counted in the results)."""
        from mobench.hub import load_rows

        source = self.dataset_source()
        rows = {name: load_rows(source, name) for name in ("train_1k", "train", "dev", "test")}
        sft = [(qa_prompt(r), qa_prompt(r).references[0]) for r in rows["train_1k"] if r.get("answer")]
        return MiniSplits(sft=sft, rl=[qa_prompt(r) for r in rows["train"]],
                          validation=[qa_prompt(r) for r in rows["dev"]], test=[qa_prompt(r) for r in rows["test"]])


FACTUALITY = Objective("factuality", "fg-factuality")
RELEVANCE = Objective("relevance", "fg-relevance")
COMPLETENESS = Objective("completeness", "fg-completeness")


def _lfqa(name: str, objectives: tuple[Objective, ...], doc: str) -> None:
    cls = type(name.replace("-", "_").upper(), (_LFQA,), {"objectives": objectives, "__doc__": doc,
                                                         "reference_point": (-1.0,) * len(objectives),
                                                         "__module__": __name__})
    tasks.register(name)(cls)


_lfqa("lfqa-fr", (FACTUALITY, RELEVANCE), "Long-form QA, factuality vs relevance (FineGrainedRLHF qa_feedback).")
_lfqa("lfqa-cr", (COMPLETENESS, RELEVANCE), "Long-form QA, completeness vs relevance (FineGrainedRLHF qa_feedback).")
_lfqa("lfqa-fc", (FACTUALITY, COMPLETENESS), "Long-form QA, factuality vs completeness (FineGrainedRLHF qa_feedback).")
_lfqa("lfqa", (FACTUALITY, RELEVANCE, COMPLETENESS),
      "Long-form QA, factuality, relevance and completeness (FineGrainedRLHF qa_feedback).")

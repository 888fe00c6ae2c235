"""The offline mini tasks: the paper's trade-offs on data built from corpora that PyPI packages ship,
judged by offline scorers, with a tiny GPT-2 policy the suite trains itself (runs on a laptop CPU).

Data construction: `mobench.data_dialogue` (hh1/hh2) and `mobench.data_documents` (summary, qa);
judges: `judges/dialogue.py` and `judges/documents.py`. Every judge scores in [0, 1], so the HV
reference point is the origin.
"""

from __future__ import annotations

import dataclasses

from mobench.registry import tasks
from mobench.task import Objective
from mobench.text_task import TextTask
from mobench.textdata import MiniSplits
from mobench.training import SFTSettings

HELPFUL = Objective("helpful", "helpful-mini", "closeness to the corpus's gold replies, gated by fluency")
HARMLESS = Objective("harmless", "harmless-mini", "1 − offensive probability (alt-profanity-check), gated by fluency")
HUMOR = Objective("humor", "humor-mini", "p(joke) of a MiniLM probe trained by the suite, gated by fluency")
FAITHFUL = Objective("faithful", "faithful-mini", "share of the summary supported by the source")
SUMMARY = Objective("summary", "summary-quality-mini", "coverage of the reference summary with concision")
FACTUAL = Objective("factuality", "qa-factuality-mini", "precision against the gold answer and passage")
RELEVANT = Objective("relevance", "qa-relevance-mini", "MiniLM relevance of the answer to the question")
COMPLETE = Objective("completeness", "qa-completeness-mini", "recall of the gold answer's content")


class _DialogueTask(TextTask):
    kind = ""
    reference_point = (0.0, 0.0)
    reference_point_note = "judges score in [0, 1]"

    def splits(self) -> MiniSplits:
        from mobench.data_dialogue import build

        return build(self.kind)


class _DocumentTask(TextTask):
    kind = ""
    reference_point_note = "judges score in [0, 1]"

    def splits(self) -> MiniSplits:
        from mobench.data_documents import build

        return build(self.kind)


@tasks.register("hh1-mini")
class HH1Mini(_DialogueTask):
    """Helpful vs harmless assistant replies (offline mini version of hh1)."""

    kind = "hh1"
    objectives = (HELPFUL, HARMLESS)


@tasks.register("hh2-mini")
class HH2Mini(_DialogueTask):
    """Helpful vs humorous assistant replies (offline mini version of hh2)."""

    kind = "hh2"
    objectives = (HELPFUL, HUMOR)


@tasks.register("summary-mini")
class SummaryMini(_DocumentTask):
    """Faithful vs good summaries of short documents (offline mini version of summary)."""

    kind = "summary"
    objectives = (FAITHFUL, SUMMARY)
    reference_point = (0.0, 0.0)
    # 4: supervised steps (SFT, RiC, MODPO) read up to the policy's 256 positions; at the default 128
    # tokens, 12% of the SFT pairs lost the end of their target with its EOS, and 19 documents whose
    # prompt alone is longer lost the whole target.
    version = "4"

    def sft_settings(self) -> SFTSettings:
        return dataclasses.replace(super().sft_settings(), max_length=self.lm_spec.n_positions)


def _qa(name: str, objectives: tuple[Objective, ...], doc: str) -> None:
    cls = type(name.replace("-", "_"), (_DocumentTask,), {
        "__doc__": doc, "kind": "qa", "objectives": objectives, "reference_point": (0.0,) * len(objectives),
        "default_grid": 11 if len(objectives) == 2 else 6, "__module__": __name__})
    tasks.register(name)(cls)


_qa("qa-mini-fr", (FACTUAL, RELEVANT), "Long-form QA, factuality vs relevance (offline mini version of lfqa-fr).")
_qa("qa-mini-cr", (COMPLETE, RELEVANT), "Long-form QA, completeness vs relevance (offline mini version of lfqa-cr).")
_qa("qa-mini-fc", (FACTUAL, COMPLETE), "Long-form QA, factuality vs completeness (offline mini version of lfqa-fc).")
_qa("qa-mini", (FACTUAL, RELEVANT, COMPLETE), "Long-form QA with all three fine-grained objectives (mini lfqa).")

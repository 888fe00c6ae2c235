"""FineGrainedRLHF's three reward models for long-form QA (Wu et al. 2023; paper appendix 2), read as
the repo's `tasks/qa_feedback/training/reward.py` reads them.

* fg-relevance (sub-sentence level): a Longformer token classifier over
  "question: {q} answer: </s> seg1 </s> seg2 …" (no passages), labels [Ignore, NF-ERR, O]; a segment
  is relevant when O beats NF-ERR at its "</s>". Score: the share of relevant sub-sentences.
* fg-factuality (sentence level): the same over "{prompt} answer: </s> sent1 …" (with passages),
  labels [F-ERR, Ignore, O]; O must beat F-ERR. Score: the share of factual sentences.
* fg-completeness: a Longformer regressor over "{prompt} answer: {answer}", standardised as the
  repo does, (r − mean) / std with its mean −0.4468 and std 8.3012.

A cell's mean pools the segments as FineGrainedRLHF's `aggregate_metrics` does: Σ judged-correct /
Σ segments over the cell's answers (`sample_weights` = segment counts), so an answer counts by its
length in segments and an empty answer (no segment) not at all.

Sentences come from spaCy's en_core_web_sm (as the reference); sub-sentences split a sentence after
words ending in , ; ! ? while keeping at least 5 words per piece. `segmenter=regex` splits sentences
at . ! ? followed by a space instead (no spaCy model needed; an approximation, so it is a separate,
named choice rather than a fallback). The checkpoints are distributed by the authors (Google Drive),
not on the hub: `model=PATH` is required.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import field, make_dataclass
from functools import lru_cache
from typing import Any, ClassVar

from mobench.data_paper import qa_context, qa_question
from mobench.errors import MobenchError
from mobench.judge import Judge
from mobench.text_task import resolve_device
from mobench.registry import judges

SEP = "</s>"
MIN_SUBSENTENCE_WORDS = 5


def _params(extra: list[tuple[str, type, Any]] | None = None) -> type:
    return make_dataclass("FineGrainedParams", [
        ("model", str, field(default="", metadata={"help": "local folder of the authors' checkpoint (required)"})),
        ("segmenter", str, field(default="spacy", metadata={"help": "spacy (reference) or regex"})),
        ("batch_size", int, field(default=8, metadata={"help": "answers per forward pass"})),
        ("device", str, field(default="auto", metadata={"help": "auto, cpu or cuda"})),
        *(extra or []),
    ], frozen=True)


def sentence_spans(text: str, segmenter: str) -> list[str]:
    return list(_sentence_spans(text, segmenter))


@lru_cache(maxsize=8192)  # a cell's answers are segmented for their scores and again for their weights
def _sentence_spans(text: str, segmenter: str) -> tuple[str, ...]:
    if segmenter == "regex":
        return tuple(s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip())
    if segmenter != "spacy":
        raise MobenchError(f"segmenter must be spacy or regex, got {segmenter!r}")
    try:
        import spacy

        nlp = _spacy_model(spacy)
    except (ImportError, OSError) as exc:
        raise MobenchError(f"the fine-grained judges segment with spaCy's en_core_web_sm ({exc}); install it, or "
                           "pass segmenter=regex") from None
    return tuple(s.text for s in nlp(text).sents if s.text.strip())


_NLP: dict[str, Any] = {}


def _spacy_model(spacy: Any) -> Any:
    if "nlp" not in _NLP:
        _NLP["nlp"] = spacy.load("en_core_web_sm")
    return _NLP["nlp"]


def _subsentence_starts(words: Sequence[str], min_words: int = MIN_SUBSENTENCE_WORDS) -> list[bool]:
    """FineGrainedRLHF's `get_sub_sentence_starts` (fgrl/reward_utils.py), step for step: a piece may
    start after a word ending in , ; ! ? when more than `min_words` words follow; a piece that would be
    shorter than `min_words` gives its start to the next one (the first piece keeps its start)."""
    starts = [True]
    previous_start = 0
    for index in range(1, len(words)):
        if words[index - 1][-1] in ",;!?" and index + min_words < len(words):
            if index - previous_start < min_words:
                if previous_start > 0:
                    starts.append(True)
                    starts[previous_start] = False
                    previous_start = index
                else:
                    starts.append(False)
            else:
                starts.append(True)
                previous_start = index
        else:
            starts.append(False)
    return starts


def subsentences(sentence: str) -> list[str]:
    """The relevance RM's segments of one sentence, split on whitespace as the reference does."""
    words = sentence.split()
    pieces: list[list[str]] = []
    for word, start in zip(words, _subsentence_starts(words)):
        if start:
            pieces.append([])
        pieces[-1].append(word)
    return [" ".join(p) for p in pieces]


def _answer(output: Any) -> str:
    return "" if output is None else str(output).strip()


def segment_input(head: str, segments: Sequence[str]) -> str:
    return f"{head} answer: " + " ".join(f"{SEP} {segment}" for segment in segments)


class _Longformer(Judge):
    kind: ClassVar[str] = "token"
    loads_model = True

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._loaded: tuple[Any, Any, str] | None = None

    def _load(self) -> tuple[Any, Any, str]:
        if self._loaded is None:
            from transformers import (AutoModelForSequenceClassification, AutoModelForTokenClassification,
                                      AutoTokenizer)

            if not self.params.model:
                raise MobenchError(f"judge {self.name!r} needs model=PATH: the FineGrainedRLHF reward models are "
                                   "distributed by the authors, not on the hub")
            device = resolve_device(self.params.device)
            tokenizer = AutoTokenizer.from_pretrained(self.params.model, add_prefix_space=True)
            cls = AutoModelForTokenClassification if self.kind == "token" else AutoModelForSequenceClassification
            model = cls.from_pretrained(self.params.model).to(device).eval()
            self._loaded = (model, tokenizer, device)
        return self._loaded


class _SegmentJudge(_Longformer):
    error_index: ClassVar[int]  # the error label's logit
    ok_index: ClassVar[int] = 2  # "O"

    def segments(self, output: str) -> list[str]:
        raise NotImplementedError

    def head(self, prompt: Any) -> str:
        raise NotImplementedError

    def sample_weights(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        """Segments per answer: FineGrainedRLHF weights each answer's ratio by them."""
        return [float(len(self.segments(_answer(o)))) for o in outputs]

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        import torch

        model, tokenizer, device = self._load()
        sep_id = tokenizer.convert_tokens_to_ids(SEP)
        segs = [self.segments(_answer(o)) for o in outputs]
        scores = [0.0] * len(outputs)  # an empty answer has nothing relevant or factual in it
        todo = [i for i, s in enumerate(segs) if s]
        for start in range(0, len(todo), self.params.batch_size):
            chunk = todo[start:start + self.params.batch_size]
            words = [segment_input(self.head(prompts[i]), segs[i]).split() for i in chunk]
            encoded = tokenizer(words, is_split_into_words=True, truncation=True, padding=True, return_tensors="pt")
            with torch.inference_mode():
                logits = model(**encoded.to(device)).logits.float().cpu()
            for row, i in enumerate(chunk):
                positions = (encoded["input_ids"][row] == sep_id).nonzero().flatten().tolist()[: len(segs[i])]
                ok = [bool(logits[row, p, self.ok_index] > logits[row, p, self.error_index]) for p in positions]
                scores[i] = sum(ok) / len(segs[i])  # a segment cut off by truncation counts as not judged O
        return scores


@judges.register("fg-relevance")
class FineGrainedRelevance(_SegmentJudge):
    """FineGrainedRLHF relevance RM: share of sub-sentences without irrelevance/repetition errors."""

    Params = _params()
    error_index = 1  # NF-ERR
    # 2: sub-sentences split as the reference's get_sub_sentence_starts (merged backwards). 3: cell means
    # weighted by segment counts.
    version = "3"

    def segments(self, output: str) -> list[str]:
        return [p for s in sentence_spans(output, self.params.segmenter) for p in subsentences(s)]

    def head(self, prompt: Any) -> str:
        return f"question: {qa_question(prompt)}"


@judges.register("fg-factuality")
class FineGrainedFactuality(_SegmentJudge):
    """FineGrainedRLHF factuality RM: share of sentences without factual errors (judged with the passages)."""

    Params = _params()
    error_index = 0  # F-ERR
    version = "2"  # 2: cell means weighted by sentence counts

    def segments(self, output: str) -> list[str]:
        return sentence_spans(output, self.params.segmenter)

    def head(self, prompt: Any) -> str:
        return qa_context(prompt)


@judges.register("fg-completeness")
class FineGrainedCompleteness(_Longformer):
    """FineGrainedRLHF completeness RM: standardised preference score of the whole answer."""

    Params = _params([("mean", float, field(default=-0.44677690555995353, metadata={"help": "score mean"})),
                      ("std", float, field(default=8.301160619054132, metadata={"help": "score std"}))])
    kind = "sequence"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        import torch

        model, tokenizer, device = self._load()
        texts = [f"{qa_context(p)} answer: {'' if o is None else str(o).strip()}"
                 for p, o in zip(prompts, outputs)]
        scores: list[float] = []
        for start in range(0, len(texts), self.params.batch_size):
            encoded = tokenizer(texts[start:start + self.params.batch_size], truncation=True, padding=True,
                                return_tensors="pt")
            with torch.inference_mode():
                raw = model(**encoded.to(device)).logits.float().squeeze(-1).cpu()
            scores += ((raw - self.params.mean) / self.params.std).tolist()
        return scores

"""Judges of the offline document mini tasks: `summary-mini` (faithful vs summary quality) and
`qa-mini-*` (factuality, relevance, completeness). Data: `mobench.data_documents`.

Every judge scores in [0, 1] and multiplies its raw score by one shared degeneracy factor,
`fluency(text)`, so empty, very short, repetitive, word-salad or gibberish text cannot score well:

* length: 0 for <= 2 words, ((n - 2) / 4) ** 1.5 for 3-5 words, 1 from 6 words;
* repetition: distinct-word and distinct-bigram ratios (a repeated token scores 0);
* real words: share of tokens that wordfreq knows (gibberish scores 0);
* word order: a class-bigram model (the 300 most frequent English words as their own classes,
  other words by suffix / capitalisation / digits) trained on natural sentences of the shipped
  corpora (fortunes, chatterbot); the mean log-likelihood ratio against the unigram model is
  mapped to [0, 1]. Shuffled text and random word lists score near 0;
* punctuation and case: shuffled sentences leave full stops before lower-case words and
  capitalised function words mid-sentence; each such anomaly costs a third.

Trade-offs the judges implement (see `tests/test_judges_documents.py` for the measured probes):
* faithful-mini rewards support in the source, summary-quality-mini rewards a short summary close to
  the reference: copying the document is perfectly faithful but long, the reference headline is
  concise but drops words, so it is not entirely supported word-for-word.
* qa-relevance-mini rewards sentences on the question's topic; qa-completeness-mini rewards covering
  the long-form reference (answer + related fact), so extra context raises completeness and lowers
  relevance. qa-factuality-mini rewards precision against the passage: padding with unsupported
  detail raises nothing and lowers factuality, and an on-topic but wrong answer is relevant but not
  factual.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from mobench.judge import Judge
from mobench.registry import judges

# --------------------------------------------------------------------------------------------
# The shared degeneracy factor
# --------------------------------------------------------------------------------------------

from mobench.doc_fluency import _clip, fluency, fluency_parts, order_score  # noqa: F401 (re-exported)


def _stems(text: str) -> list[str]:
    from mobench.data_documents import stems

    return stems(text)


def _content(text: str) -> list[str]:
    from mobench.data_documents import content_stems

    return content_stems(text)


@lru_cache(maxsize=20_000)
def _support(text: str) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """Content stems and word-stem bigrams of a supporting text (sentence-internal bigrams)."""
    from mobench.data_documents import sentences

    bigrams: set[tuple[str, str]] = set()
    for sentence in sentences(text) or [text]:
        toks = _stems(sentence)
        bigrams.update(zip(toks, toks[1:]))
    return frozenset(_content(text)), frozenset(bigrams)


def _bigram_precision(text: str, supported: frozenset[tuple[str, str]]) -> float:
    from mobench.data_documents import sentences

    pairs = []
    for sentence in sentences(text) or [text]:
        toks = _stems(sentence)
        pairs.extend(zip(toks, toks[1:]))
    if not pairs:
        return 0.0
    return sum(p in supported for p in pairs) / len(pairs)


def _lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_f(candidate: str, reference: str) -> float:
    """ROUGE-L F1 on Porter stems (as rouge-score with use_stemmer=True, tokens a-z0-9)."""
    c, r = _stems(candidate), _stems(reference)
    lcs = _lcs(c, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


_EMBED_CACHE: dict[str, Any] = {}


def _embed(texts: Sequence[str]) -> list[Any]:
    """MiniLM embeddings (unit norm), cached by text for references and questions."""
    from mobench.encoder import embed

    missing = list(dict.fromkeys(t for t in texts if t not in _EMBED_CACHE))
    if missing:
        vectors = embed(missing)
        if len(_EMBED_CACHE) > 50_000:
            _EMBED_CACHE.clear()
        for t, v in zip(missing, vectors):
            _EMBED_CACHE[t] = v
    return [_EMBED_CACHE[t] for t in texts]


def _source(prompt: Any) -> str:
    return getattr(prompt, "source", "") or ""


def _references(prompt: Any) -> tuple[str, ...]:
    return tuple(getattr(prompt, "references", ()) or ())


def _question(prompt: Any) -> str:
    from mobench.textdata import prompt_text

    text = prompt_text(prompt)
    match = re.search(r"Question:\s*(.*?)\s*(?:\nAnswer:|$)", text, flags=re.S)
    return match.group(1).strip() if match else text.strip()


def _check(prompts: Sequence[Any], outputs: Sequence[Any]) -> list[str]:
    if len(prompts) != len(outputs):
        raise ValueError(f"{len(prompts)} prompts but {len(outputs)} outputs")
    return [str(o) if o is not None else "" for o in outputs]


# --------------------------------------------------------------------------------------------
# summary-mini
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaithfulParams:
    bigram_weight: float = field(default=0.5, metadata={
        "help": "weight of bigram precision (word order, negations kept) vs content-word precision"})

    def __post_init__(self) -> None:
        if not 0 <= self.bigram_weight <= 1:
            raise ValueError("bigram_weight must be in [0, 1]")


@judges.register("faithful-mini")
class FaithfulMini(Judge):
    """Share of the summary supported by the source (content-word and bigram precision) x fluency."""

    Params = FaithfulParams
    version = "1"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        texts = _check(prompts, outputs)
        w = self.params.bigram_weight
        out = []
        for prompt, text in zip(prompts, texts):
            content = _content(text)
            if not content:
                out.append(0.0)
                continue
            words_ok, bigrams_ok = _support(_source(prompt) or getattr(prompt, "text", str(prompt)))
            p1 = sum(c in words_ok for c in content) / len(content)
            p2 = _bigram_precision(text, bigrams_ok)
            out.append(float(((1 - w) * p1 + w * p2) * fluency(text)))
        return out


@dataclass(frozen=True)
class SummaryQualityParams:
    length_slack: float = field(default=1.3, metadata={
        "help": "summaries up to this multiple of the reference's length are not penalised"})
    cosine_weight: float = field(default=0.4, metadata={"help": "weight of MiniLM cosine vs ROUGE-L F"})

    def __post_init__(self) -> None:
        if self.length_slack <= 0 or not 0 <= self.cosine_weight <= 1:
            raise ValueError("length_slack must be > 0 and cosine_weight in [0, 1]")


@judges.register("summary-quality-mini")
class SummaryQualityMini(Judge):
    """Concise coverage of the reference summary (ROUGE-L F, MiniLM cosine, length prior) x fluency."""

    Params = SummaryQualityParams
    version = "1"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        from mobench.data_documents import words

        texts = _check(prompts, outputs)
        flus = [fluency(t) for t in texts]
        live = [i for i, f in enumerate(flus) if f > 0.0]  # degenerate text is not embedded
        refs = [_references(p) or (_source(p),) for p in prompts]
        flat_refs = [r for i in live for r in refs[i]]
        ref_vecs = dict(zip(flat_refs, _embed(flat_refs)))
        from mobench.encoder import embed

        out_vecs = dict(zip(live, embed([texts[i] for i in live])))
        cw, slack = self.params.cosine_weight, self.params.length_slack
        out = []
        for i, (text, rs, flu) in enumerate(zip(texts, refs, flus)):
            if flu == 0.0:
                out.append(0.0)
                continue
            vec = out_vecs[i]
            n = len(words(text))
            best = 0.0
            for ref in rs:
                cos = float(vec @ ref_vecs[ref])
                overlap = (1 - cw) * rouge_l_f(text, ref) + cw * _clip((cos - 0.2) / 0.7)
                ratio = n / max(1, len(words(ref)))
                prior = min(1.0, slack / ratio) ** 1.5 if ratio > 0 else 0.0
                best = max(best, overlap * prior)
            out.append(float(best * flu))
        return out


# --------------------------------------------------------------------------------------------
# qa-mini
# --------------------------------------------------------------------------------------------

def _qa_references(prompt: Any) -> tuple[str, tuple[str, ...]]:
    """(long-form reference, short gold answers): references[0] is the long-form reference."""
    refs = _references(prompt)
    if not refs:
        return "", ()
    return refs[0], tuple(refs[1:]) or (refs[0],)


@dataclass(frozen=True)
class FactualityParams:
    bigram_weight: float = field(default=0.25, metadata={"help": "weight of bigram precision"})

    def __post_init__(self) -> None:
        if not 0 <= self.bigram_weight <= 1:
            raise ValueError("bigram_weight must be in [0, 1]")


@judges.register("qa-factuality-mini")
class QAFactualityMini(Judge):
    """Precision of the answer's new content against the passage and gold answers x fluency."""

    Params = FactualityParams
    version = "1"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        texts = _check(prompts, outputs)
        w = self.params.bigram_weight
        out = []
        for prompt, text in zip(prompts, texts):
            question = _question(prompt)
            _, golds = _qa_references(prompt)
            evidence = (_source(prompt), *golds, question)
            q_words = set(_content(question))
            claims = [c for c in _content(text) if c not in q_words]
            if not claims:  # restating the question (or nothing) asserts nothing
                out.append(0.0)
                continue
            words_ok = frozenset().union(*(_support(t)[0] for t in evidence))
            bigrams_ok = frozenset().union(*(_support(t)[1] for t in evidence))
            p1 = sum(c in words_ok for c in claims) / len(claims)
            p2 = _bigram_precision(text, bigrams_ok)
            out.append(float(((1 - w) * p1 + w * p2) * fluency(text)))
        return out


@dataclass(frozen=True)
class RelevanceParams:
    cos_low: float = field(default=0.15, metadata={"help": "sentence-question cosine scored 0"})
    cos_high: float = field(default=0.65, metadata={"help": "sentence-question cosine scored 1"})

    def __post_init__(self) -> None:
        if not self.cos_low < self.cos_high:
            raise ValueError("cos_low must be < cos_high")


@judges.register("qa-relevance-mini")
class QARelevanceMini(Judge):
    """Length-weighted MiniLM relevance of each answer sentence to the question x fluency."""

    Params = RelevanceParams
    version = "1"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        """Per sentence the scaled cosine (sentence, question), averaged with word counts as
        weights, so off-topic sentences pull the score down. A sentence that only restates the
        question is skipped (echoing the question earns nothing; what follows it is judged on its
        own); a repeated sentence counts as length only; an answer must add two content words."""
        from mobench.data_documents import sentences, words

        texts = _check(prompts, outputs)
        questions = [_question(p) for p in prompts]
        q_words = [set(_content(q)) for q in questions]
        flus = [fluency(t) for t in texts]
        plans: dict[int, list[tuple[str, int, bool]]] = {}
        for i, text in enumerate(texts):
            new_words = set(_content(text)) - q_words[i]
            if flus[i] == 0.0 or not new_words:
                continue
            seen: set[str] = set()
            plan = []
            for sentence in sentences(text) or [text]:
                if not set(_content(sentence)) - q_words[i]:
                    continue
                key = " ".join(words(sentence))
                plan.append((sentence, max(1, len(words(sentence))), key in seen))
                seen.add(key)
            if plan:
                plans[i] = plan
        questions_needed = list(dict.fromkeys(questions[i] for i in plans))
        q_vec = dict(zip(questions_needed, _embed(questions_needed)))
        flat = [sentence for plan in plans.values() for sentence, _, _ in plan]
        from mobench.encoder import embed

        s_vecs = iter(embed(flat)) if flat else iter(())
        lo, hi = self.params.cos_low, self.params.cos_high
        out = []
        for i in range(len(texts)):
            if i not in plans:
                out.append(0.0)
                continue
            num = den = 0.0
            for _, weight, repeated in plans[i]:
                vec = next(s_vecs)
                den += weight
                if not repeated:  # a repeated sentence adds length, not relevance
                    num += weight * _clip((float(vec @ q_vec[questions[i]]) - lo) / (hi - lo))
            echo = min(1.0, len(set(_content(texts[i])) - q_words[i]) / 2)
            out.append(float(num / den * echo * flus[i]))
        return out


@dataclass(frozen=True)
class CompletenessParams:
    gold_weight: float = field(default=0.4, metadata={"help": "weight of the short gold answer's recall"})

    def __post_init__(self) -> None:
        if not 0 <= self.gold_weight <= 1:
            raise ValueError("gold_weight must be in [0, 1]")


@judges.register("qa-completeness-mini")
class QACompletenessMini(Judge):
    """Recall of the gold answer's and the long-form reference's content x fluency."""

    Params = CompletenessParams
    version = "1"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        texts = _check(prompts, outputs)
        g = self.params.gold_weight
        out = []
        for prompt, text in zip(prompts, texts):
            long_ref, golds = _qa_references(prompt)
            q_words = set(_content(_question(prompt)))
            have = set(_content(text))
            ref_words = set(_content(long_ref)) - q_words
            ref_recall = len(ref_words & have) / len(ref_words) if ref_words else 0.0
            gold_recalls = [len(gw & have) / len(gw) for gw in (set(_content(x)) - q_words for x in golds) if gw]
            gold_recall = max(gold_recalls) if gold_recalls else ref_recall
            out.append(float((g * gold_recall + (1 - g) * ref_recall) * fluency(text)))
        return out

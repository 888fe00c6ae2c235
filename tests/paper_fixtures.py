"""Small stand-ins with the real schemas for the paper tasks: dataset rows (hh-rlhf transcripts,
summarize_from_feedback comparisons, qa_feedback files) and tiny random models saved with
save_pretrained (a causal policy, GPT-2 / DistilBERT / BART sequence classifiers, Longformers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WORDS = "the cat dog sat ran on a mat park why did chicken cross road joke help you I can tell me".split()


def hh_transcript(i: int) -> tuple[str, str]:
    q1, q2 = f"Can you help me with task {i}?", f"Tell me a joke about number {i}"
    chosen = (f"\n\nHuman: {q1}\n\nAssistant: Sure, what do you need?\n\nHuman: {q2}\n\n"
              f"Assistant: Why did the chicken cross road {i}? To get to the other side.")
    rejected = f"\n\nHuman: {q1}\n\nAssistant: Sure, what do you need?\n\nHuman: {q2}\n\nAssistant: No."
    return chosen, rejected


def write_hh(folder: Path, n_train: int = 40, n_test: int = 16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        rows = [dict(zip(("chosen", "rejected"), hh_transcript(i + (1000 if split == "test" else 0))))
                for i in range(n)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def summary_row(i: int, post: str | None, choice: int = 0) -> dict[str, Any]:
    return {"info": {"id": f"t3_{i:05d}", "post": post, "title": f"title {i}", "subreddit": "cats",
                     "site": None, "article": None},
            "summaries": [{"text": f"summary A of {i}\n", "policy": "ref", "note": None},
                          {"text": f"summary B of {i}", "policy": "sup", "note": None}],
            "choice": choice, "worker": "w", "batch": "b", "split": "train", "extra": {"confidence": 5}}


def long_post(i: int) -> str:
    return f"My cat number {i} will not eat her food.\nShe sits on the mat all day and looks at the dog. " * 2


def write_summary(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    train = [summary_row(i, long_post(i), choice=i % 2) for i in range(30)]
    train += [summary_row(40, "too short"), summary_row(41, None), summary_row(42, "y " * 600)]  # RiC drops these
    validation = [summary_row(7, long_post(7)), summary_row(3, long_post(3)), summary_row(7, long_post(7)),
                  summary_row(5, "too short"), summary_row(4, None), summary_row(9, "x" * 1300),
                  summary_row(1, long_post(1))]
    for split, rows in (("train", train), ("validation", validation)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def qa_row(i: int) -> dict[str, Any]:
    passages = [[f"Page {i}", f"The cat {i} sat on the mat.", "It was a sunny day."], ["Other", "Dogs ran."]]
    question = f"Where did cat {i} sit?"
    context = " ".join(f"wikipage: {p[0]} text: {' '.join(p[1:])}" for p in passages)
    return {"question": question, "passages": passages, "answer": [f"Cat {i} sat on the mat, as the page says."],
            "text": f"question: {question} context: {context}"}


def write_qa(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train_1k", 20), ("train", 12), ("dev", 6), ("test", 6)):
        (folder / f"{name}.json").write_text(json.dumps([qa_row(i + 100 * len(name)) for i in range(n)]))
    return folder


def corpus() -> list[str]:
    texts = []
    for i in range(60):
        texts += list(hh_transcript(i)) + [long_post(i), qa_row(i)["text"], " ".join(WORDS)]
    return texts


def bpe_tokenizer(specials: list[str], vocab: int = 400) -> Any:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus(), vocab_size=vocab, min_frequency=2, special_tokens=specials, show_progress=False)
    return bpe


def save_causal_policy(folder: Path) -> Path:
    """A tiny GPT-2 'pretrained' policy with a GPT-2-style tokenizer (bos = eos = <|endoftext|>, no pad)."""
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = bpe_tokenizer(["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    config = GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_gpt2_classifier(folder: Path, num_labels: int = 1) -> Path:
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    torch.manual_seed(0)
    bpe = bpe_tokenizer(["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    config = GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=32, n_layer=1, n_head=2,
                        num_labels=num_labels, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    GPT2ForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_distilbert_classifier(folder: Path) -> Path:
    import torch
    from transformers import BertTokenizerFast, DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted({w.lower().strip(".,?!") for t in corpus()
                                                                     for w in t.split()} | set("abcdefghijklmnopqrstuvwxyz"))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = DistilBertConfig(vocab_size=len(vocab), dim=32, n_layers=1, n_heads=2, hidden_dim=64, num_labels=2,
                              id2label={0: "NO_HUMOR", 1: "HUMOR"}, label2id={"NO_HUMOR": 0, "HUMOR": 1})
    DistilBertForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_bart_classifier(folder: Path) -> Path:
    import torch
    from transformers import BartConfig, BartForSequenceClassification, PreTrainedTokenizerFast

    torch.manual_seed(0)
    from tokenizers.processors import RobertaProcessing

    bpe = bpe_tokenizer(["<s>", "<pad>", "</s>", "<unk>"])
    # BART's own tokenizer wraps texts as <s> A </s></s> B </s>; the classifier reads the last </s>.
    bpe._tokenizer.post_processor = RobertaProcessing(("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>")))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>", unk_token="<unk>", sep_token="</s>", cls_token="<s>")
    config = BartConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=1024,
                        id2label={0: "Hallucinated", 1: "Faithful"}, label2id={"Hallucinated": 0, "Faithful": 1},
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                        eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.eos_token_id)
    BartForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_longformer(folder: Path, kind: str, num_labels: int) -> Path:
    import torch
    from transformers import (LongformerConfig, LongformerForSequenceClassification,
                              LongformerForTokenClassification, RobertaTokenizerFast)

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = bpe_tokenizer(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tok = RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    config = LongformerConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=64, attention_window=[8], max_position_embeddings=1024 + 2,
                              id2label={i: f"L{i}" for i in range(num_labels)}, pad_token_id=tok.pad_token_id,
                              bos_token_id=tok.bos_token_id,
                              eos_token_id=tok.eos_token_id, sep_token_id=tok.sep_token_id)
    cls = LongformerForTokenClassification if kind == "token" else LongformerForSequenceClassification
    cls(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder

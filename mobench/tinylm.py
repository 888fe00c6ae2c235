"""Tiny causal LMs the suite trains itself: a byte-level BPE tokenizer fitted on the task corpus and a
small GPT-2 built from a config (no hub, no downloads).

The tokenizer pads on the left (generation appends on the right) and keeps a pad token separate from
`<|endoftext|>`, so padding is never mistaken for the end of a reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EOS = "<|endoftext|>"
PAD = "<|pad|>"


@dataclass(frozen=True)
class TinyLMSpec:
    vocab_size: int = 2048
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 256

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer fitted on `texts`, wrapped as a transformers fast tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS, PAD],
                            show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token=EOS, bos_token=EOS,
                                        unk_token=EOS, pad_token=PAD, padding_side="left")
    return tokenizer


def build_model(spec: TinyLMSpec, tokenizer: Any, seed: int) -> Any:
    """A freshly initialised GPT-2 whose vocabulary matches `tokenizer`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=spec.n_positions, n_embd=spec.n_embd,
                        n_layer=spec.n_layer, n_head=spec.n_head, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(config)


def save_pretrained(model: Any, tokenizer: Any, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def load_pretrained(directory: Path, dtype: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) saved in `directory`; `dtype` None keeps fp32 (the tiny policies: merging
    small RL deltas needs the precision), a hub policy on a GPU passes torch.bfloat16."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    tokenizer.padding_side = "left"
    import torch

    from mobench.training import quiet_libraries

    quiet_libraries()  # no per-load progress bars in run logs
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype or torch.float32)
    model.eval()
    return model, tokenizer

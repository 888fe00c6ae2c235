"""A micro text task for fast tests: a few hundred dialogue pairs, a 1-layer GPT-2, a handful of RL
steps, and two cheap closed-form judges that pull in opposite directions (long vs short replies)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from mobench.judge import Judge
from mobench.registry import judges, tasks
from mobench.task import Objective
from mobench.text_task import DecodeSettings, TextTask
from mobench.textdata import MiniSplits, TextPrompt
from mobench.tinylm import TinyLMSpec
from mobench.values import ValueSettings

WORDS = ("yes no maybe hello there friend good day night sun moon star tree water fire stone river "
         "happy sad fast slow big small red blue green").split()


@lru_cache(maxsize=1)
def micro_splits() -> MiniSplits:
    import random

    rng = random.Random(0)
    prompts = [TextPrompt(f"User: {' '.join(rng.sample(WORDS, 3))}?\nAssistant:", references=("yes",), id=f"p{i}")
               for i in range(120)]
    sft = [(p, " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))) for p in prompts[:80]]
    return MiniSplits(sft=sft, rl=prompts[80:100], validation=prompts[100:108], test=prompts[108:120])


@judges.register("micro-long")
class MicroLong(Judge):
    """Micro judge: more words is better (capped at 8)."""

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        return [min(len(str(o).split()), 8) / 8 for o in outputs]


@judges.register("micro-short")
class MicroShort(Judge):
    """Micro judge: fewer characters is better, but an empty reply scores 0 (else RL learns to say nothing,
    and tests comparing two decodings of empty replies would compare nothing)."""

    version = "2"

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        return [0.0 if not str(o).strip() else 1.0 - min(len(str(o)), 40) / 40 for o in outputs]


@judges.register("micro-long-pooled")
class MicroLongPooled(MicroLong):
    """Micro judge: micro-long, with a cell's mean weighted by each reply's words (as FineGrainedRLHF
    pools segment ratios by segment count)."""

    def sample_weights(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        return [float(len(str(o).split())) for o in outputs]


@tasks.register("micro-text")
class MicroText(TextTask):
    """A micro text task for tests (long vs short replies)."""

    objectives = (Objective("long", "micro-long"), Objective("short", "micro-short"))
    reference_point = (0.0, 0.0)
    lm_spec = TinyLMSpec(vocab_size=300, n_layer=1, n_embd=32, n_head=2, n_positions=64)
    decode = DecodeSettings(batch_size=16)

    def splits(self) -> MiniSplits:
        return micro_splits()

    def value_settings(self) -> ValueSettings:
        return ValueSettings(samples_per_prompt=2, epochs=2, batch_size=16, learning_rate=3e-3)  # learns in 2 short epochs


MICRO = "micro-text:sft_steps=30:rl_steps=4:n_test=6:samples=1:max_new_tokens=10"


@tasks.register("micro-pooled")
class MicroPooled(MicroText):
    """The micro text task with a judge whose cell means are weighted (micro-long-pooled)."""

    objectives = (Objective("long", "micro-long-pooled"), Objective("short", "micro-short"))

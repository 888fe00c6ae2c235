"""The paper's reward-model judges (section 5.1): hub sequence classifiers, batched, bf16 on a GPU.

Each judge feeds its model exactly what the reference code (RiC, `ric/multi_reward_models.py`) feeds
it and reads the same logit:

| judge | model | input | value |
|---|---|---|---|
| rm-helpful | Ray2333/gpt2-large-helpful-reward_model | tokenizer(prompt, reply): the hh prompt ends with " \\n\\nAssistant:" | logits[0] |
| rm-harmless | Ray2333/gpt2-large-harmless-reward_model | the same | logits[0] |
| rm-humor | mohameddhiab/humor-no-humor | tokenizer(reply) | raw logit of label 1 (HUMOR) |
| rm-faithful | CogComp/bart-faithful-summary-detector | tokenizer(text=summary, text_pair=post) | raw logit of label 1 (Faithful) |
| rm-summary | Tristan/gpt2_reward_summarization | summary + " " + bos_token + " " + post | logits[0] |

`model=PATH` points a judge at a local copy. Scores are raw (the reference evaluation reports raw
scores in MOD; RiC standardises them with training statistics, which a report can do afterwards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field, make_dataclass
from typing import Any, ClassVar

from mobench.errors import MobenchError
from mobench.judge import Judge
from mobench.text_task import resolve_device
from mobench.registry import judges
from mobench.textdata import TextPrompt, prompt_text


def _check_params(self: Any) -> None:
    if not self.model:
        raise ValueError("model must name a hub id or a local folder")
    if self.batch_size < 1 or self.max_length < 1:
        raise ValueError("batch_size and max_length must be >= 1")
    if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")


def _params(default_model: str) -> type:
    return make_dataclass("RewardModelParams", [
        ("model", str, field(default=default_model, metadata={"help": "hub id or local folder of the model"})),
        ("batch_size", int, field(default=16, metadata={"help": "texts per forward pass"})),
        ("max_length", int, field(default=1024, metadata={"help": "truncation length in tokens"})),
        ("device", str, field(default="auto", metadata={"help": "auto (cuda when available), cpu or cuda"})),
    ], frozen=True, namespace={"__post_init__": _check_params})


class RewardModelJudge(Judge):
    """A sequence classifier read at one logit. Subclasses set `logit` and `inputs`."""

    logit: ClassVar[int] = 0
    loads_model = True
    counts_tokens = True

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._loaded: tuple[Any, Any, str] | None = None
        self._tokenizer: Any = None

    def tokenizer(self) -> Any:
        """The model's tokenizer (right padding; GPT-2's EOS as its missing pad token)."""
        if self._tokenizer is None:
            from mobench.hub import load_tokenizer

            tokenizer = load_tokenizer(self.params.model, f"the tokenizer of judge {self.name!r}")
            if tokenizer.pad_token is None:  # GPT-2 reward models ship without one
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "right"
            self._tokenizer = tokenizer
        return self._tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        from mobench.hub import count_tokens

        return count_tokens(self.tokenizer(), list(texts))

    def inputs(self, prompts: Sequence[Any], outputs: Sequence[str]) -> tuple[list[str], list[str] | None]:
        """(texts, text pairs or None) handed to the tokenizer."""
        raise NotImplementedError

    def _load(self) -> tuple[Any, Any, str]:
        if self._loaded is None:
            import torch
            from transformers import AutoModelForSequenceClassification

            from mobench.training import quiet_libraries

            quiet_libraries()
            device = resolve_device(self.params.device)
            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
            tokenizer = self.tokenizer()
            model = AutoModelForSequenceClassification.from_pretrained(self.params.model, dtype=dtype).to(device).eval()
            model.config.pad_token_id = tokenizer.pad_token_id  # the classifier reads the last non-pad token
            self._loaded = (model, tokenizer, device)
        return self._loaded

    def score(self, prompts: Sequence[Any], outputs: Sequence[Any]) -> list[float]:
        import torch

        if len(prompts) != len(outputs):
            raise ValueError(f"{len(prompts)} prompts but {len(outputs)} outputs")
        if not outputs:
            return []
        model, tokenizer, device = self._load()
        texts, pairs = self.inputs(prompts, ["" if o is None else str(o).strip() for o in outputs])
        scores: list[float] = []
        size = self.params.batch_size
        for start in range(0, len(texts), size):
            batch_pairs = pairs[start:start + size] if pairs is not None else None
            encoded = tokenizer(texts[start:start + size], batch_pairs, return_tensors="pt", padding=True,
                                truncation=True, max_length=min(self.params.max_length, tokenizer.model_max_length))
            with torch.inference_mode():
                logits = model(**encoded.to(device)).logits.float()
            scores += logits[:, self.logit].cpu().tolist()
        return scores


@judges.register("rm-helpful")
class HelpfulRM(RewardModelJudge):
    """Helpfulness reward model (Ray2333/gpt2-large-helpful-reward_model) on (hh prompt, reply)."""

    Params = _params("Ray2333/gpt2-large-helpful-reward_model")

    def inputs(self, prompts: Sequence[Any], outputs: Sequence[str]) -> tuple[list[str], list[str] | None]:
        return [prompt_text(p) for p in prompts], list(outputs)


@judges.register("rm-harmless")
class HarmlessRM(HelpfulRM):
    """Harmlessness reward model (Ray2333/gpt2-large-harmless-reward_model) on (hh prompt, reply)."""

    Params = _params("Ray2333/gpt2-large-harmless-reward_model")


@judges.register("rm-humor")
class HumorRM(RewardModelJudge):
    """Humor classifier (mohameddhiab/humor-no-humor): raw HUMOR logit of the reply alone."""

    Params = _params("mohameddhiab/humor-no-humor")
    logit = 1

    def inputs(self, prompts: Sequence[Any], outputs: Sequence[str]) -> tuple[list[str], list[str] | None]:
        return list(outputs), None


def _post(prompt: Any) -> str:
    if isinstance(prompt, TextPrompt) and prompt.source:
        return prompt.source
    raise MobenchError("the summary judges (rm-faithful, rm-summary) need prompts that carry their post; "
                       "use them with the summary task")


@judges.register("rm-faithful")
class FaithfulRM(RewardModelJudge):
    """Faithfulness classifier (CogComp/bart-faithful-summary-detector): raw Faithful logit of (summary, post)."""

    Params = _params("CogComp/bart-faithful-summary-detector")
    logit = 1

    def inputs(self, prompts: Sequence[Any], outputs: Sequence[str]) -> tuple[list[str], list[str] | None]:
        return list(outputs), [_post(p) for p in prompts]


@judges.register("rm-summary")
class SummaryRM(RewardModelJudge):
    """Summary-quality reward model (Tristan/gpt2_reward_summarization) on summary + bos + post."""

    Params = _params("Tristan/gpt2_reward_summarization")

    def inputs(self, prompts: Sequence[Any], outputs: Sequence[str]) -> tuple[list[str], list[str] | None]:
        _, tokenizer, _ = self._load()
        return [f"{o} {tokenizer.bos_token} {_post(p)}" for p, o in zip(prompts, outputs)], None

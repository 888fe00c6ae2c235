"""The policy family of the paper tasks: a pretrained causal LM from the hub (or a local folder),
fine-tuned on the task's SFT data, then the same RL, merging, value models and decoding engine as
the mini tasks (`mobench.text_task`).

Presets (paper Table 1 and a small one for single-GPU trials) name the base model, the LoRA shape
of RL, and the SFT settings; `policy=ID_OR_PATH` replaces the preset's model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mobench.errors import MobenchError
from mobench.hub import Asset, count_tokens, load_rows, load_tokenizer, pretrained, require
from mobench.judge import Judge
from mobench.registry import judges as judge_registry
from mobench.text_task import TextTask, TextTaskParams
from mobench.textdata import MiniSplits, TextPrompt
from mobench.training import SFTSettings

if TYPE_CHECKING:
    from mobench.context import RunContext


DATASET_ROLE, POLICY_ROLE = "dataset", "policy base model"
POLICY_TOKENIZER = "the policy's tokenizer"


@dataclass(frozen=True)
class LengthFilter:
    """The reference code's token-length filter of one kind of text in some splits: an example is kept
    when every tokenizer named counts `min_tokens` to `max_tokens` tokens in it.

    `text`: "prompt", or "transcript" (the prompt followed by the reference reply: the SFT target for
    SFT pairs, the first reference for prompts; with the policy's tokenizer, one more token for the EOS
    that SFT appends). `tokenizers`: "policy", or "judges" (each objective judge's own tokenizer:
    "remove some samples that the reward model can't handle")."""

    splits: tuple[str, ...]
    text: Literal["prompt", "transcript"]
    tokenizers: Literal["policy", "judges"]
    min_tokens: int
    max_tokens: int

    def describe(self) -> str:
        return (f"{'/'.join(self.splits)}: {self.min_tokens}-{self.max_tokens} {self.tokenizers} tokens of the "
                f"{self.text}")


@dataclass(frozen=True)
class Preset:
    model: str
    lora_r: int  # RL trains LoRA adapters of this rank (0: full weights)
    sft_learning_rate: float
    sft_batch_size: int
    note: str


PRESETS = {
    # Paper Table 1: Llama-2-7B, LoRA r 64 / alpha 128, SFT lr 1.41e-4, batch 32.
    "llama2-7b": Preset("meta-llama/Llama-2-7b-hf", 64, 1.41e-4, 32, "paper Table 1 (one H100: LoRA RL)"),
    # For single-GPU trials and CPU smoke runs.
    "small": Preset("HuggingFaceTB/SmolLM2-135M", 0, 5e-5, 16, "135M parameters, full-weight RL"),
    "gpt2": Preset("openai-community/gpt2", 0, 5e-5, 16, "124M parameters, full-weight RL"),
}


@dataclass(frozen=True)
class PaperTaskParams(TextTaskParams):
    preset: str = field(default="small", metadata={"help": f"policy preset: {', '.join(PRESETS)}"})
    policy: str = field(default="", metadata={"help": "base model id or local folder (overrides the preset's)"})
    dataset: str = field(default="", metadata={"help": "dataset id or local path (default: the task's hub id)"})
    n_sft: int = field(default=20000, metadata={"help": "SFT examples used (0: all)"})
    n_rl: int = field(default=2000, metadata={"help": "RL prompts"})
    n_validation: int = field(default=200, metadata={"help": "validation prompts (γ, α, β selection)"})
    max_prompt_tokens: int = field(default=512, metadata={
        "help": "prompts longer than this many policy tokens are dropped from every split (the reference code's "
                "evaluation limit), besides the task's reference filters; lowered to fit the policy's positions"})
    decode_batch_size: int = field(default=16, metadata={
        "help": "prompts decoded at once (each model in play keeps a KV cache of this many rows)"})
    judge_models: tuple[str, ...] = field(default=(), metadata={
        "help": "local copies of judge models, e.g. [helpful=/models/helpful-rm,humor=/models/humor]",
        "eval_only": True})  # not a key of its own: the judges' ids, which name each model's path, already key
    # every RL recipe, so a judge pointed at a local copy retrains the policies it rewards (mobench cannot tell
    # that a copy holds the hub model's weights)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if self.n_sft < 0 or self.n_rl < 1 or self.n_validation < 1:
            raise ValueError("n_sft must be >= 0, n_rl and n_validation >= 1")
        if self.decode_batch_size < 1:
            raise ValueError(f"decode_batch_size must be >= 1, got {self.decode_batch_size}")
        if self.max_prompt_tokens < 1:
            raise ValueError(f"max_prompt_tokens must be >= 1, got {self.max_prompt_tokens}")
        for entry in self.judge_models:
            if "=" not in entry:
                raise ValueError(f"judge_models entries are OBJECTIVE=PATH, got {entry!r}")


class HubTextTask(TextTask):
    """Base of the paper tasks. Subclasses set `default_dataset`, the judges' asset roles, and
    `build_splits(rows_by_split)`."""

    Params = PaperTaskParams
    default_dataset: ClassVar[str] = ""
    dataset_config: ClassVar[str | None] = None
    dataset_splits: ClassVar[tuple[str, str]] = ("train", "test")  # (training rows, evaluation rows)
    data_version = "2"  # 2: the reference's length filters (`reference_filters`) apply before selection
    # 3: with lora_r > 0, RiC, MODPO and the value models train LoRA adapters (were full weights), so no
    # artifact built before is reused. 4: n_test prompts spread over the test split (were its first ones),
    # dialogue replies cut at an invented next turn, hh SFT targets after a space, the QA answer cue.
    # 5: the reference's token-length filters, applied to each split's pool before n_sft/n_rl/n_validation
    # examples are spread over it (were applied after, so fewer were used); summary posts unstripped.
    version = "5"
    # The reference code's filters besides `max_prompt_tokens` (tasks set their own).
    reference_filters: ClassVar[tuple[LengthFilter, ...]] = ()

    # --- assets ----------------------------------------------------------------------------------
    @property
    def preset(self) -> Preset:
        return PRESETS[self.params.preset]

    def policy_source(self) -> str:
        return self.params.policy or self.preset.model

    def dataset_source(self) -> str:
        return self.params.dataset or self.default_dataset

    def assets(self) -> list[Asset]:
        """Everything this task loads: the dataset, the base policy, and each judge's model."""
        found = [Asset(DATASET_ROLE, self.dataset_source(), "dataset", "dataset=PATH"),
                 Asset(POLICY_ROLE, self.policy_source(), "model", "policy=PATH")]
        for objective, judge in zip(self.objectives, self.judges):
            found += [Asset(f"{objective.name} judge ({judge.name})", asset.source, asset.kind,
                            f"judge_models=[{objective.name}=PATH]") for asset in judge.assets()]
        return found

    def check_assets(self) -> None:
        require(self.assets())

    @cached_property
    def judges(self) -> list[Judge]:
        """The objectives' judges, with `judge_models` pointing them at local copies."""
        paths = dict(entry.split("=", 1) for entry in self.params.judge_models)
        unknown = set(paths) - {o.name for o in self.objectives}
        if unknown:
            raise MobenchError(f"judge_models names {sorted(unknown)}, not objectives of {self.name} "
                               f"({', '.join(o.name for o in self.objectives)})")
        return [judge_registry.create(o.judge, overrides={"model": paths[o.name]} if o.name in paths else None)
                for o in self.objectives]

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        # A preset with LoRA (Llama-2-7B: r 64, α 128, paper Table 1) trains adapters when lora_r is left
        # at 0: full-weight RL of a 7B model does not fit one GPU.
        if self.params.lora_r == 0 and self.preset.lora_r:
            import dataclasses

            self.params = dataclasses.replace(self.params, lora_r=self.preset.lora_r)

    # --- data ---------------------------------------------------------------------------------------
    def splits(self) -> MiniSplits:
        return _cached_splits(self)[0]

    def load_splits(self) -> MiniSplits:
        """Read the dataset (hub or local) and build the task's pools of examples per split."""
        train_split, eval_split = self.dataset_splits
        source = self.dataset_source()
        return self.build_splits(load_rows(source, train_split, self.dataset_config),
                                 load_rows(source, eval_split, self.dataset_config))

    def build_splits(self, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> MiniSplits:
        raise NotImplementedError

    def select(self, pools: MiniSplits) -> MiniSplits:
        """`n_sft`, `n_rl` and `n_validation` examples spread evenly over each filtered pool (the test pool
        is kept whole: `test_prompts` spreads `n_test` over it)."""
        from mobench.data_paper import evenly

        p = self.params
        return MiniSplits(sft=evenly(pools.sft, p.n_sft), rl=evenly(pools.rl, p.n_rl),
                          validation=evenly(pools.validation, p.n_validation), test=pools.test,
                          extra_text=pools.extra_text)

    def test_prompts(self) -> list[TextPrompt]:
        """`n_test` prompts spread evenly over the test split: the reference code scores the whole split,
        whose first rows can all be of one kind (hh-rlhf's red-team rows)."""
        from mobench.data_paper import evenly

        return evenly(self.splits().test, self.params.n_test)

    def decode_config(self, **overrides: Any) -> Any:
        return super().decode_config(**{"batch_size": self.params.decode_batch_size, **overrides})

    def length_filters(self, positions: int | None) -> list[LengthFilter]:
        """`max_prompt_tokens` (lowered to fit the policy's positions) on every split's prompts, then the
        task's reference filters."""
        cap = LengthFilter(("sft", "rl", "validation", "test"), "prompt", "policy", 1,
                           self.limit_prompt_tokens(positions))
        return [cap, *self.reference_filters]

    def transcript(self, prompt: TextPrompt, reply: str) -> str:
        """The text a "transcript" filter measures: the prompt followed by `reply` (an SFT pair's
        target; elsewhere the first reference). Tasks rebuild their dataset's own text here."""
        return prompt.text + reply

    def fit_prompts(self, pools: MiniSplits) -> tuple[MiniSplits, dict[str, Any]]:
        """Drop the examples the length filters reject, as the reference code does (hh-rlhf transcripts
        run to thousands of tokens); returns the pools and the drops, which every results file records:
        `prompt_token_limit`, `by_split` and `by_filter` (a filter's drops over all its splits)."""
        from transformers import AutoConfig

        from mobench.decoding import max_positions

        source = self.policy_source()
        filters = self.length_filters(max_positions(pretrained(AutoConfig, source, "the policy's config")))
        policy = load_tokenizer(source, POLICY_TOKENIZER)
        counters = {"policy": [lambda texts: count_tokens(policy, texts)],
                    "judges": [judge.count_tokens for judge in self.judges if judge.counts_tokens]}
        dropped: dict[str, Any] = {"prompt_token_limit": filters[0].max_tokens, "by_split": {},
                                   "by_filter": {rule.describe(): 0 for rule in filters}}
        if any(r.tokenizers == "judges" for r in filters) and not counters["judges"]:
            dropped["unapplied"] = "no objective judge has a tokenizer: the judges' filters kept everything"
        kept: dict[str, list[Any]] = {}
        for name in ("sft", "rl", "validation", "test"):
            pool = getattr(pools, name)
            rules = [r for r in filters if name in r.splits]
            keep = self._length_mask(name, pool, rules, counters, dropped["by_filter"])
            kept[name] = [example for example, k in zip(pool, keep) if k]
            dropped["by_split"][name] = len(pool) - len(kept[name])
            if not kept[name]:
                why = (f"none passes the length filters ({'; '.join(r.describe() for r in rules)})" if pool
                       else "the dataset gives none")
                raise MobenchError(f"{self.name}: no {name} example: {why}")
        return MiniSplits(extra_text=pools.extra_text, **kept), dropped

    def _length_mask(self, split: str, pool: list[Any], rules: list[LengthFilter],
                     counters: dict[str, list[Callable[[list[str]], list[int]]]], by_filter: dict[str, int]) -> list[bool]:
        """Which examples of one split's pool every rule keeps (each text counted once per tokenizer);
        adds each rule's new drops to `by_filter`."""
        pairs = pool if split == "sft" else [(p, p.references[0] if p.references else "") for p in pool]
        texts: dict[str, list[str]] = {}  # built when a rule first reads them
        counts: dict[tuple[str, str, int], list[int]] = {}
        keep = [True] * len(pool)
        for rule in rules:
            eos_tokens = 1 if rule.text == "transcript" and rule.tokenizers == "policy" else 0  # SFT appends an EOS
            before = keep.count(True)
            for index, count in enumerate(counters[rule.tokenizers]):
                key = (rule.text, rule.tokenizers, index)
                if key not in counts:
                    if rule.text not in texts:
                        texts[rule.text] = [p.text if rule.text == "prompt" else self.transcript(p, r) for p, r in pairs]
                    counts[key] = count(texts[rule.text]) if pool else []
                keep = [k and rule.min_tokens <= n + eos_tokens <= rule.max_tokens for k, n in zip(keep, counts[key])]
            by_filter[rule.describe()] += before - keep.count(True)
        return keep

    def limit_prompt_tokens(self, positions: int | None) -> int:
        """`max_prompt_tokens`, lowered where a prompt plus `max_new_tokens` would pass the policy's
        positions (GPT-2: 1024); the limit used is recorded with the dropped counts."""
        limit = self.params.max_prompt_tokens
        if positions:
            limit = min(limit, positions - self.params.max_new_tokens)
        if limit < 1:
            raise MobenchError(f"max_new_tokens={self.params.max_new_tokens} leaves no room for a prompt in the "
                               f"policy's {positions} positions")
        return limit

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dropped_prompts": _cached_splits(self)[1]}

    # --- policy ------------------------------------------------------------------------------------
    def sft_settings(self) -> SFTSettings:
        return SFTSettings(steps=self.params.sft_steps, batch_size=self.preset.sft_batch_size,
                           learning_rate=self.preset.sft_learning_rate, warmup_steps=min(100, self.params.sft_steps // 10),
                           max_length=1024)

    def initial_policy_recipe(self) -> dict[str, Any]:
        return {"data": self.name, "data_version": self.data_version, "dataset": self.dataset_source(),
                "data_sha": self.data_fingerprint, "policy_model": self.policy_source(),
                "sft": self.sft_settings().to_dict(), "sft_lora_r": self.finetune_lora_rank()}

    def finetune_lora_rank(self) -> int:
        """SFT, RiC, MODPO and the value models train LoRA adapters when RL does (llama2-7b: r 64, α 128,
        paper Table 1): full-weight training of a 7B model does not fit one GPU."""
        return self.params.lora_r

    def activation_checkpointing(self) -> bool:
        """On with LoRA (the 7B preset): a 7B model's activations at batch 32 do not fit one GPU."""
        return self.params.lora_r > 0

    def policy_dtype(self) -> Any:
        """bf16 on a GPU that has it (a 7B policy in fp32 would not fit beside its guides) for decoding;
        fp32 elsewhere. Training always keeps fp32 weights (`training.fp32_master_weights`)."""
        import torch

        from mobench.training import bf16_available

        return torch.bfloat16 if bf16_available() else None

    def base_model(self, ctx: RunContext) -> tuple[Any, Any]:
        """The pretrained policy in fp32 (SFT trains it: bf16 weights would lose most updates)."""
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        source = self.policy_source()
        tokenizer = load_tokenizer(source, POLICY_TOKENIZER)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if getattr(pretrained(AutoConfig, source, "the policy's config"), "is_encoder_decoder", False):
            raise MobenchError(f"{source} is an encoder-decoder model; the decoding engine steers causal LMs only "
                               "(use preset=small or a causal policy)")
        model = pretrained(AutoModelForCausalLM, source, "the policy", dtype=torch.float32)
        if torch.cuda.is_available():
            model = model.to("cuda")
        return model, tokenizer


@lru_cache(maxsize=8)
def _cached_splits(task: HubTextTask) -> tuple[MiniSplits, dict[str, Any]]:
    # Building the data reads the dataset and the policy's tokenizer, and the judges' tokenizers where a
    # length filter counts with them (runs check every asset; `mobench judge` needs the data too).
    reads_judges = any(rule.tokenizers == "judges" for rule in task.reference_filters)
    require([a for a in task.assets() if reads_judges or a.role in (DATASET_ROLE, POLICY_ROLE)])
    pools, dropped = task.fit_prompts(task.load_splits())
    return task.select(pools), dropped

"""The policy family of the paper tasks: a pretrained causal LM from the hub (or a local folder),
fine-tuned on the task's SFT data, then the same RL, merging, value models and decoding engine as
the mini tasks (`mobench.text_task`).

Presets (paper Table 1 and a small one for single-GPU trials) name the base model, the LoRA shape
of RL, and the SFT settings; `policy=ID_OR_PATH` replaces the preset's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from mobench.errors import MobenchError
from mobench.hub import Asset, load_rows, require
from mobench.judge import Judge
from mobench.registry import judges as judge_registry
from mobench.text_task import TextTask, TextTaskParams
from mobench.textdata import MiniSplits, TextPrompt
from mobench.training import SFTSettings

if TYPE_CHECKING:
    from mobench.context import RunContext


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
        "help": "prompts longer than this many policy tokens are dropped (the reference code filters hh-rlhf at "
                "512); lowered to fit the policy's positions"})
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
    data_version = "1"
    # 3: with lora_r > 0, RiC, MODPO and the value models train LoRA adapters (were full weights), so no
    # artifact built before is reused. 4: n_test prompts spread over the test split (were its first ones),
    # dialogue replies cut at an invented next turn, hh SFT targets after a space, the QA answer cue.
    version = "4"

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
        found = [Asset("dataset", self.dataset_source(), "dataset", "dataset=PATH"),
                 Asset("policy base model", self.policy_source(), "model", "policy=PATH")]
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

    # --- data --------------------------------------------------------------------------------------
    def splits(self) -> MiniSplits:
        return _cached_splits(self)[0]

    def load_splits(self) -> MiniSplits:
        """Read the dataset (hub or local) and build the task's splits."""
        train_split, eval_split = self.dataset_splits
        source = self.dataset_source()
        return self.build_splits(load_rows(source, train_split, self.dataset_config),
                                 load_rows(source, eval_split, self.dataset_config))

    def build_splits(self, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> MiniSplits:
        raise NotImplementedError

    def test_prompts(self) -> list[TextPrompt]:
        """`n_test` prompts spread evenly over the test split: the reference code scores the whole split,
        whose first rows can all be of one kind (hh-rlhf's red-team rows)."""
        from mobench.data_paper import _evenly

        return _evenly(self.splits().test, self.params.n_test)

    def decode_config(self, **overrides: Any) -> Any:
        return super().decode_config(**{"batch_size": self.params.decode_batch_size, **overrides})

    def fit_prompts(self, splits: MiniSplits) -> tuple[MiniSplits, dict[str, int]]:
        """Drop the prompts longer than `max_prompt_tokens` policy tokens, as the reference code does
        (hh-rlhf transcripts run to thousands of tokens); returns the splits and the number dropped per
        split, which every results file records."""
        from transformers import AutoConfig, AutoTokenizer

        from mobench.decoding import max_positions

        source = self.policy_source()
        limit = self.limit_prompt_tokens(max_positions(_pretrained(AutoConfig, source, "the policy's config")))
        tokenizer = _pretrained(AutoTokenizer, source, "the policy's tokenizer")

        def fits(prompts: list[TextPrompt]) -> list[bool]:
            if not prompts:
                return []
            lengths = [len(ids) for ids in tokenizer([p.text for p in prompts])["input_ids"]]
            return [n <= limit for n in lengths]

        sft_ok = fits([prompt for prompt, _ in splits.sft])
        kept = {name: [p for p, ok in zip(getattr(splits, name), fits(getattr(splits, name))) if ok]
                for name in ("rl", "validation", "test")}
        dropped = {"over_tokens": limit, "sft": sft_ok.count(False),
                   **{name: len(getattr(splits, name)) - len(kept[name]) for name in kept}}
        for name in ("rl", "validation", "test"):
            if not kept[name]:
                raise MobenchError(f"{self.name}: no {name} prompt fits max_prompt_tokens={limit}")
        return MiniSplits(sft=[pair for pair, ok in zip(splits.sft, sft_ok) if ok], extra_text=splits.extra_text,
                          **kept), dropped

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
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        source = self.policy_source()
        tokenizer = _pretrained(AutoTokenizer, source, "the policy's tokenizer")
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if getattr(_pretrained(AutoConfig, source, "the policy's config"), "is_encoder_decoder", False):
            raise MobenchError(f"{source} is an encoder-decoder model; the decoding engine steers causal LMs only "
                               "(use preset=small or a causal policy)")
        model = _pretrained(AutoModelForCausalLM, source, "the policy", dtype=torch.float32)
        if torch.cuda.is_available():
            model = model.to("cuda")
        return model, tokenizer


def _pretrained(loader: Any, source: str, what: str, **kwargs: Any) -> Any:
    """`loader.from_pretrained(source)`, with a clear error for a gated, private or broken model."""
    try:
        return loader.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise MobenchError(f"cannot load {what} from {source!r}: {str(exc).splitlines()[0]} "
                           "(gated models need `huggingface-cli login`; or pass a local folder)") from None


@lru_cache(maxsize=8)
def _cached_splits(task: HubTextTask) -> tuple[MiniSplits, dict[str, int]]:
    require([a for a in task.assets() if a.kind == "dataset"])  # runs check every asset; data needs only this
    return task.fit_prompts(task.load_splits())

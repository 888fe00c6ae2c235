"""The policy family of the text tasks: a tiny GPT-2 and a tokenizer the suite trains itself,
SFT then multi-reward GRPO, and sampling-based generation.

A policy state is the model's state dict (full weights), so Rewarded Soups and Bone Soup merge
text policies with the same task-arithmetic code as the quadratic task. With `lora_r > 0`, RL trains
LoRA adapters on top of the SFT model and a policy state is SFT + ΔW (ΔW = B·A·scale): merging those
states relative to SFT is exactly merging the ΔW products.
"""

from __future__ import annotations

import tempfile
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mobench.task import PolicyState, Task
from mobench.textdata import MiniSplits, TextPrompt, prompt_text
from mobench.tinylm import TinyLMSpec
from mobench.training import RLSettings, SFTSettings

if TYPE_CHECKING:
    from mobench.context import RunContext
    from mobench.decoding import DecodeConfig, Plan
    from mobench.values import ValueSettings

POLICY_FILE = "policy.safetensors"


@dataclass(frozen=True)
class TextTaskParams:
    sft_steps: int = field(default=300, metadata={"help": "SFT optimiser steps (batch 32)"})
    rl_steps: int = field(default=150, metadata={"help": "GRPO steps of a full RL run (2 prompts x 8 samples)",
                                                 "rl_only": True})
    rl_lr: float = field(default=1e-4, metadata={"help": "GRPO learning rate", "rl_only": True})
    kl_beta: float = field(default=0.04, metadata={"help": "KL penalty to the SFT reference", "rl_only": True})
    lora_r: int = field(default=0, metadata={
        "help": "0: full weights; r > 0: LoRA adapters of rank r in RL (on paper tasks, in every training step)"})
    n_test: int = field(default=64, metadata={"help": "test prompts per preference", "eval_only": True})
    samples: int = field(default=2, metadata={"help": "sampled replies per test prompt", "eval_only": True})
    max_new_tokens: int = field(default=32, metadata={"help": "reply length limit in tokens"})

    def __post_init__(self) -> None:
        for name in ("sft_steps", "rl_steps", "n_test", "samples", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.lora_r < 0:
            raise ValueError("lora_r must be >= 0")
        if self.rl_lr <= 0 or self.kl_beta < 0:
            raise ValueError("rl_lr must be > 0 and kl_beta >= 0")


@dataclass(frozen=True)
class DecodeSettings:
    """Evaluation sampling, as the paper: top-p 0.9, top-k 50, temperature 1.0."""

    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 0.9
    batch_size: int = 64


class TextTask(Task):
    """Base of the text tasks. Subclasses set `objectives`, `reference_point` and `splits()`."""

    Params = TextTaskParams
    # 2: evaluation decodes through mobench.decoding (was transformers' generate), so old cells are stale.
    # 3: GRPO scores GPT-2 at positions counted from the attention mask and without dropout (see
    # training.RLSettings), so every RL policy, and every cell that used one, is new.
    version = "3"
    token_level = True
    outputs_text = True
    uses_packages = ("torch", "transformers", "trl", "peft", "datasets", "tokenizers", "sentence-transformers",
                     "scikit-learn")
    lm_spec: ClassVar[TinyLMSpec] = TinyLMSpec()
    decode: ClassVar[DecodeSettings] = DecodeSettings()
    data_version: ClassVar[str] = "1"

    @abstractmethod
    def splits(self) -> MiniSplits:
        """The task's deterministic sft / rl / validation / test splits."""

    # --- evaluation --------------------------------------------------------------------------
    def test_prompts(self) -> list[TextPrompt]:
        """The `n_test` test prompts evaluated (the mini tasks: the first ones)."""
        return list(self.splits().test[: self.params.n_test])

    def evaluation_prompts(self) -> list[Any]:
        return [prompt for prompt in self.test_prompts() for _ in range(self.params.samples)]

    def validation_prompts(self) -> list[Any]:
        return [prompt for prompt in self.splits().validation for _ in range(self.params.samples)]

    def prompt_record(self, prompt: Any) -> Any:
        return prompt.id if isinstance(prompt, TextPrompt) else prompt

    def clean_reply(self, text: str) -> str:
        """A generated reply as the judges see it (in evaluation, RL rewards and value data); the paper
        tasks cut dialogue replies at an invented next turn. Default: unchanged."""
        return text

    def trained_reply(self, sampled: str) -> str:
        """A sampled reply as a method trains on it (RiC's online rounds, MODPO's pairs): the text the
        judges scored (`clean_reply`), with the leading whitespace the policy wrote (a dialogue reply's
        space is part of its first token)."""
        cleaned = self.clean_reply(sampled.strip())
        return sampled if cleaned == sampled.strip() else sampled[:len(sampled) - len(sampled.lstrip())] + cleaned

    def point_output(self, outputs: list[Any]) -> Any:
        return {"examples": outputs[:3], **reply_statistics(outputs)}

    # --- the policy family -------------------------------------------------------------------
    def sft_settings(self) -> SFTSettings:
        return SFTSettings(steps=self.params.sft_steps)

    def finetune_lora_rank(self) -> int:
        """LoRA rank of every supervised step: SFT, RiC's conditioned SFT, MODPO and the value models
        (0: full weights, as the tiny mini-task policies)."""
        return 0

    def activation_checkpointing(self) -> bool:
        """Recompute activations in every training step's backward pass (memory, not results): off for
        the tiny policies, where it would only cost time."""
        return False

    def rl_settings(self) -> RLSettings:
        return RLSettings(learning_rate=self.params.rl_lr, kl_beta=self.params.kl_beta,
                          max_completion_length=self.params.max_new_tokens)

    @cached_property
    def data_fingerprint(self) -> str:
        """A hash of every split's content, so an artifact is rebuilt whenever the data changes.

        Cached: every artifact recipe of a run asks for it, and the splits do not change in a process."""
        import hashlib
        import json

        splits = self.splits()
        content = {"sft": [[p.to_dict(), r] for p, r in splits.sft],
                   **{name: [p.to_dict() for p in getattr(splits, name)] for name in ("rl", "validation", "test")},
                   "extra_text": splits.extra_text}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def initial_policy_recipe(self) -> dict[str, Any]:
        return {"data": self.name, "data_version": self.data_version, "data_sha": self.data_fingerprint,
                "lm": self.lm_spec.to_dict(), "sft": self.sft_settings().to_dict()}

    def policy_recipe(self) -> dict[str, Any]:
        rl = self.rl_settings().to_dict()
        return {**self.initial_policy_recipe(), "rl": rl, "rl_steps": self.params.rl_steps, "lora_r": self.params.lora_r,
                "judges": [judge.id for judge in self.judges]}

    def base_model(self, ctx: RunContext) -> tuple[Any, Any]:
        """The untrained (model, tokenizer) that SFT starts from: here a tiny GPT-2 and a BPE tokenizer
        fitted on the task corpus; hub tasks load a pretrained model instead."""
        from mobench.tinylm import build_model, train_tokenizer

        tokenizer = train_tokenizer(self.splits().tokenizer_corpus(), self.lm_spec.vocab_size)
        return build_model(self.lm_spec, tokenizer, ctx.seed), tokenizer

    def policy_dtype(self) -> Any:
        """The dtype policies are loaded in: None keeps fp32 (tiny models; exact merges)."""
        return None

    def initial_policy(self, ctx: RunContext) -> PolicyState:
        def build(directory: Path) -> dict[str, Any]:
            from mobench.tinylm import save_pretrained
            from mobench.training import run_sft

            splits = self.splits()
            model, tokenizer = self.base_model(ctx)
            eos = tokenizer.eos_token
            pairs = [(p.text, reply + eos) for p, reply in splits.sft]
            held_out = [(p.text, p.references[0] + eos) for p in splits.validation if p.references]
            info = run_sft(model, tokenizer, pairs, self.sft_settings(), ctx.seed, eval_pairs=held_out,
                           lora_rank=self.finetune_lora_rank(), checkpointing=self.activation_checkpointing())
            save_pretrained(model, tokenizer, directory)
            return {**info, "n_pairs": len(pairs), "parameters": sum(p.numel() for p in model.parameters())}

        def load(directory: Path) -> PolicyState:
            from mobench.tinylm import load_pretrained

            model, tokenizer = load_pretrained(directory, self.policy_dtype())
            ctx.memo[f"{self.name}:sft-dir"] = directory
            ctx.memo[f"{self.name}:skeleton"] = (model, tokenizer)
            return _state_of(model)

        recipe = {"policy": self.initial_policy_recipe(), "seed": ctx.seed}
        return ctx.artifact("sft-policy", recipe, build, load, uses_packages=self.uses_packages, uses_rl=False)

    def _skeleton(self, ctx: RunContext) -> tuple[Any, Any]:
        # Asked every time (a memo hit after the first), so every user of the SFT model's skeleton and
        # tokenizer lists the sft-policy artifact, whichever method happened to load it first.
        self.initial_policy(ctx)
        return ctx.memo[f"{self.name}:skeleton"]

    def train_policy(self, ctx: RunContext, init: PolicyState, weights: np.ndarray,
                     fraction: float) -> tuple[PolicyState, dict[str, Any]]:
        from mobench.training import run_grpo

        model, tokenizer = self._skeleton(ctx)
        rl_prompts = self.splits().rl
        steps = max(1, round(self.params.rl_steps * fraction))
        with tempfile.TemporaryDirectory() as init_dir:
            model.load_state_dict(dict(init))
            model.save_pretrained(init_dir)
            tokenizer.save_pretrained(init_dir)
            if self.params.lora_r:
                trained, info = self._train_lora(init_dir, tokenizer, rl_prompts, weights, steps, ctx.seed)
            else:
                trained, info = run_grpo(Path(init_dir), tokenizer, [p.text for p in rl_prompts],
                                         self.reward_functions(rl_prompts), weights, self.rl_settings(), steps,
                                         ctx.seed, extra_columns={"prompt_index": list(range(len(rl_prompts)))},
                                         checkpointing=self.activation_checkpointing())
        state = _state_of(trained)
        info["reply_statistics"] = reply_statistics(self._sample(ctx, state, self.splits().validation))
        return state, info

    def _train_lora(self, init_dir: str, tokenizer: Any, rl_prompts: list[TextPrompt], weights: np.ndarray,
                    steps: int, seed: int) -> tuple[Any, dict[str, Any]]:
        from mobench.lora import grpo_lora

        return grpo_lora(Path(init_dir), tokenizer, [p.text for p in rl_prompts], self.reward_functions(rl_prompts),
                         weights, self.rl_settings(), steps, seed, self.params.lora_r,
                         extra_columns={"prompt_index": list(range(len(rl_prompts)))},
                         checkpointing=self.activation_checkpointing())

    def reward_functions(self, table: Sequence[TextPrompt]) -> list[Any]:
        """One trl reward function per objective; rows carry `prompt_index` back into `table`."""
        functions = []
        for objective, judge in zip(self.objectives, self.judges):
            def reward(prompts: Sequence[Any], completions: Sequence[str], prompt_index: Sequence[int],
                       _judge: Any = judge, **_: Any) -> list[float]:
                replies = [self.clean_reply(c) for c in completions]
                return [float(x) for x in _judge.score([table[i] for i in prompt_index], replies)]

            reward.__name__ = objective.name
            functions.append(reward)
        return functions

    def save_policy(self, state: PolicyState, directory: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(directory / POLICY_FILE))

    def load_policy(self, directory: Path) -> PolicyState:
        from safetensors.torch import load_file

        return load_file(str(directory / POLICY_FILE))

    # --- decoding (every text method goes through the one engine) ---------------------------
    def decode_config(self, **overrides: Any) -> DecodeConfig:
        """The task's evaluation decoding (the paper's sampling), with method overrides."""
        from mobench.decoding import DecodeConfig

        settings = {"temperature": self.decode.temperature, "top_k": self.decode.top_k, "top_p": self.decode.top_p,
                    "batch_size": self.decode.batch_size, "max_new_tokens": self.params.max_new_tokens}
        return DecodeConfig(**{**settings, **overrides})

    def token_model(self, ctx: RunContext, state: PolicyState, value: bool = False) -> Any:
        """A model instance holding `state` (a policy, or with `value` an explicit value model)."""
        import copy

        from mobench.values import split_state, value_skeleton

        model, _ = self._skeleton(ctx)
        if value:
            weights, _ = split_state(dict(state))
            instance = value_skeleton(model)
            instance.load_state_dict(weights)
        else:
            instance = copy.deepcopy(model)
            instance.load_state_dict(dict(state))
        return instance.to(resolve_device()).eval()

    def decoder(self, ctx: RunContext, plan: Plan, config: DecodeConfig | None = None) -> DecoderGenerator:
        from mobench.decoding import Decoder

        _, tokenizer = self._skeleton(ctx)
        return DecoderGenerator(Decoder(plan, tokenizer, config or self.decode_config(), ctx.seed), self.clean_reply)

    def generator(self, ctx: RunContext, state: PolicyState) -> DecoderGenerator:
        from mobench.decoding import Plan, Term

        return self.decoder(ctx, Plan(base=[Term(self.token_model(ctx, state), 1.0, name="policy")]))

    def tokenizer(self, ctx: RunContext) -> Any:
        return self._skeleton(ctx)[1]

    def fine_tune(self, ctx: RunContext, init: PolicyState, pairs: Sequence[tuple[str, str]],
                  steps: int) -> tuple[PolicyState, dict[str, Any]]:
        """Supervised fine-tuning of `init` on (prompt text, reply) pairs (an EOS is appended), with
        the task's SFT settings for `steps` steps; returns (state, training info)."""
        import dataclasses

        from mobench.decoding import max_positions
        from mobench.training import run_sft

        model = self.token_model(ctx, init)
        eos = self.tokenizer(ctx).eos_token
        # Conditioned prompts are longer than the task's own; never exceed the model's positions.
        positions = max_positions(model.config) or self.sft_settings().max_length
        settings = dataclasses.replace(self.sft_settings(), steps=steps,
                                       max_length=min(self.sft_settings().max_length, positions))
        info = run_sft(model, self.tokenizer(ctx), [(p, r + eos) for p, r in pairs], settings, ctx.seed,
                       lora_rank=self.finetune_lora_rank(), checkpointing=self.activation_checkpointing())
        return _state_of(model), info

    # --- explicit value models (MAGE-E) --------------------------------------------------------
    def value_settings(self) -> ValueSettings:
        from mobench.values import ValueSettings

        return ValueSettings()

    def value_data_recipe(self) -> dict[str, Any]:
        settings = self.value_settings()
        return {"policy": self.initial_policy_recipe(), "judges": [judge.id for judge in self.judges],
                "samples_per_prompt": settings.samples_per_prompt, "decode": asdict(self.decode_config())}

    def value_data(self, ctx: RunContext) -> dict[str, Any]:
        """Samples of θ_sft on the RL-split prompts (token ids and text) scored by every judge."""
        import json

        def build(directory: Path) -> dict[str, Any]:
            import time

            import torch

            from mobench.decoding import Decoder, Plan, Term

            started = time.perf_counter()
            model, tokenizer = self._skeleton(ctx)
            sft = self.token_model(ctx, self.initial_policy(ctx))
            config = self.decode_config()
            decoder = Decoder(Plan(base=[Term(sft, 1.0)]), tokenizer, config, ctx.seed)
            table = self.splits().rl
            index = [i for i in range(len(table)) for _ in range(self.value_settings().samples_per_prompt)]
            generator = torch.Generator(device=next(sft.parameters()).device).manual_seed(ctx.seed)
            prompt_ids, reply_ids = [], []
            for start in range(0, len(index), config.batch_size):
                chunk = [table[i].text for i in index[start:start + config.batch_size]]
                batch = tokenizer(chunk, return_tensors="pt", padding=True)
                new = decoder.generate_ids(batch["input_ids"], batch["attention_mask"], generator).tolist()
                for row, ids, mask in zip(new, batch["input_ids"].tolist(), batch["attention_mask"].tolist()):
                    prompt_ids.append([t for t, m in zip(ids, mask) if m])
                    reply = []
                    for token in row:
                        if token == tokenizer.eos_token_id:
                            reply.append(token)  # the end token is part of the reply (its value is r)
                            break
                        if token == tokenizer.pad_token_id:
                            break
                        reply.append(token)
                    reply_ids.append(reply)
            texts = [self.clean_reply(t.strip()) for t in tokenizer.batch_decode(reply_ids, skip_special_tokens=True)]
            rewards = self.score([table[i] for i in index], texts)
            data = {"prompt_index": index, "prompt_ids": prompt_ids, "reply_ids": reply_ids, "texts": texts,
                    "rewards": rewards.round(8).tolist()}
            (directory / "value_data.json").write_text(json.dumps(data))
            return {"wall_s": round(time.perf_counter() - started, 3), "n": len(texts),
                    "reward_mean": rewards.mean(0).round(6).tolist(), "reward_std": rewards.std(0).round(6).tolist(),
                    **reply_statistics(texts)}

        def load(directory: Path) -> dict[str, Any]:
            return json.loads((directory / "value_data.json").read_text())

        recipe = {**self.value_data_recipe(), "seed": ctx.seed}
        return ctx.artifact("value-data", recipe, build, load, uses_packages=self.uses_packages, uses_rl=False)

    def value_model(self, ctx: RunContext, objective: int) -> PolicyState:
        """The explicit value model of objective `objective` (its state, with `value_offset`)."""
        settings = self.value_settings()

        def build(directory: Path) -> dict[str, Any]:
            from mobench.values import train_value_model

            data = self.value_data(ctx)
            model, tokenizer = self._skeleton(ctx)
            model.load_state_dict(dict(self.initial_policy(ctx)))
            rewards = [row[objective] for row in data["rewards"]]
            dtype = self.policy_dtype()
            state, info = train_value_model(model, data["prompt_ids"], data["reply_ids"], rewards,
                                            data["prompt_index"], tokenizer.pad_token_id, settings, ctx.seed,
                                            lora_rank=self.finetune_lora_rank(),
                                            checkpointing=self.activation_checkpointing(),
                                            bf16_autocast=dtype is not None)
            # Stored in the policy's dtype (fp32 for the tiny policies; bf16 for a hub policy on a GPU, where
            # fp32 value states would take 27 GB each at 7B).
            self.save_policy(cast_state(state, dtype), directory)
            return info

        recipe = {"value_data": self.value_data_recipe(), "objective": self.objectives[objective].name,
                  "judge": self.judges[objective].id, "value": settings.to_dict(), "seed": ctx.seed}
        return ctx.artifact("value-model", recipe, build, self.load_policy, uses_packages=self.uses_packages,
                            uses_rl=False)

    def _sample(self, ctx: RunContext, state: PolicyState, prompts: Sequence[TextPrompt]) -> list[str]:
        return self.generator(ctx, state).generate(list(prompts))


def resolve_device(requested: str = "auto") -> str:
    """Where models run: `auto` is the GPU when there is one (policies, guides, judges), else the CPU."""
    import torch

    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def cast_state(state: dict[str, Any], dtype: Any) -> dict[str, Any]:
    """`state` with its floating-point weight tensors in `dtype` (None: unchanged; scalars stay fp32)."""
    if dtype is None:
        return state
    return {k: v.to(dtype) if v.is_floating_point() and v.dim() > 0 else v for k, v in state.items()}


def _state_of(model: Any) -> dict[str, Any]:
    # Cloning unties shared tensors (GPT-2 ties lm_head to the embedding) so states can be saved and merged.
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def reply_statistics(outputs: Sequence[str]) -> dict[str, float]:
    """Mean reply length in words and distinct-word ratio: a degenerate policy shows in both."""
    words = [w for text in outputs for w in str(text).split()]
    lengths = [len(str(text).split()) for text in outputs]
    return {"mean_words": round(float(np.mean(lengths)) if lengths else 0.0, 3),
            "distinct_ratio": round(len(set(words)) / len(words), 4) if words else 0.0}


class DecoderGenerator:
    """Answers prompts with the decoding engine; reseeded per call, so deterministic."""

    def __init__(self, decoder: Any, clean: Callable[[str], str] | None = None) -> None:
        self.decoder = decoder
        self.clean = clean

    def generate(self, prompts: Sequence[Any], strip: bool = True) -> list[str]:
        """Replies, cleaned and stripped; with `strip=False` exactly as sampled (for training on them)."""
        replies = self.decoder.generate([prompt_text(p) for p in prompts], strip=strip)
        return replies if self.clean is None or not strip else [self.clean(reply) for reply in replies]

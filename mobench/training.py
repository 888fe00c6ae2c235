"""Policy training with trl: supervised fine-tuning and multi-reward RL (GRPO).

"RL with reward weights w" is trl's GRPOTrainer with one reward function per objective (the
objective's judge), `reward_weights = w`, rewards standardised within each group before weighting
(`normalize_then_sum`, so an easy reward cannot dominate whatever its weight), and a KL penalty to
the SFT reference. Settings that trl 1.16 defaults badly on CPU (bf16, learning rate 1e-6, no KL,
activation checkpointing, 512-token completions) are set explicitly.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RewardFunc = Callable[..., list[float]]


@dataclass(frozen=True)
class SFTSettings:
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_steps: int = 20
    max_length: int = 128

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": "sft (trl SFTTrainer, completion-only loss)", **asdict(self)}


@dataclass(frozen=True)
class RLSettings:
    """GRPO's settings (the number of steps is the task's `rl_steps`, recorded beside these)."""

    prompts_per_step: int = 2
    generations: int = 8
    max_completion_length: int = 32
    learning_rate: float = 1e-4
    kl_beta: float = 0.04
    temperature: float = 1.0
    top_k: int = 50
    aggregation: str = "normalize_then_sum"
    loss_type: str = "dapo"  # trl's default, token-level normalisation over the batch; set explicitly
    # Rollouts sampled and scored without dropout: with it, the policy that samples is not the one evaluated.
    disable_dropout: bool = True
    # Log-probs of left-padded prompts read at positions counted from the attention mask (as sampling
    # does); trl passes no position ids, so GPT-2's learned positions were shifted by the padding.
    position_ids: str = "from attention mask"

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": "grpo (trl GRPOTrainer)", **asdict(self)}


def quiet_libraries() -> None:
    """Silence progress bars and advice that the libraries print on every call."""
    import warnings

    import datasets
    import transformers

    # Deprecation notices raised inside transformers/trl themselves, not by mobench's calls.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|trl|peft)\.")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(transformers|trl|peft)\.")
    datasets.disable_progress_bars()
    os.environ.setdefault("TQDM_DISABLE", "1")  # trl's DPO reference pass reads this
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("trl").setLevel(logging.ERROR)


def bf16_available() -> bool:
    """A GPU that computes in bf16 (Ampere or newer); V100s and T4s do not."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def fp32_master_weights(model: Any) -> Any:
    """Train in fp32 (bf16 only as autocast): AdamW steps of ~1e-5 are below one bf16 ulp of most
    weights, so a model held in bf16 would silently lose most of its updates."""
    import torch

    if any(p.dtype != torch.float32 for p in model.parameters()):
        model.float()
    return model


def _common_args(seed: int, output_dir: str, checkpointing: bool = False) -> dict[str, Any]:
    """Trainer arguments every step shares. `checkpointing` recomputes activations in the backward pass
    (a 7B model's activations at batch 32 do not fit one GPU); it changes memory, not results."""
    import torch

    gpu = torch.cuda.is_available()
    # bf16 autocast on a GPU that has it; fp32 on the CPU (trl's bf16 default fails or crawls there).
    return dict(output_dir=output_dir, use_cpu=not gpu, bf16=bf16_available(), report_to=[], save_strategy="no",
                seed=seed, data_seed=seed, disable_tqdm=True, dataloader_num_workers=0,
                activation_checkpointing=checkpointing, lr_scheduler_type="constant")


def merge_adapters_into(model: Any, peft_model: Any) -> None:
    """Fold trained LoRA adapters (θ + B·A·scale) into `model`, which peft wrapped in place."""
    merged = peft_model.merge_and_unload()
    if merged is not model:  # peft injects its layers into `model` itself; copy the weights back if it did not
        model.load_state_dict(merged.state_dict())


def run_sft(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], settings: SFTSettings,
            seed: int, eval_pairs: Sequence[tuple[str, str]] = (), lora_rank: int = 0,
            checkpointing: bool = False) -> dict[str, Any]:
    """Fine-tune `model` in place on (prompt, response) pairs, loss on the response only. With
    `lora_rank`, train LoRA adapters of that rank (paper Table 1 for Llama-2-7B) and merge them in."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    quiet_libraries()

    def rows(items: Sequence[tuple[str, str]]) -> Any:
        return Dataset.from_list([{"prompt": p, "completion": r} for p, r in items])

    with tempfile.TemporaryDirectory() as output_dir:
        args = SFTConfig(**{**_common_args(seed, output_dir, checkpointing), "lr_scheduler_type": "cosine"},
                         max_steps=settings.steps, per_device_train_batch_size=settings.batch_size,
                         per_device_eval_batch_size=settings.batch_size,
                         learning_rate=settings.learning_rate, warmup_steps=settings.warmup_steps,
                         max_length=settings.max_length, completion_only_loss=True,
                         logging_steps=max(1, settings.steps // 10))
        from mobench.lora import lora_config

        peft_config = lora_config(lora_rank, model.config.model_type) if lora_rank else None
        trainer = SFTTrainer(model=fp32_master_weights(model), args=args, train_dataset=rows(pairs),
                             eval_dataset=rows(eval_pairs) if eval_pairs else None, processing_class=tokenizer,
                             peft_config=peft_config)
        with contextlib.redirect_stdout(io.StringIO()):
            trainer.train()
            evaluation = trainer.evaluate() if eval_pairs else {}
        if lora_rank:
            merge_adapters_into(model, trainer.model)
    curve = [{"step": h["step"], "loss": round(h["loss"], 4)} for h in trainer.state.log_history if "loss" in h]
    return {"settings": settings.to_dict(), "curve": curve, "lora_rank": lora_rank,
            "validation_loss": round(evaluation["eval_loss"], 4) if evaluation else None}


def positions_from_mask(model: Any) -> None:
    """Make every absolute-position backbone in `model` (GPT-2's `wpe`) number a left-padded row's
    tokens from its attention mask when the caller passes no position ids, as generation does.

    trl's GRPO scores the policy and the reference with input ids and a mask only; GPT-2 then counts
    positions from the padding, so the shorter prompts of a batch were scored (and trained) at other
    learned positions than they were sampled at. Rotary models (Llama, SmolLM2) are unaffected."""
    from mobench.decoding import mask_positions

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        mask = kwargs.get("attention_mask")
        if kwargs.get("position_ids") is None and mask is not None and mask.dim() == 2 \
                and kwargs.get("past_key_values") is None:
            kwargs["position_ids"] = mask_positions(mask)
        return args, kwargs

    for module in model.modules():
        if hasattr(module, "wpe") and not getattr(module, "_mobench_positions", False):
            module.register_forward_pre_hook(hook, with_kwargs=True)
            module._mobench_positions = True


def run_grpo(init_dir: Path, tokenizer: Any, prompts: Sequence[str], reward_funcs: Sequence[RewardFunc],
             weights: Sequence[float], settings: RLSettings, steps: int, seed: int,
             extra_columns: dict[str, list[Any]] | None = None,
             peft_config: Any | None = None, checkpointing: bool = False) -> tuple[Any, dict[str, Any]]:
    """GRPO from the model saved in `init_dir` (also the KL reference); returns (model, info).

    With `peft_config`, only LoRA adapters train (the returned model is the peft model).

    Reward functions with weight 0 are left out (they would only cost judge calls).
    """
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    quiet_libraries()
    active = [(f, float(w)) for f, w in zip(reward_funcs, weights) if float(w) != 0.0]
    if not active:
        raise ValueError("reward weights are all zero")
    columns = {"prompt": list(prompts), **(extra_columns or {})}
    dataset = Dataset.from_dict(columns)
    with tempfile.TemporaryDirectory() as output_dir:
        args = GRPOConfig(**_common_args(seed, output_dir, checkpointing), max_steps=steps,
                          per_device_train_batch_size=settings.prompts_per_step * settings.generations,
                          num_generations=settings.generations,
                          max_completion_length=settings.max_completion_length,
                          learning_rate=settings.learning_rate, beta=settings.kl_beta,
                          temperature=settings.temperature, top_k=settings.top_k, top_p=1.0,
                          reward_weights=[w for _, w in active],
                          multi_objective_aggregation=settings.aggregation, loss_type=settings.loss_type,
                          disable_dropout=settings.disable_dropout,
                          logging_steps=max(1, steps // 10))
        trainer = GRPOTrainer(model=str(init_dir), reward_funcs=[f for f, _ in active], args=args,
                              train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
        for model in (trainer.model, getattr(trainer, "ref_model", None)):
            if model is not None:
                positions_from_mask(model)
        with contextlib.redirect_stdout(io.StringIO()):
            trainer.train()
    keys = ("kl", "completions/mean_length", "reward") + tuple(
        f"rewards/{f.__name__}/mean" for f, _ in active)
    curve = [{"step": h["step"], **{k: round(float(h[k]), 4) for k in keys if k in h}}
             for h in trainer.state.log_history if "reward" in h]
    model = trainer.model
    model.eval()
    return model, {"settings": settings.to_dict(), "steps": steps, "weights": list(weights), "curve": curve}


@dataclass(frozen=True)
class DPOSettings:
    steps: int = 100
    batch_size: int = 16  # preference pairs per step
    learning_rate: float = 1e-4  # 5e-4 collapsed tiny policies into rare-token strings (methods/modpo.py)
    beta: float = 0.1
    max_length: int = 128

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": "modpo (trl DPOTrainer; the margin shifts the precomputed reference log-probs)",
                **asdict(self)}


def margin_dpo_trainer() -> type:
    """trl's DPOTrainer with a per-pair margin (MODPO, Zhou et al. 2024).

    MODPO's loss is −log σ((1/w₀)[β(Δ_w − Δ_l) − m]) with Δ = log π_θ − log π_ref and
    m = Σ_{k≥1} w_k (r_k(y_w) − r_k(y_l)). trl's sigmoid loss with β' = β/w₀ computes
    −log σ(β'[(log π_θ(y_w) − ref_w) − (log π_θ(y_l) − ref_l)]); shifting the precomputed
    ref_w by m/β makes the two equal. So the subclass only adds the shift after trl has computed
    the reference log-probs, and keeps every other part of trl's trainer.
    """
    import torch
    from trl import DPOTrainer

    class MarginDPOTrainer(DPOTrainer):
        """Reads each pair's shift from its `margin_shift` column, which travels with the row through
        trl's tokenisation and its filtering of over-long prompts (so shifts never misalign)."""

        def _precompute_ref_logps(self, dataset: Any, name: str, batch_size: int) -> Any:
            out = super()._precompute_ref_logps(dataset, name, batch_size)
            if "margin_shift" not in out.column_names:
                return out
            shifted = (torch.tensor(out["ref_chosen_logps"], dtype=torch.float64)
                       + torch.tensor(out["margin_shift"], dtype=torch.float64)).tolist()
            return out.remove_columns("ref_chosen_logps").add_column("ref_chosen_logps", shifted)

    return MarginDPOTrainer


def run_modpo(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], main_weight: float,
              settings: DPOSettings, seed: int, ref_model: Any | None = None,
              train: bool = True, lora_rank: int = 0, checkpointing: bool = False) -> tuple[Any, dict[str, Any]]:
    """MODPO in place on `rows` ({prompt, chosen, rejected, margin}; margin = Σ_k w_k Δr_k).

    `main_weight` is w₀ (> 0); with every margin 0 and w₀ = 1 this is plain DPO with β.
    Returns (trainer, info); `train=False` only builds the trainer (tests compute its loss).
    With `lora_rank`, LoRA adapters train and are merged into `model` afterwards; the reference is then
    the model with its adapters off, so `ref_model` is not used (no second copy of the weights)."""
    from datasets import Dataset
    from trl import DPOConfig

    from mobench.lora import lora_config

    quiet_libraries()
    if not main_weight > 0:
        raise ValueError(f"MODPO needs a positive main-objective weight, got {main_weight}")
    import shutil

    from mobench.errors import MobenchError

    dataset = Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
                                  "margin_shift": r["margin"] / settings.beta} for r in rows])
    output_dir = tempfile.mkdtemp(prefix="mobench-dpo-")
    try:
        args = DPOConfig(**_common_args(seed, output_dir, checkpointing), max_steps=settings.steps,
                         per_device_train_batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                         beta=settings.beta / main_weight, max_length=settings.max_length,
                         precompute_ref_log_probs=True, logging_steps=max(1, settings.steps // 10))
        # The reference in fp32 too, so the policy's and the reference's log-probs start out equal.
        reference = None if lora_rank or ref_model is None else fp32_master_weights(ref_model)
        trainer = margin_dpo_trainer()(model=fp32_master_weights(model), ref_model=reference,
                                       args=args, train_dataset=dataset, processing_class=tokenizer,
                                       peft_config=lora_config(lora_rank, model.config.model_type) if lora_rank
                                       else None)
        if len(trainer.train_dataset) == 0:
            raise MobenchError(f"MODPO: every one of the {len(rows)} pairs has a prompt of >= {settings.max_length} "
                               "tokens, which trl drops; raise max_length")
        if not train:
            return trainer, {}
        with contextlib.redirect_stdout(io.StringIO()):
            trainer.train()
        if lora_rank:
            merge_adapters_into(model, trainer.model)
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
    curve = [{"step": h["step"], "loss": round(h["loss"], 4),
              **({"margin": round(h["rewards/margins"], 4)} if "rewards/margins" in h else {})}
             for h in trainer.state.log_history if "loss" in h]
    model.eval()
    return trainer, {"settings": settings.to_dict(), "main_weight": main_weight, "lora_rank": lora_rank,
                     "n_pairs": len(rows),
                     "n_pairs_trained": len(trainer.train_dataset), "curve": curve}

"""LoRA policies: GRPO on adapters (peft), and merging adapters through their ΔW = B·A products.

Merging the A and B factors separately is wrong (Σλ_i B_i · Σλ_i A_i ≠ Σλ_i B_i A_i); mobench merges
the products: θ = θ_base + Σ_i λ_i ΔW_i, which holds for negative λ and extrapolation too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mobench.training import RLSettings, RewardFunc

PREFIX = "base_model.model."


def lora_config(rank: int, model_type: str = "gpt2", modules_to_save: Sequence[str] | None = None) -> Any:
    """LoRA of rank r with α = 2r (the paper's r 64 / α 128) on every attention and MLP projection;
    `modules_to_save` train in full beside the adapters (a value model's new head)."""
    from peft import LoraConfig

    extra = {"modules_to_save": list(modules_to_save)} if modules_to_save else {}
    if model_type == "gpt2":
        # GPT-2's attention and MLP projections are Conv1D layers (weights stored transposed).
        return LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=["c_attn", "c_proj", "c_fc"],
                          fan_in_fan_out=True, task_type="CAUSAL_LM", **extra)
    # Llama-style models: peft's "all-linear" takes every nn.Linear except the output head.
    return LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM", **extra)


def lora_deltas(adapter_state: Mapping[str, Any], scaling: float, fan_in_fan_out: bool) -> dict[str, Any]:
    """{base weight name: ΔW} from a peft adapter state dict (`…lora_A.weight`, `…lora_B.weight`)."""
    deltas: dict[str, Any] = {}
    for key, a in adapter_state.items():
        if ".lora_A." not in key:
            continue
        b = adapter_state[key.replace(".lora_A.", ".lora_B.")]
        # fp32 on the CPU, where the merges happen (peft leaves the adapters on the training device).
        a, b = a.detach().float().cpu(), b.detach().float().cpu()
        module = key.split(".lora_A.")[0]
        module = module[len(PREFIX):] if module.startswith(PREFIX) else module
        delta = (b @ a) * scaling
        deltas[f"{module}.weight"] = delta.T if fan_in_fan_out else delta
    return deltas


def merge_lora(base: Mapping[str, Any], deltas: Sequence[Mapping[str, Any]],
               coefficients: Sequence[float]) -> dict[str, Any]:
    """θ_base + Σ λ_i ΔW_i over the weights the adapters touch; the rest is θ_base."""
    if len(deltas) != len(coefficients):
        raise ValueError(f"{len(deltas)} adapters but {len(coefficients)} coefficients")
    merged = {k: v.clone() if hasattr(v, "clone") else v.copy() for k, v in base.items()}
    for delta, coefficient in zip(deltas, coefficients):
        for key, value in delta.items():
            if key not in merged:
                raise ValueError(f"adapter touches {key!r}, which the base model does not have")
            merged[key] = merged[key] + float(coefficient) * value
    return merged


def adapter_deltas(peft_model: Any) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    config = peft_model.peft_config["default"]
    state = get_peft_model_state_dict(peft_model)
    return lora_deltas(state, config.lora_alpha / config.r, config.fan_in_fan_out)


def grpo_lora(init_dir: Path, tokenizer: Any, prompts: Sequence[str], reward_funcs: Sequence[RewardFunc],
              weights: Sequence[float], settings: RLSettings, steps: int, seed: int, rank: int,
              extra_columns: dict[str, list[Any]] | None = None,
              checkpointing: bool = False) -> tuple[Any, dict[str, Any]]:
    """GRPO on LoRA adapters of the model in `init_dir`; returns the model with θ + ΔW, and info.

    The returned model has the dtype `init_dir` was saved in: fp32 for the tiny policies (exact), bf16
    for a hub policy on a bf16 GPU, where θ + ΔW rounds to bf16 steps (~1e-4 at weights of ~0.02) as
    the bf16 model that decodes does; fp32 states would double the CPU memory of every merge."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from mobench.training import run_grpo

    model_type = AutoConfig.from_pretrained(init_dir).model_type
    trained, info = run_grpo(init_dir, tokenizer, prompts, reward_funcs, weights, settings, steps, seed,
                             extra_columns=extra_columns, peft_config=lora_config(rank, model_type),
                             checkpointing=checkpointing)
    deltas = adapter_deltas(trained)
    model = AutoModelForCausalLM.from_pretrained(init_dir)
    model.load_state_dict(merge_lora(model.state_dict(), [deltas], [1.0]))
    model.eval()
    info["lora"] = {"rank": rank, "alpha": 2 * rank, "adapted_weights": len(deltas)}
    return model, info

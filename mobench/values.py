"""Explicit value models (paper 3.4.1): a causal LM whose vocabulary-sized head gives V(x, y<t)[v]
for every candidate next token v in one pass.

One value model per objective, initialised from the SFT policy and trained on samples of the SFT
policy scored by the objective's judge, with the paper's Eq. 16 loss averaged over reply tokens:

    ½ (V(x, y<t)[y_t] − r(x, y))²

The head is re-initialised to zero and the model predicts r − r̄ (r̄: the training mean, kept in the
state as `value_offset` and added back at decoding). Why not keep the SFT head: Eq. 16 only trains the
entries of tokens that were sampled, so every other entry would keep its SFT logit (values of ±10 on
a [0, 1] reward scale) and swamp the guidance; with a zero head, a token the model never learned
about is neutral (r̄). The transformer body starts from the SFT weights, as the paper's does.

Because the offset lives in the state, merging value models (Eq. 24) merges offsets too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mobench.errors import MobenchError

OFFSET_KEY = "value_offset"


@dataclass(frozen=True)
class ValueSettings:
    samples_per_prompt: int = 4  # SFT samples per RL-split prompt
    # 3 epochs at 1e-4: on hh2-mini's data, 4 epochs at 1e-3 (or 3e-4) overfit (held-out MSE at or above the
    # constant predictor's, 0.96-1.04 of it), 3 at 1e-4 gave 0.86-0.89 with a higher rank correlation.
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-4
    holdout: float = 0.2  # share of prompts held out for the manifest's validation figures

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": "value regression, paper Eq. 16 (token mean)", **asdict(self)}


def value_skeleton(policy: Any) -> Any:
    """A copy of `policy` with its own zero-initialised head (untied from the embeddings)."""
    import copy

    import torch

    model = copy.deepcopy(policy)
    model.config.tie_word_embeddings = False
    head = model.get_output_embeddings()
    head.weight = torch.nn.Parameter(torch.zeros_like(head.weight))
    if getattr(head, "bias", None) is not None:  # a head with a bias would start from the SFT's per-token bias
        head.bias = torch.nn.Parameter(torch.zeros_like(head.bias))
    return model


def split_state(state: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """(model weights, value offset) of a value state."""
    weights = {k: v for k, v in state.items() if k != OFFSET_KEY}
    return weights, float(state[OFFSET_KEY])


def _batches(n: int, size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i:i + size] for i in range(0, n, size)]


def _collate(prompt_ids: Sequence[list[int]], reply_ids: Sequence[list[int]], pad: int) -> dict[str, Any]:
    """Right-padded prompt+reply rows; `target_pos[j]` predicts `target_tok[j]` (the reply tokens)."""
    import torch

    rows = [list(p) + list(r) for p, r in zip(prompt_ids, reply_ids)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    row_of, pos, tok, last = [], [], [], []
    for i, (p, r) in enumerate(zip(prompt_ids, reply_ids)):
        ids[i, :len(p) + len(r)] = torch.tensor(list(p) + list(r))
        mask[i, :len(p) + len(r)] = 1
        for t, token in enumerate(r):
            row_of.append(i)
            pos.append(len(p) + t - 1)
            tok.append(token)
        last.append(len(row_of) - 1)
    return {"ids": ids, "mask": mask, "row": torch.tensor(row_of), "pos": torch.tensor(pos),
            "tok": torch.tensor(tok), "last": torch.tensor(last)}


def _predict(model: Any, batch: dict[str, Any]) -> Any:
    device = next(model.parameters()).device
    logits = model(input_ids=batch["ids"].to(device), attention_mask=batch["mask"].to(device)).logits
    return logits[batch["row"].to(device), batch["pos"].to(device), batch["tok"].to(device)].float()


def train_value_model(policy: Any, prompt_ids: Sequence[list[int]], reply_ids: Sequence[list[int]],
                      rewards: Sequence[float], groups: Sequence[int], pad: int, settings: ValueSettings,
                      seed: int, lora_rank: int = 0, checkpointing: bool = False,
                      bf16_autocast: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one value model; returns (state with `value_offset`, manifest info with held-out figures).

    `groups` (one per sample, e.g. the prompt index) decide the held-out split, so no prompt is on
    both sides. Empty replies carry no token to train on and are skipped. With `lora_rank`, the body
    trains LoRA adapters (merged in afterwards) and the new head trains in full: the paper's 7B value
    models cannot train every weight on one GPU. `checkpointing` recomputes activations in the backward
    pass (memory, not results); `bf16_autocast` runs the forward pass under bf16 autocast on a bf16 GPU
    (paper tasks, whose policies are bf16 there; the mini tasks keep fp32)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    keep = [i for i, r in enumerate(reply_ids) if len(r) > 0]
    unique_groups = np.unique(np.asarray(groups)[keep])
    if len(unique_groups) < 2:
        raise MobenchError(f"value model: {len(unique_groups)} prompt(s) with a non-empty sample; need at least 2 "
                           "(one to train on, one to hold out)")
    n_held = min(len(unique_groups) - 1, max(1, int(len(unique_groups) * settings.holdout))) if settings.holdout else 0
    held_groups = set(rng.choice(unique_groups, size=n_held, replace=False).tolist()) if n_held else set()
    train = [i for i in keep if groups[i] not in held_groups]
    held = [i for i in keep if groups[i] in held_groups]
    r = np.asarray(rewards, dtype=np.float64)
    offset = float(r[train].mean())
    from mobench.text_task import resolve_device

    # On the GPU when there is one, and in fp32 whatever the policy's dtype: AdamW steps of lr ~1e-4 are
    # about one bf16 ulp, so a bf16 value model would lose most of its updates.
    from mobench.training import bf16_available

    model = value_skeleton(policy).to(device=resolve_device(), dtype=torch.float32)
    if checkpointing:
        model.activation_checkpointing_enable()
        model.enable_input_require_grads()  # a frozen embedding (LoRA) would otherwise cut the gradient
    if lora_rank:
        model = _with_adapters(model, lora_rank)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16_autocast and bf16_available())
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.0)
    started = time.perf_counter()
    curve = []
    for epoch in range(settings.epochs):
        losses = []
        for chunk in _batches(len(train), settings.batch_size, rng):
            rows = [train[j] for j in chunk]
            batch = _collate([prompt_ids[i] for i in rows], [reply_ids[i] for i in rows], pad)
            target = torch.tensor(r[rows] - offset, dtype=torch.float32)[batch["row"]].to(next(model.parameters()).device)
            with autocast:
                prediction = _predict(model, batch)
            loss = 0.5 * ((prediction - target) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curve.append({"epoch": epoch + 1, "train_loss": round(float(np.mean(losses)), 6)})
    if lora_rank:
        model = model.merge_and_unload()
    model.eval()
    info = {"wall_s": round(time.perf_counter() - started, 3), "n_train": len(train), "n_heldout": len(held),
            "offset": round(offset, 6), "curve": curve, "lora_rank": lora_rank,
            "trained_parameters": sum(p.numel() for p in trainable),
            "heldout": heldout_figures(model, offset, prompt_ids, reply_ids, r, held, pad, settings.batch_size)}
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    state[OFFSET_KEY] = torch.tensor(offset)
    return state, info


def _with_adapters(model: Any, rank: int) -> Any:
    """`model` (a value skeleton) as a peft model: LoRA adapters on the body, the head trained in full."""
    from peft import get_peft_model

    from mobench.lora import lora_config

    head = model.get_output_embeddings()
    head_name = next(name for name, module in model.named_modules() if module is head)
    return get_peft_model(model, lora_config(rank, model.config.model_type, modules_to_save=[head_name]))


def heldout_figures(model: Any, offset: float, prompt_ids: Sequence[list[int]], reply_ids: Sequence[list[int]],
                    rewards: np.ndarray, rows: list[int], pad: int, batch_size: int) -> dict[str, float]:
    """Token-level MSE of V(x, y<t)[y_t] against r, the same for a constant predictor (the training
    mean), and the Spearman correlation of the final token's value with r."""
    import torch
    from scipy.stats import spearmanr

    if not rows:
        return {}
    token_err, const_err, final_pred, final_true = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            batch = _collate([prompt_ids[i] for i in chunk], [reply_ids[i] for i in chunk], pad)
            pred = (_predict(model, batch) + offset).cpu().numpy()
            true = rewards[chunk][batch["row"].numpy()]
            token_err += list((pred - true) ** 2)
            const_err += list((offset - true) ** 2)
            final_pred += list(pred[batch["last"].numpy()])
            final_true += list(rewards[chunk])
    rho = spearmanr(final_pred, final_true).statistic if len(set(final_true)) > 1 else float("nan")
    return {"mse": round(float(np.mean(token_err)), 6), "constant_mse": round(float(np.mean(const_err)), 6),
            "final_spearman": round(float(rho), 4), "n": len(rows)}

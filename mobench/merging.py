"""Weight-space merging in task-arithmetic form: θ = θ_ref + Σ λ_i (θ_i − θ_ref).

With Σ λ_i = 1 this equals Σ λ_i θ_i; it also covers negative coefficients and extrapolation
away from the reference (Bone Soup), and works on any mapping of arrays or tensors (numpy, torch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def task_arithmetic(reference: Mapping[str, Any] | None, models: Sequence[Mapping[str, Any]],
                    coefficients: Sequence[float]) -> dict[str, Any]:
    """Merge `models` with `coefficients` relative to `reference` (None: plain Σ λ_i θ_i)."""
    if len(models) != len(coefficients):
        raise ValueError(f"{len(models)} models but {len(coefficients)} coefficients")
    if not models:
        raise ValueError("nothing to merge")
    keys = list(models[0].keys())
    for index, model in enumerate(models[1:], start=2):
        if list(model.keys()) != keys:
            missing = set(keys) ^ set(model.keys())
            raise ValueError(f"model {index} has different parameters than model 1: {sorted(missing)[:5]}")
    merged: dict[str, Any] = {}
    for key in keys:
        low = _low_precision(models[0][key])
        wide = (lambda x: x.float()) if low is not None else (lambda x: x)
        if reference is None:
            value = sum(float(c) * wide(model[key]) for c, model in zip(coefficients, models))
        else:
            base = wide(reference[key])
            value = base + sum(float(c) * (wide(model[key]) - base) for c, model in zip(coefficients, models))
        merged[key] = value if low is None else value.to(low)
    return merged


def _low_precision(value: Any) -> Any:
    """The dtype of a bf16/fp16 tensor (else None): such weights are merged in fp32 and rounded once,
    because two fine-tuned models differ by about one bf16 step, which rounding each term would swamp."""
    dtype = getattr(value, "dtype", None)
    return dtype if str(dtype) in ("torch.bfloat16", "torch.float16") else None

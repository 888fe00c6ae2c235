"""Per-token decoding cost of plain decoding, MOD and the four MAGE variants, in one run.

Models have random weights (timing does not depend on training) and every configuration decodes
exactly `--new-tokens` tokens (no end-of-sequence token can be drawn), so the figures are per token.
Two objectives: MOD mixes 2 experts; MAGE-E ensembles 2 value models, MAGE-E-M runs 1 merged one;
MAGE-I runs 2 π* and π_ref, MAGE-I-M one merged π* and π_ref. With the Bone Soup guide merge (the
default), MAGE-I-M's π* is the base merge itself, so it runs 2 models per token; `mage-i-m-naive`
(naive π* merge, a separate model) is the 3-model case.

    python bench/decoding.py                               # tiny GPT-2 on the CPU
    python bench/decoding.py --shape llama-7b --device cuda --batch 1 16 --cache static

Writes bench/results/decoding-<shape>-<device>.json (with versions) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, Any]] = {
    # The mini tasks' policy (mobench.tinylm.TinyLMSpec).
    "tiny": {"family": "gpt2", "vocab_size": 2048, "n_layer": 2, "n_embd": 128, "n_head": 4, "n_positions": 256},
    # Llama-2-7B's shape (random weights).
    "llama-7b": {"family": "llama", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
                 "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                 "max_position_embeddings": 4096},
    # A small Llama for checking the Llama path on a CPU.
    "llama-micro": {"family": "llama", "vocab_size": 2048, "hidden_size": 128, "intermediate_size": 256,
                    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
                    "max_position_embeddings": 512},
}

# method -> (base models, explicit value models, implicit π* models, uses π_ref)
LAYOUT = {
    "plain": (1, 0, 0, False),
    "mod": (2, 0, 0, False),
    "mage-e": (1, 2, 0, False),
    "mage-e-m": (1, 1, 0, False),
    "mage-i": (1, 0, 2, True),
    "mage-i-m": (1, 0, 0, True),  # π* = the base merge (Bone Soup guide merge): runs once
    "mage-i-m-naive": (1, 0, 1, True),
}


class _Tokenizer:
    """What the engine asks of a tokenizer, with an end token that can never be drawn."""

    padding_side = "left"

    def __init__(self, vocab: int) -> None:
        self.vocab, self.pad_token_id, self.eos_token_id = vocab, 0, -1

    def __len__(self) -> int:
        return self.vocab


def build(shape: dict[str, Any], device: str, dtype: Any, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    family = shape["family"]
    config_args = {k: v for k, v in shape.items() if k != "family"}
    with torch.device(device):
        if family == "gpt2":
            from transformers import GPT2Config, GPT2LMHeadModel

            model = GPT2LMHeadModel(GPT2Config(**config_args))
        else:
            from transformers import LlamaConfig, LlamaForCausalLM

            model = LlamaForCausalLM(LlamaConfig(**config_args))
    return model.to(dtype).eval()


def plan_for(method: str, make: Any) -> Any:
    from mobench.decoding import Plan, Term

    n_base, n_values, n_star, uses_ref = LAYOUT[method]
    base_models = [make() for _ in range(n_base)]
    base = [Term(m, 1.0 / n_base) for m in base_models]
    guides = [Term(make(), 0.5, "values") for _ in range(n_values)]
    guides += [Term(make(), 0.5) for _ in range(n_star)]
    if method == "mage-i-m":
        guides.append(Term(base_models[0], 1.0))
    if uses_ref:
        guides.append(Term(make(), -1.0))
    return Plan(base=base, guides=guides)


def time_method(method: str, shape: dict[str, Any], args: argparse.Namespace, batch: int) -> dict[str, Any]:
    import torch

    from mobench.decoding import DecodeConfig, Decoder

    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    counter = iter(range(100))
    plan = plan_for(method, lambda: build(shape, args.device, dtype, next(counter)))
    n_models = len(plan.models())
    tokenizer = _Tokenizer(shape["vocab_size"])
    config = DecodeConfig(mode=args.mode, max_new_tokens=args.new_tokens, batch_size=batch, cache=args.cache,
                          compile=args.compile)
    decoder = Decoder(plan, tokenizer, config, seed=0)
    generator = torch.Generator(device=args.device).manual_seed(0)
    ids = torch.randint(1, shape["vocab_size"], (batch, args.prompt_tokens), device=args.device)
    mask = torch.ones_like(ids)

    for _ in range(args.warmup):
        _timed(decoder, ids, mask, generator, args.device)
    # Per token: subtract the prompt-only cost, measured with one new token.
    totals = sorted(_timed(decoder, ids, mask, generator, args.device) for _ in range(args.repeats))
    one = DecodeConfig(mode=args.mode, max_new_tokens=1, batch_size=batch, cache=args.cache, compile=args.compile)
    prefill_decoder = Decoder(plan, tokenizer, one, seed=0)
    prefill = sorted(_timed(prefill_decoder, ids, mask, generator, args.device) for _ in range(args.repeats))
    total, first = totals[len(totals) // 2], prefill[len(prefill) // 2]
    per_token = (total - first) / max(1, args.new_tokens - 1)
    del plan, decoder, prefill_decoder
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"method": method, "batch": batch, "models_per_token": n_models, "ms_per_token": round(per_token * 1e3, 3),
            "total_s": round(total, 4), "prefill_s": round(first, 4)}


def _timed(decoder: Any, ids: Any, mask: Any, generator: Any, device: str) -> float:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    decoder.generate_ids(ids, mask, generator)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per batch size: each merged variant's per-token time over its ensemble's (and over the guidance
    overhead alone, the time above plain decoding)."""
    by = {(r["method"], r["batch"]): r["ms_per_token"] for r in rows}
    ratios = []
    for batch in dict.fromkeys(r["batch"] for r in rows):
        plain = by.get(("plain", batch))
        for merged, ensemble in (("mage-e-m", "mage-e"), ("mage-i-m", "mage-i"), ("mage-i-m-naive", "mage-i")):
            if (merged, batch) in by and (ensemble, batch) in by:
                row = {"batch": batch, "merged": merged, "ensemble": ensemble,
                       "total_ratio": round(by[(merged, batch)] / by[(ensemble, batch)], 3)}
                if plain is not None:
                    row["guidance_ratio"] = round((by[(merged, batch)] - plain) / max(1e-9, by[(ensemble, batch)] - plain), 3)
                ratios.append(row)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default=None, help="default: bf16 on cuda, else fp32")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--methods", nargs="+", default=list(LAYOUT), choices=list(LAYOUT))
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--mode", choices=["greedy", "sample"], default="greedy")
    parser.add_argument("--cache", choices=["dynamic", "static"], default="dynamic")
    parser.add_argument("--compile", action="store_true", help="torch.compile the forwards (GPU, static cache)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    from mobench.versions import package_versions

    torch.set_num_threads(torch.get_num_threads())
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    out = args.out or Path(__file__).parent / "results" / f"decoding-{args.shape}-{args.device.split(':')[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for batch in args.batch:
        for method in args.methods:
            rows.append(time_method(method, SHAPES[args.shape], args, batch))
            # Written after every row, so a run stopped at a time limit keeps what it measured.
            result = {"shape": args.shape, "device": args.device, "device_name": device_name, "dtype": args.dtype,
                      "cache": args.cache, "compile": args.compile, "mode": args.mode,
                      "new_tokens": args.new_tokens, "prompt_tokens": args.prompt_tokens,
                      "threads": torch.get_num_threads(), "rows": rows, "merged_vs_ensemble": _ratios(rows),
                      "complete": len(rows) == len(args.batch) * len(args.methods),
                      "versions": package_versions(("torch", "transformers"))}
            partial = out.with_suffix(".partial")
            partial.write_text(json.dumps(result, indent=2) + "\n")
            os.replace(partial, out)  # atomic: a kill mid-write keeps the previous rows
    ratios = result["merged_vs_ensemble"]
    print(f"{'method':16} {'batch':>5} {'models':>6} {'ms/token':>9}")
    for r in rows:
        print(f"{r['method']:16} {r['batch']:>5} {r['models_per_token']:>6} {r['ms_per_token']:>9.3f}")
    for r in ratios:
        print(f"batch {r['batch']}: {r['merged']} / {r['ensemble']} per token = {r['total_ratio']}"
              + (f" (guidance overhead only: {r['guidance_ratio']})" if "guidance_ratio" in r else ""))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

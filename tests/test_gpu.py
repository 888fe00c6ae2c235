"""The decoding engine on a CUDA device (skipped without one; CI has none).

`bash bench/gpu_check.sh` runs these on a lent GPU: the same checks as test_decoding.py's CPU ones
(cached greedy equals a no-cache reference, static caches equal dynamic ones), plus what only a GPU
path has: bf16 models, torch.compile over static caches, and a sampling generator on the wrong device.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)

from test_decoding import engine_ids, naive_greedy  # noqa: E402  (the CPU tests' helpers, on CUDA)

from mobench.decoding import DecodeConfig, Decoder, Plan, Term  # noqa: E402
from mobench.errors import MobenchError  # noqa: E402

CUDA = torch.device("cuda")
CORPUS = ["the cat sat on the mat and looked at the dog", "a dog ran in the park with a red ball",
          "what is the capital of france? paris is the capital", "tell me a joke about cats and dogs"] * 25
PROMPTS = ["the cat", "what is the capital of", "a dog ran in the park with", "tell"]


@pytest.fixture(scope="module")
def tiny() -> dict[str, Any]:
    from mobench.tinylm import TinyLMSpec, build_model, train_tokenizer

    tokenizer = train_tokenizer(CORPUS, 300)
    spec = TinyLMSpec(vocab_size=300, n_layer=2, n_embd=64, n_head=2, n_positions=64)
    models = [build_model(spec, tokenizer, seed).to(CUDA).eval() for seed in range(3)]
    return {"tokenizer": tokenizer, "models": models}


def _plans(tiny: dict[str, Any]) -> dict[str, Plan]:
    a, b, ref = tiny["models"]
    return {"plain": Plan(base=[Term(a, 1.0)]),
            "mod": Plan(base=[Term(a, 0.3), Term(b, 0.7)]),
            "explicit": Plan(base=[Term(a, 1.0)], guides=[Term(b, 2.0, "values", offset=0.1)]),
            "implicit": Plan(base=[Term(a, 1.0)], guides=[Term(b, 1.5), Term(ref, -1.5)])}


def _engine(plan: Plan, tok: Any, config: DecodeConfig, seed: int = 0) -> list[list[int]]:
    return engine_ids(plan, tok, PROMPTS, config, seed, device="cuda")


@pytest.mark.parametrize("name", ["plain", "mod", "explicit", "implicit"])
def test_cached_greedy_equals_the_naive_reference_on_cuda(tiny: dict[str, Any], name: str) -> None:
    plan = _plans(tiny)[name]
    got = _engine(plan, tiny["tokenizer"], DecodeConfig(mode="greedy", max_new_tokens=12))
    assert got == naive_greedy(plan, tiny["tokenizer"], PROMPTS, 12, device="cuda")


@pytest.mark.parametrize("mode", ["greedy", "sample", "beam"])
def test_static_cache_equals_dynamic_on_cuda(tiny: dict[str, Any], mode: str) -> None:
    plan = _plans(tiny)["implicit"]
    args = dict(mode=mode, max_new_tokens=10, beam_width=2, expansion=2, lookahead=3)
    dynamic = _engine(plan, tiny["tokenizer"], DecodeConfig(**args), seed=2)
    assert _engine(plan, tiny["tokenizer"], DecodeConfig(cache="static", **args), seed=2) == dynamic


def test_compiled_static_decoding_equals_eager(tiny: dict[str, Any]) -> None:
    plan = _plans(tiny)["explicit"]
    eager = _engine(plan, tiny["tokenizer"], DecodeConfig(mode="greedy", max_new_tokens=10, cache="static"))
    compiled = _engine(plan, tiny["tokenizer"], DecodeConfig(mode="greedy", max_new_tokens=10, cache="static",
                                                             compile=True))
    assert compiled == eager


def test_bf16_guided_decoding_gives_real_tokens(tiny: dict[str, Any]) -> None:
    import copy

    a, b, ref = (copy.deepcopy(m).to(torch.bfloat16) for m in tiny["models"])
    tok = tiny["tokenizer"]
    plan = Plan(base=[Term(a, 1.0)], guides=[Term(b, 1.0), Term(ref, -1.0)])
    rows = _engine(plan, tok, DecodeConfig(mode="sample", max_new_tokens=12), seed=1)
    assert len(rows) == len(PROMPTS) and all(rows)
    assert all(0 <= t < len(tok) for row in rows for t in row)
    assert _engine(plan, tok, DecodeConfig(mode="sample", max_new_tokens=12), seed=1) == rows  # seeded on cuda


def test_a_cpu_generator_for_cuda_models_is_a_clear_error(tiny: dict[str, Any]) -> None:
    tok = tiny["tokenizer"]
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    decoder = Decoder(_plans(tiny)["plain"], tok, DecodeConfig(mode="sample", max_new_tokens=4))
    with pytest.raises(MobenchError, match="generator is on cpu"):
        decoder.generate_ids(batch["input_ids"], batch["attention_mask"], torch.Generator())


def test_generate_from_text_runs_on_the_models_device(tiny: dict[str, Any]) -> None:
    decoder = Decoder(_plans(tiny)["mod"], tiny["tokenizer"], DecodeConfig(mode="sample", max_new_tokens=6), seed=3)
    texts = decoder.generate(PROMPTS * 3)
    assert len(texts) == len(PROMPTS) * 3 and decoder.generate(PROMPTS * 3) == texts

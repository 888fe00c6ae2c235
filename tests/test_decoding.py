"""The decoding engine on tiny random GPT-2s: cache correctness, composition, selection, beams, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from mobench.decoding import DecodeConfig, Decoder, Plan, Term, check_shared_tokenizer  # noqa: E402
from mobench.errors import MobenchError  # noqa: E402

CORPUS = ["the cat sat on the mat and looked at the dog", "a dog ran in the park with a red ball",
          "what is the capital of france? paris is the capital", "tell me a joke about cats and dogs",
          "i like to read books in the morning with tea"] * 20
PROMPTS = ["the cat", "what is the capital of", "a dog ran in the park with", "tell"]


@pytest.fixture(scope="module")
def tiny() -> dict[str, Any]:
    from mobench.tinylm import TinyLMSpec, build_model, train_tokenizer

    tokenizer = train_tokenizer(CORPUS, 300)
    spec = TinyLMSpec(vocab_size=300, n_layer=2, n_embd=32, n_head=2, n_positions=64)
    models = [build_model(spec, tokenizer, seed).eval() for seed in range(4)]
    value = copy.deepcopy(models[3])
    value.config.tie_word_embeddings = False
    value.lm_head.weight = torch.nn.Parameter(torch.randn_like(value.lm_head.weight) * 0.5)
    return {"tokenizer": tokenizer, "models": models, "value": value}


def naive_greedy(plan: Plan, tokenizer: Any, prompts: list[str], max_new: int, device: str = "cpu") -> list[list[int]]:
    """Reference: one prompt at a time, no padding, no cache; the full sequence re-run every step."""
    answers = []
    for text in prompts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"].to(device)
        out: list[int] = []
        for _ in range(max_new):
            with torch.no_grad():
                full = {id(m): m(input_ids=ids).logits[:, -1, :len(tokenizer)] for m in plan.models()}
            score = sum(t.weight * torch.log_softmax(full[id(t.model)], -1) for t in plan.base)
            for t in plan.guides:
                part = torch.log_softmax(full[id(t.model)], -1) if t.output == "logprobs" \
                    else full[id(t.model)] + t.offset
                score = score + t.weight * part
            score[:, tokenizer.pad_token_id] = -float("inf")  # the engine never emits padding
            token = int(score.argmax(-1))
            out.append(token)
            if token == tokenizer.eos_token_id:
                break
            ids = torch.cat([ids, torch.tensor([[token]], device=device)], dim=1)
        answers.append(out)
    return answers


def engine_ids(plan: Plan, tokenizer: Any, prompts: list[str], config: DecodeConfig, seed: int = 0,
               device: str = "cpu") -> list[list[int]]:
    decoder = Decoder(plan, tokenizer, config, seed)
    batch = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    rows = decoder.generate_ids(batch["input_ids"], batch["attention_mask"], gen).tolist()
    out = []
    for row in rows:
        kept = []
        for token in row:
            if token == tokenizer.pad_token_id:
                break
            kept.append(token)
            if token == tokenizer.eos_token_id:
                break
        out.append(kept)
    return out


def plans(tiny: dict[str, Any]) -> dict[str, Plan]:
    a, b, ref, _ = tiny["models"]
    return {
        "plain": Plan(base=[Term(a, 1.0)]),
        "mod": Plan(base=[Term(a, 0.3), Term(b, 0.7)]),
        "explicit": Plan(base=[Term(a, 1.0)], guides=[Term(tiny["value"], 2.0, "values", offset=0.1)]),
        "implicit": Plan(base=[Term(a, 1.0)], guides=[Term(b, 1.5), Term(ref, -1.5)]),
        "shared": Plan(base=[Term(ref, 1.0)], guides=[Term(b, 0.5), Term(ref, -0.5)]),
    }


@pytest.mark.parametrize("name", ["plain", "mod", "explicit", "implicit", "shared"])
def test_cached_greedy_equals_naive_reference(tiny: dict[str, Any], name: str) -> None:
    plan = plans(tiny)[name]
    config = DecodeConfig(mode="greedy", max_new_tokens=12)
    assert engine_ids(plan, tiny["tokenizer"], PROMPTS, config) == naive_greedy(plan, tiny["tokenizer"], PROMPTS, 12)


def test_static_cache_equals_dynamic(tiny: dict[str, Any]) -> None:
    plan = plans(tiny)["implicit"]
    dynamic = engine_ids(plan, tiny["tokenizer"], PROMPTS, DecodeConfig(mode="greedy", max_new_tokens=10))
    static = engine_ids(plan, tiny["tokenizer"], PROMPTS, DecodeConfig(mode="greedy", max_new_tokens=10,
                                                                        cache="static"))
    assert static == dynamic


def test_plain_greedy_matches_transformers_generate(tiny: dict[str, Any]) -> None:
    tok, model = tiny["tokenizer"], tiny["models"][0]
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = model.generate(**batch, do_sample=False, max_new_tokens=10, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id, suppress_tokens=[tok.pad_token_id])[:, batch["input_ids"].shape[1]:]
    ours = Decoder(Plan(base=[Term(model, 1.0)]), tok, DecodeConfig(mode="greedy", max_new_tokens=10))
    got = ours.generate_ids(batch["input_ids"], batch["attention_mask"], torch.Generator())
    assert got[:, :ref.shape[1]].tolist() == ref.tolist()


def test_zero_weight_terms_drop_out(tiny: dict[str, Any]) -> None:
    """MOD at μ = e_i is expert i alone; a guide with weight 0 (γ = 0) is no guide at all."""
    a, b, ref, _ = tiny["models"]
    tok = tiny["tokenizer"]
    config = DecodeConfig(mode="sample", max_new_tokens=10)
    alone = engine_ids(Plan(base=[Term(b, 1.0)]), tok, PROMPTS, config, seed=3)
    assert engine_ids(Plan(base=[Term(a, 0.0), Term(b, 1.0)]), tok, PROMPTS, config, seed=3) == alone
    assert engine_ids(Plan(base=[Term(b, 1.0)], guides=[Term(a, 0.0), Term(ref, -0.0)]), tok, PROMPTS, config,
                      seed=3) == alone


def test_sampling_is_seeded_and_varies_with_the_seed(tiny: dict[str, Any]) -> None:
    plan, tok = plans(tiny)["explicit"], tiny["tokenizer"]
    config = DecodeConfig(mode="sample", max_new_tokens=12, top_k=0, top_p=1.0)
    first = engine_ids(plan, tok, PROMPTS * 4, config, seed=1)
    assert engine_ids(plan, tok, PROMPTS * 4, config, seed=1) == first
    assert engine_ids(plan, tok, PROMPTS * 4, config, seed=2) != first


def test_generate_keeps_the_leading_space_only_when_asked(tiny: dict[str, Any]) -> None:
    plan, tok = plans(tiny)["mod"], tiny["tokenizer"]
    decoder = Decoder(plan, tok, DecodeConfig(mode="sample", max_new_tokens=8, top_k=0, top_p=1.0), seed=4)
    raw = decoder.generate(PROMPTS * 4, strip=False)
    assert decoder.generate(PROMPTS * 4) == [text.strip() for text in raw]
    assert any(text != text.strip() for text in raw)  # the tiny vocabulary's tokens carry their spaces


def test_top_k_one_is_greedy(tiny: dict[str, Any]) -> None:
    plan, tok = plans(tiny)["mod"], tiny["tokenizer"]
    greedy = engine_ids(plan, tok, PROMPTS, DecodeConfig(mode="greedy", max_new_tokens=8))
    assert engine_ids(plan, tok, PROMPTS, DecodeConfig(mode="sample", top_k=1, max_new_tokens=8), seed=5) == greedy


def test_forward_kl_base_is_the_weighted_harmonic_mean(tiny: dict[str, Any]) -> None:
    from mobench.decoding import _combine

    a, b = tiny["models"][:2]
    tok = tiny["tokenizer"]
    ids = tok(["the cat"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = {id(m): m(input_ids=ids).logits[:, -1] for m in (a, b)}
    plan = Plan(base=[Term(a, 0.25), Term(b, 0.75)], base_form="forward-kl")
    scores = _combine(plan, out, len(tok))
    pa, pb = (torch.softmax(out[id(m)][:, :len(tok)], -1) for m in (a, b))
    expected = -torch.log(0.25 / pa + 0.75 / pb)
    assert torch.allclose(scores, expected, atol=1e-5)


def test_beam_of_one_equals_sampling_and_wider_beams_rank_by_the_guide(tiny: dict[str, Any]) -> None:
    plan, tok = plans(tiny)["implicit"], tiny["tokenizer"]
    sample = DecodeConfig(mode="sample", max_new_tokens=12)
    beam1 = DecodeConfig(mode="beam", beam_width=1, expansion=1, lookahead=4, max_new_tokens=12)
    assert engine_ids(plan, tok, PROMPTS, beam1, seed=4) == engine_ids(plan, tok, PROMPTS, sample, seed=4)
    wide = DecodeConfig(mode="beam", beam_width=2, expansion=3, lookahead=4, max_new_tokens=12)
    rows = engine_ids(plan, tok, PROMPTS, wide, seed=4)
    assert len(rows) == len(PROMPTS) and all(rows)
    assert engine_ids(plan, tok, PROMPTS, wide, seed=4) == rows  # deterministic


def test_beam_keeps_the_best_candidate_by_the_implicit_value(tiny: dict[str, Any]) -> None:
    """With l = max_new_tokens the beam is best-of-(b·c) samples under Σ_t log π*/π_ref."""
    a, b, ref, _ = tiny["models"]
    tok = tiny["tokenizer"]
    plan = Plan(base=[Term(a, 1.0)], guides=[Term(b, 1.0), Term(ref, -1.0)])
    config = DecodeConfig(mode="beam", beam_width=1, expansion=6, lookahead=10, max_new_tokens=10)
    chosen = engine_ids(plan, tok, ["the cat"], config, seed=0)[0]

    def implicit_value(tokens: list[int]) -> float:
        ids = tok("the cat", return_tensors="pt")["input_ids"]
        full = torch.cat([ids, torch.tensor([tokens])], dim=1)
        with torch.no_grad():
            lp = {m: torch.log_softmax(m(input_ids=full).logits[0, ids.shape[1] - 1:-1, :len(tok)], -1)
                  for m in (b, ref)}
        picked = torch.tensor(tokens)
        rows = torch.arange(len(tokens))
        return float((lp[b][rows, picked] - lp[ref][rows, picked]).sum())

    batch = tok(["the cat"] * 6, return_tensors="pt", padding=True)
    candidates = Decoder(plan, tok, DecodeConfig(mode="sample", max_new_tokens=10), 0).generate_ids(
        batch["input_ids"], batch["attention_mask"], torch.Generator().manual_seed(0)).tolist()
    trimmed = [[t for t in row if t != tok.pad_token_id] for row in candidates]
    best = max(trimmed, key=implicit_value)
    assert chosen == best


def test_tokenizer_mismatch_is_a_clear_error(tiny: dict[str, Any]) -> None:
    from mobench.tinylm import train_tokenizer

    other = train_tokenizer(["completely different words here"] * 30, 280)
    check_shared_tokenizer({"base": tiny["tokenizer"], "guide": tiny["tokenizer"]})
    with pytest.raises(MobenchError, match="share one tokenizer.*guide"):
        check_shared_tokenizer({"base": tiny["tokenizer"], "guide": other})


def test_a_prompt_past_the_model_positions_is_a_clear_error(tiny: dict[str, Any]) -> None:
    plan, tok = plans(tiny)["mod"], tiny["tokenizer"]
    long_prompt = " ".join(["the cat sat on the mat"] * 12)  # well over 64 - 8 tokens
    decoder = Decoder(plan, tok, DecodeConfig(mode="greedy", max_new_tokens=8))
    with pytest.raises(MobenchError, match="tokens plus 8 new tokens exceeds the model's 64 positions"):
        decoder.generate(["the cat", long_prompt])
    assert len(decoder.generate(["the cat"])) == 1


def test_bad_plans_and_configs_are_rejected(tiny: dict[str, Any]) -> None:
    a = tiny["models"][0]
    with pytest.raises(ValueError, match="at least one model"):
        Plan(base=[Term(a, 0.0)])
    with pytest.raises(ValueError, match="base terms"):
        Plan(base=[Term(a, 1.0, "values")])
    with pytest.raises(ValueError, match="mode"):
        DecodeConfig(mode="nucleus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beam_width"):
        DecodeConfig(beam_width=0)


def test_static_cache_beam_and_sampling_equal_dynamic(tiny: dict[str, Any]) -> None:
    plan, tok = plans(tiny)["explicit"], tiny["tokenizer"]
    for mode in ("sample", "beam"):
        args = dict(mode=mode, max_new_tokens=10, beam_width=2, expansion=2, lookahead=3)
        dynamic = engine_ids(plan, tok, PROMPTS, DecodeConfig(**args), seed=2)
        assert engine_ids(plan, tok, PROMPTS, DecodeConfig(cache="static", **args), seed=2) == dynamic


def test_beam_ranks_stay_finite_after_rows_finish(tiny: dict[str, Any]) -> None:
    """A finished row adds nothing to its rank: its pad token scores -inf, and 0 * -inf would be NaN,
    which top-k ranks above every real beam."""
    plan, tok = plans(tiny)["plain"], tiny["tokenizer"]
    config = DecodeConfig(mode="beam", beam_width=2, expansion=3, lookahead=2, max_new_tokens=40, top_k=0, top_p=1.0)
    decoder = Decoder(plan, tok, config, seed=1)
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    width = 6
    ids, mask = batch["input_ids"].repeat_interleave(width, 0), batch["attention_mask"].repeat_interleave(width, 0)
    with torch.inference_mode():
        new, rank = decoder._loop(ids, mask, torch.Generator().manual_seed(1), rows_per_prompt=width, chunk=2)
    assert (new == tok.eos_token_id).any(), "some rows must finish for this test to mean anything"
    assert torch.isfinite(rank).all()


def test_a_finished_beam_takes_one_place_not_all(tiny: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """After a selection a finished beam's c copies are identical; if they all competed they would fill
    the b places and end the search at the first early finisher."""
    import mobench.decoding as decoding

    calls = []
    real = decoding._beam_index

    def spy(rank, width, b, c, final):
        index = real(rank, width, b, c, final)
        calls.append((rank.clone(), index.clone(), final))
        return index

    monkeypatch.setattr(decoding, "_beam_index", spy)
    plan, tok = plans(tiny)["plain"], tiny["tokenizer"]
    config = DecodeConfig(mode="beam", beam_width=2, expansion=3, lookahead=2, max_new_tokens=40, top_k=0, top_p=1.0)
    Decoder(plan, tok, config, seed=1).generate(PROMPTS)
    width, b, c = 6, 2, 3
    masked = 0
    for rank, index, final in calls:
        if final:
            continue
        for group in range(rank.shape[0] // width):
            ranks = rank[group * width:(group + 1) * width]
            sources = index[group * width:(group + 1) * width:c] - group * width  # the b kept rows
            masked += int(torch.isinf(ranks).sum())
            if int(torch.isfinite(ranks).sum()) >= b:
                assert torch.isfinite(ranks[sources]).all()
    assert masked > 0, "some finished beams must have been copied for this test to mean anything"

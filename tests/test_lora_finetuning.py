"""LoRA in the supervised steps that paper tasks with `lora_r` > 0 run (llama2-7b: r 64): MODPO and the
explicit value models train adapters (and a value model its new head in full), then merge them in."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from test_modpo_loss import ROWS  # noqa: E402


def _tiny(corpus: list[str], vocab: int = 280) -> tuple:
    from mobench.tinylm import TinyLMSpec, build_model, train_tokenizer

    tokenizer = train_tokenizer(corpus, vocab)
    return tokenizer, build_model(TinyLMSpec(vocab_size=vocab, n_layer=1, n_embd=32, n_head=2, n_positions=64),
                                  tokenizer, 0)


def _only_adapted_weights_changed(before: dict, after: dict) -> None:
    assert set(after) == set(before) and not any("lora_" in k or "base_layer" in k for k in after)
    assert torch.equal(after["transformer.wte.weight"], before["transformer.wte.weight"])  # LoRA leaves it alone
    assert not torch.equal(after["transformer.h.0.attn.c_attn.weight"], before["transformer.h.0.attn.c_attn.weight"])


def test_lora_value_model_trains_adapters_and_its_head_then_merges():
    from conftest import first_word_value_data
    from mobench.values import OFFSET_KEY, ValueSettings, train_value_model, value_skeleton

    tokenizer, policy, prompts, replies, rewards, groups = first_word_value_data()
    settings = ValueSettings(epochs=8, batch_size=16, learning_rate=3e-3)
    state, info = train_value_model(policy, prompts, replies, rewards, groups, tokenizer.pad_token_id, settings,
                                    seed=0, lora_rank=4)
    skeleton = value_skeleton(policy).state_dict()
    weights = {k: v for k, v in state.items() if k != OFFSET_KEY}
    _only_adapted_weights_changed(skeleton, weights)
    assert weights["lm_head.weight"].abs().sum() > 0  # the zero head trained in full
    total = sum(p.numel() for p in value_skeleton(policy).parameters())
    assert info["lora_rank"] == 4 and 0 < info["trained_parameters"] < total
    held = info["heldout"]
    assert held["mse"] < 0.8 * held["constant_mse"]  # it still learns the signal
    # The merged state loads into the plain value skeleton that decoding uses.
    value_skeleton(policy).load_state_dict(weights)
    # Activation checkpointing (on for the 7B preset) changes memory, not the result.
    short = ValueSettings(epochs=1, batch_size=16, learning_rate=3e-3)
    plain, _ = train_value_model(policy, prompts, replies, rewards, groups, tokenizer.pad_token_id, short, seed=0,
                                 lora_rank=4)
    recomputed, _ = train_value_model(policy, prompts, replies, rewards, groups, tokenizer.pad_token_id, short,
                                      seed=0, lora_rank=4, checkpointing=True)
    assert all(torch.allclose(plain[k], recomputed[k], atol=1e-6) for k in plain)


def test_paper_tasks_with_lora_turn_activation_checkpointing_on():
    from mobench.registry import tasks

    assert tasks.create("hh2:preset=llama2-7b").activation_checkpointing()
    assert not tasks.create("hh2").activation_checkpointing()  # small preset: full weights, no recompute
    assert not tasks.create("hh2-mini").activation_checkpointing()


def test_lora_modpo_matches_the_full_weight_loss_at_the_start_and_merges():
    from mobench.training import DPOSettings, run_modpo

    tokenizer, policy = _tiny([r["prompt"] + r["chosen"] + r["rejected"] for r in ROWS] * 30)
    settings = DPOSettings(steps=1, batch_size=len(ROWS), beta=0.1)

    def first_loss(lora_rank: int) -> float:
        model = copy.deepcopy(policy)
        ref = None if lora_rank else copy.deepcopy(policy)
        trainer, _ = run_modpo(model, tokenizer, ROWS, 0.5, settings, seed=0, ref_model=ref, train=False,
                               lora_rank=lora_rank)
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.eval()
        with torch.no_grad():
            return float(trainer.compute_loss(trainer.model, batch))

    # B starts at zero and the reference is the adapters-off model, so MODPO's margin-shifted loss is the
    # same as with a separate reference copy.
    assert first_loss(4) == pytest.approx(first_loss(0), abs=1e-6)
    model = copy.deepcopy(policy)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, info = run_modpo(model, tokenizer, ROWS, 0.5, DPOSettings(steps=3, batch_size=4, learning_rate=1e-2), seed=0,
                        lora_rank=4)
    _only_adapted_weights_changed(before, model.state_dict())
    assert info["lora_rank"] == 4

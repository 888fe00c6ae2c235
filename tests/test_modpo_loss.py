"""MODPO's loss through trl's DPO trainer: equal to a hand computation, and DPO when the margin is 0."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

ROWS = [
    {"prompt": "User: hello there?\nAssistant:", "chosen": " hello friend", "rejected": " no", "margin": 0.3},
    {"prompt": "User: sun or moon?\nAssistant:", "chosen": " the moon", "rejected": " sun sun", "margin": -0.2},
    {"prompt": "User: big tree?\nAssistant:", "chosen": " yes a big tree", "rejected": " maybe", "margin": 0.7},
    {"prompt": "User: red?\nAssistant:", "chosen": " red and blue", "rejected": " green", "margin": 0.0},
]


@pytest.fixture(scope="module")
def models():
    from mobench.tinylm import TinyLMSpec, build_model, train_tokenizer

    corpus = [r["prompt"] + r["chosen"] + r["rejected"] for r in ROWS] * 30
    tokenizer = train_tokenizer(corpus, 280)
    ref = build_model(TinyLMSpec(vocab_size=280, n_layer=1, n_embd=32, n_head=2, n_positions=64), tokenizer, 0)
    policy = copy.deepcopy(ref)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return tokenizer, policy, ref


def _loss_and_batch(trainer_cls_rows, tokenizer, policy, ref, w0, beta=0.1, rows=ROWS):
    from mobench.training import DPOSettings, run_modpo

    settings = DPOSettings(steps=1, batch_size=len(rows), beta=beta)
    trainer, _ = run_modpo(policy, tokenizer, rows, w0, settings, seed=0, ref_model=ref, train=False)
    batch = next(iter(trainer.get_train_dataloader()))
    policy.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(policy, batch)
    return float(loss), batch


def _sequence_logps(model, batch):
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    return (logp * batch["completion_mask"][:, 1:]).sum(1)


@pytest.mark.parametrize("w0", [1.0, 0.5, 0.1])
def test_modpo_loss_equals_the_hand_computation(models, w0):
    tokenizer, policy, ref = models
    beta = 0.1
    loss, batch = _loss_and_batch(None, tokenizer, policy, ref, w0, beta)
    # trl shuffles pairs; rows come back in the batch's order: recover each pair's margin by its prompt.
    lp, lr = _sequence_logps(policy, batch), _sequence_logps(ref, batch)
    n = len(ROWS)
    delta = (lp[:n] - lr[:n]) - (lp[n:] - lr[n:])
    prompts = [tokenizer.decode(ids[m.bool()]) for ids, m in zip(batch["input_ids"][:n], 1 - batch["completion_mask"][:n])]
    margin = torch.tensor([next(r["margin"] for r in ROWS if tokenizer.decode(tokenizer(r["prompt"])["input_ids"])
                                in p) for p in prompts], dtype=torch.float32)
    expected = -torch.nn.functional.logsigmoid((beta * delta - margin) / w0).mean()
    assert loss == pytest.approx(float(expected), rel=1e-4, abs=1e-5)


def test_zero_margin_and_full_weight_is_dpo(models):
    from trl import DPOConfig, DPOTrainer

    tokenizer, policy, ref = models
    rows = [{**r, "margin": 0.0} for r in ROWS]
    modpo_loss, _ = _loss_and_batch(None, tokenizer, policy, ref, 1.0, 0.1, rows)
    from datasets import Dataset

    import tempfile

    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(output_dir=out, use_cpu=True, report_to=[], per_device_train_batch_size=len(rows),
                         beta=0.1, max_length=128, precompute_ref_log_probs=True, seed=0, data_seed=0)
        plain = DPOTrainer(model=policy, ref_model=ref, args=args, processing_class=tokenizer,
                           train_dataset=Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")}
                                                            for r in rows]))
        batch = next(iter(plain.get_train_dataloader()))
        with torch.no_grad():
            dpo_loss = float(plain.compute_loss(policy, batch))
    assert modpo_loss == pytest.approx(dpo_loss, rel=1e-5)


def test_modpo_needs_a_positive_main_weight(models):
    from mobench.training import DPOSettings, run_modpo

    tokenizer, policy, ref = models
    with pytest.raises(ValueError, match="positive main-objective weight"):
        run_modpo(policy, tokenizer, ROWS, 0.0, DPOSettings(), seed=0, ref_model=ref, train=False)

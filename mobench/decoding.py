"""The decoding engine: one token loop, batched over prompts, with a KV cache for every model in play.

At every step the next-token score over the whole vocabulary is

    score(v) = base(v) + Σ_k c_k · g_k(v)

* `base` is one model's log-probabilities, or MOD's combination of experts: Σ_i μ_i log π_i(v)
  (reverse KL, Shi et al. 2024) or −log Σ_i μ_i / π_i(v) (forward KL: a weighted harmonic mean);
* each guidance term g_k is either an explicit value head V(x, y<t)[v] (the raw output of a
  vocabulary-sized head, plus a constant offset) or a log-probability, so an implicit value
  log π*(v) − log π_ref(v) is two terms with coefficients +γ and −γ, and an ensemble of guides is
  one term per guide with coefficient γ·μ_i. A merged guide is simply one term.

A model that appears in several terms (e.g. the SFT model as base and as π_ref) runs once per step.
Selection is greedy, sampled (temperature, top-k, top-p through transformers' logits warpers), or a
beam look-ahead with width b, expansion c and interval l (paper 5.6.2).

GPU speed is designed in: every tensor of the loop is preallocated at its final shape, the attention
mask is sliced rather than grown, and with `cache="static"` each model gets a transformers
StaticCache, so shapes stay static and `compile=True` (torch.compile, CUDA graphs) fits the loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mobench.errors import MobenchError

Output = Literal["logprobs", "values"]



def mask_positions(mask: Any) -> Any:
    """Position ids of left-padded rows, counted from the attention mask (padding gets 0)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)

@dataclass(frozen=True)
class DecodeConfig:
    """How tokens are selected. Defaults: the paper's sampling (top-p 0.9, top-k 50, temperature 1)."""

    mode: Literal["greedy", "sample", "beam"] = "sample"
    temperature: float = 1.0  # divides the whole guided score, so guidance acts as γ/T (the paper uses T = 1)
    top_k: int = 50
    top_p: float = 0.9
    max_new_tokens: int = 32
    beam_width: int = 2  # b: beams kept per prompt
    expansion: int = 2  # c: sampled continuations per beam at each look-ahead
    lookahead: int = 8  # l: tokens between two beam selections
    batch_size: int = 64
    cache: Literal["dynamic", "static"] = "dynamic"
    compile: bool = False  # torch.compile each model's forward (GPU, static cache)

    def __post_init__(self) -> None:
        if self.mode not in ("greedy", "sample", "beam"):
            raise ValueError(f"decoding mode must be greedy, sample or beam, got {self.mode!r}")
        if self.cache not in ("dynamic", "static"):
            raise ValueError(f"cache must be dynamic or static, got {self.cache!r}")
        if self.compile and self.cache != "static":
            raise ValueError("compile=True needs cache='static' (CUDA graphs need fixed shapes)")
        if self.temperature <= 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError("need temperature > 0, 0 < top_p <= 1 and top_k >= 0")
        for name in ("max_new_tokens", "beam_width", "expansion", "lookahead", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclass
class Term:
    """One model's contribution to the next-token score: `weight` × (its log-probs or its values)."""

    model: Any
    weight: float
    output: Output = "logprobs"
    offset: float = 0.0  # added to a value head's output (value models learn r − offset)
    name: str = ""

    def __post_init__(self) -> None:
        if self.output not in ("logprobs", "values"):
            raise ValueError(f"a term's output is logprobs or values, got {self.output!r}")


@dataclass
class Plan:
    """What is decoded: a base distribution and guidance terms (all models share one tokenizer)."""

    base: list[Term]
    guides: list[Term] = field(default_factory=list)
    base_form: Literal["reverse-kl", "forward-kl"] = "reverse-kl"

    def __post_init__(self) -> None:
        self.base = [t for t in self.base if t.weight != 0.0]  # μ_i = 0: the expert plays no part
        self.guides = [t for t in self.guides if t.weight != 0.0]
        if not self.base:
            raise ValueError("the base distribution needs at least one model with non-zero weight")
        if any(t.output != "logprobs" for t in self.base):
            raise ValueError("base terms are log-probabilities")
        if self.base_form not in ("reverse-kl", "forward-kl"):
            raise ValueError(f"base_form must be reverse-kl or forward-kl, got {self.base_form!r}")
        if self.base_form == "forward-kl" and any(t.weight < 0 for t in self.base):
            raise ValueError("the forward-KL base needs non-negative weights")

    def models(self) -> list[Any]:
        """The distinct models of the plan, in first-use order (each runs once per step)."""
        seen: dict[int, Any] = {}
        for term in (*self.base, *self.guides):
            seen.setdefault(id(term.model), term.model)
        return list(seen.values())


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of the vocabulary and special tokens: equal fingerprints mean interchangeable token ids."""
    import hashlib
    import json

    vocab = sorted(tokenizer.get_vocab().items())
    special = {"eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id}
    return hashlib.sha256(json.dumps([vocab, special]).encode()).hexdigest()[:16]


def check_shared_tokenizer(tokenizers: dict[str, Any]) -> None:
    """Raise a clear error when the models of one decoding loop do not share a tokenizer.

    Call it with the tokenizers alone, before any weights load: it is cheap and a mismatch would
    otherwise surface as silently wrong guidance (token ids meaning different strings)."""
    prints = {name: tokenizer_fingerprint(tok) for name, tok in tokenizers.items()}
    if len(set(prints.values())) > 1:
        first = next(iter(prints))
        odd = [name for name, fp in prints.items() if fp != prints[first]]
        raise MobenchError(f"models decoded together must share one tokenizer; {', '.join(odd)} "
                           f"differ(s) from {first} (vocabulary or special tokens)")


def check_vocab_sizes(plan: Plan, vocab_size: int) -> None:
    """Every model's output width must cover the tokenizer's vocabulary."""
    for term in (*plan.base, *plan.guides):
        width = term.model.get_output_embeddings().weight.shape[0]
        if width < vocab_size:
            raise MobenchError(f"model {term.name or '?'} has {width} outputs but the tokenizer {vocab_size} tokens")


def max_positions(config: Any) -> int | None:
    """How many positions a model takes (GPT-2 `n_positions`, Llama-style `max_position_embeddings`)."""
    return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)


# ----------------------------------------------------------------------------- the loop

class _CachedModel:
    """A model with its own KV cache, fed one token per row and step after the prompt.

    With a static cache the prompt runs eagerly (it sets up the cache) and each step through the
    compiled forward when `compile` is on; the step inputs keep one shape for the whole loop."""

    def __init__(self, model: Any, config: DecodeConfig, max_len: int) -> None:
        import inspect

        self.model = model
        self.step_forward = model.forward
        self.compiled = config.compile
        # transformers 5.2x renamed `past_key_values` to `cache`; older 5.x releases take the old name.
        self.cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        if config.compile:
            import torch

            self.step_forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
        self.static = config.cache == "static"
        self.cache: Any = None
        if self.static:
            from transformers import StaticCache

            self.cache = StaticCache(config=model.config, max_cache_len=max_len)

    def __call__(self, ids: Any, mask: Any, positions: Any, cache_position: Any, prefill: bool = False) -> Any:
        forward = self.model.forward if prefill else self.step_forward
        out = forward(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                      cache_position=cache_position, logits_to_keep=1, **{self.cache_arg: self.cache})
        cache = getattr(out, "cache", None)
        self.cache = cache if cache is not None else out.past_key_values
        logits = out.logits[:, -1, :].float()
        # A CUDA-graph step returns views of buffers that the next compiled call (another model's) reuses.
        return logits.clone() if self.compiled and not prefill else logits

    def select_rows(self, index: Any) -> None:
        if self.static:  # in place, so the cache tensors keep the addresses CUDA graphs captured
            for layer in self.cache.layers:
                layer.keys.copy_(layer.keys.index_select(0, index))
                layer.values.copy_(layer.values.index_select(0, index))
        else:
            self.cache.reorder_cache(index)


def _combine(plan: Plan, outputs: dict[int, Any], vocab: int) -> Any:
    """Next-token scores from each distinct model's last-position output."""
    import torch

    logprobs: dict[int, Any] = {}

    def logp(model: Any) -> Any:
        key = id(model)
        if key not in logprobs:
            logprobs[key] = torch.log_softmax(outputs[key][:, :vocab], dim=-1)
        return logprobs[key]

    if plan.base_form == "reverse-kl" or len(plan.base) == 1:
        base = sum(t.weight * logp(t.model) for t in plan.base)
    else:  # forward KL: −log Σ_i μ_i / π_i(v), the weighted harmonic mean of the experts
        stacked = torch.stack([math.log(t.weight) - logp(t.model) for t in plan.base])
        base = -torch.logsumexp(stacked, dim=0)
    scores = base
    for term in plan.guides:
        if term.output == "logprobs":
            scores = scores + term.weight * logp(term.model)
        else:
            scores = scores + term.weight * (outputs[id(term.model)][:, :vocab] + term.offset)
    return scores


def _warpers(config: DecodeConfig) -> list[Any]:
    from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                        TopPLogitsWarper)

    warpers: list[Any] = []
    if config.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(config.temperature))
    if config.top_k:
        warpers.append(TopKLogitsWarper(config.top_k))
    if config.top_p < 1.0:
        warpers.append(TopPLogitsWarper(config.top_p))
    return warpers


def _pick(scores: Any, config: DecodeConfig, warpers: list[Any], generator: Any, ids: Any) -> Any:
    import torch

    if config.mode == "greedy":
        return scores.argmax(dim=-1)
    for warp in warpers:
        scores = warp(ids, scores)
    probs = torch.softmax(scores, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


class Decoder:
    """Decodes prompts with a plan; deterministic for a given seed (one RNG per `generate` call)."""

    def __init__(self, plan: Plan, tokenizer: Any, config: DecodeConfig, seed: int = 0) -> None:
        self.plan, self.tokenizer, self.config, self.seed = plan, tokenizer, config, seed
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise MobenchError("the decoding tokenizer needs a pad and an eos token")
        if tokenizer.padding_side != "left":
            raise MobenchError("the decoding tokenizer must pad on the left")
        check_vocab_sizes(plan, len(tokenizer))

    def generate(self, prompts: Sequence[str], strip: bool = True) -> list[str]:
        """One reply per prompt: the new tokens decoded without special tokens, stripped unless `strip=False`
        (training on the samples needs them as written, leading space included)."""
        import torch

        device = next(self.plan.base[0].model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(self.seed)
        replies: list[str] = []
        texts = list(prompts)
        size = self.config.batch_size
        for start in range(0, len(texts), size):
            batch = self.tokenizer(texts[start:start + size], return_tensors="pt", padding=True).to(device)
            tokens = self.generate_ids(batch["input_ids"], batch["attention_mask"], generator)
            decoded = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
            replies += [t.strip() for t in decoded] if strip else decoded
        return replies

    def generate_ids(self, ids: Any, mask: Any, generator: Any) -> Any:
        """New token ids (rows × max_new_tokens, pad after the end) for left-padded `ids`."""
        import torch

        self._check_length(int(mask.sum(1).max()))
        device = next(self.plan.base[0].model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        if generator.device.type != device.type:
            raise MobenchError(f"the sampling generator is on {generator.device} but the models on {device}")
        with torch.inference_mode():
            if self.config.mode == "beam":
                return self._beam(ids, mask, generator)
            return self._loop(ids, mask, generator, rows_per_prompt=1, chunk=None)[0]

    def _check_length(self, longest_prompt: int) -> None:
        """A prompt plus the new tokens must fit every model's positions (past them GPT-2 indexes out of
        its position table: an IndexError on the CPU, a device-side assert that poisons a CUDA process)."""
        limit = min((n for n in (max_positions(m.config) for m in self.plan.models()) if n), default=None)
        if limit is not None and longest_prompt + self.config.max_new_tokens > limit:
            raise MobenchError(f"a prompt of {longest_prompt} tokens plus {self.config.max_new_tokens} new tokens "
                               f"exceeds the model's {limit} positions; shorten or drop long prompts, or lower "
                               "max_new_tokens")

    def _start(self, ids: Any, mask: Any) -> tuple[dict[int, _CachedModel], dict[int, Any], Any, Any]:
        import torch

        n_new = self.config.max_new_tokens
        prompt_len = ids.shape[1]
        runners = {id(m): _CachedModel(m, self.config, prompt_len + n_new) for m in self.plan.models()}
        # Static caches see the full-width mask (future columns 0, opened one per step): one shape throughout.
        future = mask.new_zeros if self.config.cache == "static" else mask.new_ones
        full_mask = torch.cat([mask, future(mask.shape[0], n_new)], dim=1)
        positions = mask_positions(mask)
        cache_position = torch.arange(prompt_len, device=ids.device)
        outputs = {k: run(ids, self._mask(full_mask, prompt_len), positions, cache_position, prefill=True)
                   for k, run in runners.items()}
        return runners, outputs, full_mask, positions[:, -1:]

    def _mask(self, full_mask: Any, length: int) -> Any:
        return full_mask if self.config.cache == "static" else full_mask[:, :length]

    def _loop(self, ids: Any, mask: Any, generator: Any, rows_per_prompt: int,
              chunk: int | None) -> tuple[Any, Any]:
        """Plain or guided decoding; with `chunk`, a beam selection every `chunk` tokens."""
        import torch

        config = self.config
        vocab = len(self.tokenizer)
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        rows, prompt_len = ids.shape
        runners, outputs, full_mask, last_position = self._start(ids, mask)
        new = torch.full((rows, config.max_new_tokens), pad, dtype=torch.long, device=ids.device)
        finished = torch.zeros(rows, dtype=torch.bool, device=ids.device)
        cumulative = torch.zeros(rows, device=ids.device)  # beam ranking, see _rank_terms
        value = torch.zeros(rows, device=ids.device)
        copy = torch.zeros(rows, dtype=torch.bool, device=ids.device)  # 2nd..c-th row of a finished beam
        warpers = _warpers(config)
        for step in range(config.max_new_tokens):
            scores = _combine(self.plan, outputs, vocab)
            if pad != eos:  # padding is never a reply token (it would vanish from the decoded text)
                scores[:, pad] = -float("inf")
            token = _pick(scores, config, warpers, generator, ids)
            token = torch.where(finished, torch.full_like(token, pad), token)
            if chunk is not None:
                increment, latest = self._rank_terms(scores, outputs, token, vocab)
                # A finished row adds nothing (its pad token may score -inf, and 0 * -inf is NaN).
                cumulative = cumulative + torch.where(finished, torch.zeros_like(increment), increment)
                if latest is not None:
                    value = torch.where(finished, value, latest)
            new[:, step] = token
            finished = finished | (token == eos)
            last = bool(finished.all()) or step + 1 == config.max_new_tokens
            if chunk is not None and ((step + 1) % chunk == 0 or last):
                # A finished beam's c copies stay identical; only one may compete, or they would fill
                # the b places and end the search at the first early finisher.
                rank = torch.where(finished & copy, torch.full_like(cumulative, -float("inf")), cumulative + value)
                index = _beam_index(rank, rows_per_prompt, config.beam_width, config.expansion, final=last)
                new, finished, cumulative, value = new[index], finished[index], cumulative[index], value[index]
                copy = finished & (torch.arange(rows, device=ids.device) % config.expansion != 0)
                last_position, full_mask = last_position[index], full_mask[index]
                token = new[:, step]
                if not last:
                    for run in runners.values():
                        run.select_rows(index)
            if last:
                break
            position = last_position + step + 1
            cache_position = torch.tensor([prompt_len + step], device=ids.device)
            full_mask[:, prompt_len + step] = 1  # the token fed now (a no-op for dynamic caches)
            outputs = {k: run(token[:, None], self._mask(full_mask, prompt_len + step + 1), position, cache_position)
                       for k, run in runners.items()}
        return new, cumulative + value

    def _rank_terms(self, scores: Any, outputs: dict[int, Any], token: Any, vocab: int) -> tuple[Any, Any]:
        """A beam's rank is the guides' estimate of its return: implicit (log-prob) guides add up
        Σ_t c·log π(y_t) (= V(x, y) − V(x) by the paper's Eq. 23); explicit value heads give the value
        of the latest token, which replaces the previous one. Returns (increment, latest value or
        None). Without guides, the base's cumulative log-probability ranks the beams."""
        import torch

        rows = torch.arange(token.shape[0], device=token.device)
        if not self.plan.guides:
            return torch.log_softmax(scores, -1)[rows, token], None
        increment = torch.zeros(token.shape[0], device=token.device)
        latest = None
        for term in self.plan.guides:
            out = outputs[id(term.model)][:, :vocab]
            if term.output == "logprobs":
                increment = increment + term.weight * torch.log_softmax(out, -1)[rows, token]
            else:
                part = term.weight * (out[rows, token] + term.offset)
                latest = part if latest is None else latest + part
        return increment, latest

    def _beam(self, ids: Any, mask: Any, generator: Any) -> Any:
        """Beam look-ahead: b beams per prompt, each sampling c continuations of l tokens, keep the
        best b of the b·c by the guides' return estimate; finally the best beam per prompt."""
        b, c = self.config.beam_width, self.config.expansion
        width = b * c
        ids = ids.repeat_interleave(width, dim=0)
        mask = mask.repeat_interleave(width, dim=0)
        new, _ = self._loop(ids, mask, generator, rows_per_prompt=width, chunk=self.config.lookahead)
        return new[::width]


def _beam_index(rank: Any, width: int, b: int, c: int, final: bool) -> Any:
    """Row index after a beam selection: per prompt the top-b rows by `rank`, each copied c times
    (final: the best row copied to all of the prompt's rows, so row 0 of each group is the answer)."""
    import torch

    prompts = rank.shape[0] // width
    grouped = rank.view(prompts, width)
    keep = 1 if final else b
    top = grouped.topk(keep, dim=1, sorted=True).indices  # (prompts, keep)
    copies = width // keep if final else c
    chosen = top.repeat_interleave(copies, dim=1)  # b beams × c copies = the group's b·c rows
    offsets = torch.arange(prompts, device=rank.device)[:, None] * width
    return (chosen + offsets).reshape(-1)

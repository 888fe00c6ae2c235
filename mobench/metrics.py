"""Pareto-quality and controllability metrics on N x n arrays (rows in preference-grid order).

All objectives are maximised. Definitions: each function's docstring and the README's column legend;
golden values: tests/test_metrics.py. Pure numpy, plus pymoo for the hypervolume; nothing here imports
torch or a model.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

CtrlTies = Literal["strict", "ignore"]


def _as_matrix(values: np.ndarray | list, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"{name} must be an N x n array, got shape {array.shape}")
    return array


def hypervolume(rewards: np.ndarray, ref: np.ndarray | list) -> float:
    """Volume of the union of boxes [ref, R_k]; points not strictly above ref add nothing.

    pymoo minimises, so both the points and the reference point are negated. `pf=` is never
    passed: it would rescale the objectives silently.
    """
    from pymoo.indicators.hv import HV

    points = _as_matrix(rewards, "rewards")
    reference = np.asarray(ref, dtype=float)
    if reference.shape != (points.shape[1],):
        raise ValueError(f"reference point has shape {reference.shape}, rewards have {points.shape[1]} columns")
    inside = points[np.all(points > reference, axis=1)]
    if len(inside) == 0:
        return 0.0
    return float(HV(ref_point=-reference)(-inside))


def inner_product(prefs: np.ndarray, rewards: np.ndarray) -> float:
    """(1/N) Σ_k μ_kᵀ R_k: the mean testing reward g_μ over the grid (paper Eq. 5, 28)."""
    mu = _as_matrix(prefs, "prefs")
    points = _as_matrix(rewards, "rewards")
    return float(np.mean(np.sum(mu * points, axis=1)))


def sparsity(rewards: np.ndarray) -> float:
    """Mean squared distance between consecutive points, in grid order (paper Eq. 29); NaN if N < 2."""
    points = _as_matrix(rewards, "rewards")
    if len(points) < 2:
        return float("nan")
    steps = np.diff(points, axis=0)
    return float(np.sum(steps**2) / (len(points) - 1))


def spacing(rewards: np.ndarray) -> float:
    """Population std of nearest-neighbour distances (paper Eq. 30); NaN if N < 2."""
    points = _as_matrix(rewards, "rewards")
    if len(points) < 2:
        return float("nan")
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.min(axis=1)
    return float(np.std(nearest))


def front_size(rewards: np.ndarray) -> int:
    """Number of non-dominated points (a dominates b: >= everywhere, > somewhere); duplicates both stay."""
    points = _as_matrix(rewards, "rewards")
    count = 0
    for point in points:
        dominated = np.any(np.all(points >= point, axis=1) & np.any(points > point, axis=1))
        count += not dominated
    return int(count)


def controllability(prefs: np.ndarray, rewards: np.ndarray, ties: CtrlTies = "strict") -> float:
    """Fraction of ordered pairs whose reward order follows the preference order in every objective.

    `strict` (paper 4.2.3): sgn(μ_i,m − μ_j,m) = sgn(R_i,m − R_j,m) for all m; a reward tie fails
    unless μ ties too. `ignore`: coordinates where μ ties are skipped (useful for n >= 3 grids).
    NaN if N < 2.
    """
    mu = _as_matrix(prefs, "prefs")
    points = _as_matrix(rewards, "rewards")
    n_points = len(points)
    if n_points < 2:
        return float("nan")
    mu_sign = np.sign(mu[:, None, :] - mu[None, :, :])
    reward_sign = np.sign(points[:, None, :] - points[None, :, :])
    agree = mu_sign == reward_sign
    if ties == "ignore":
        agree |= mu_sign == 0
    elif ties != "strict":
        raise ValueError(f"ties must be 'strict' or 'ignore', got {ties!r}")
    ok = np.all(agree, axis=-1)
    np.fill_diagonal(ok, False)
    return float(ok.sum() / (n_points * (n_points - 1)))


METRIC_KEYS = ("hv", "ip", "sparsity", "spacing", "front", "ctrl")


def evaluate(prefs: np.ndarray, rewards: np.ndarray, ref: np.ndarray | list,
             ctrl_ties: CtrlTies = "strict") -> dict[str, float]:
    """All six metrics, keyed hv, ip, sparsity, spacing, front, ctrl.

    A front with a non-finite reward (a judge's NaN, a diverged policy) gets NaN for every metric, so it
    is shown as "–" and never ranked: HV would silently drop the point, Front count it, Ctrl fail it."""
    if not np.all(np.isfinite(np.asarray(rewards, dtype=float))):
        return {key: math.nan for key in METRIC_KEYS}
    return {
        "hv": hypervolume(rewards, ref),
        "ip": inner_product(prefs, rewards),
        "sparsity": sparsity(rewards),
        "spacing": spacing(rewards),
        "front": front_size(rewards),
        "ctrl": controllability(prefs, rewards, ties=ctrl_ties),
    }


BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def _pooled(arrays: list[np.ndarray], weights: list[np.ndarray], counts: np.ndarray) -> np.ndarray:
    """Each point's mean reward vector with sample multiplicities `counts` (weights as the cell pools)."""
    points = []
    for a, w in zip(arrays, weights):
        mass = w * counts[:, None]
        total = mass.sum(axis=0)
        # An all-zero weight gives 0.0, as judge.weighted_mean: nothing was judged correct.
        points.append(np.where(total > 0, (mass * a).sum(axis=0) / np.where(total > 0, total, 1), 0.0))
    return np.array(points)


def bootstrap_hypervolume(samples: list[np.ndarray], groups: np.ndarray, ref: np.ndarray | list,
                          weights: list[np.ndarray] | None = None, resamples: int = BOOTSTRAP_RESAMPLES,
                          seed: int = BOOTSTRAP_SEED) -> dict[str, object] | None:
    """How much a front's hypervolume depends on which test prompts were drawn: the bootstrap over
    prompts (resampled with replacement, each with all its samples, the same draws for every point).

    `samples[k]` is point k's S x n array of per-sample rewards, `groups` the S prompt indices (shared by
    every point: all answer the same prompts), `weights[k]` an optional S x n array of per-sample weights
    (a judge that pools by segment count; None: plain means). Returns the standard error, the basic
    bootstrap 95% interval (2·HV − the resamples' 97.5th and 2.5th percentiles: the HV of resampled
    means is biased upwards, and this interval corrects for it), the bias and the resampled HVs; None
    with fewer than two prompts (nothing to resample) or a non-finite reward. Deterministic for a given
    seed; the draws depend only on the number of prompts, so every method of a run sees the same ones."""
    groups = np.asarray(groups)
    unique, index = np.unique(groups, return_inverse=True)
    if len(unique) < 2 or not samples:
        return None
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if any(a.shape[0] != len(groups) for a in arrays) or not all(np.all(np.isfinite(a)) for a in arrays):
        return None
    pooling = [np.ones_like(a) if weights is None else np.asarray(w, dtype=float)
               for a, w in zip(arrays, weights or [None] * len(arrays))]
    estimate = hypervolume(_pooled(arrays, pooling, np.ones(len(groups))), ref)
    rng = np.random.default_rng(seed)
    values = np.array([hypervolume(_pooled(arrays, pooling, np.bincount(rng.integers(0, len(unique), len(unique)),
                                                                         minlength=len(unique))[index]), ref)
                       for _ in range(resamples)])
    low, high = np.percentile(values, [2.5, 97.5])
    # The resampled HVs are returned: with the same draws for every method of a run, two methods' lists
    # pair up, and their differences give a paired comparison (`paired_hv_difference`).
    return {"hv_se": float(np.std(values, ddof=1)), "hv_ci95": [float(2 * estimate - high), float(2 * estimate - low)],
            "bias": float(values.mean() - estimate), "resamples": resamples, "seed": seed,
            "unit": "test prompt", "n_prompts": int(len(unique)),
            "hv_resamples": [float(f"{v:.6g}") for v in values]}


def paired_hv_difference(first: dict[str, object], second: dict[str, object], hv_first: float,
                         hv_second: float) -> dict[str, float]:
    """HV(first) − HV(second) over the same bootstrap draws (two `bootstrap_hypervolume` results of one
    run, with the two fronts' HVs): the difference, its standard error and its basic 95% interval.
    Much tighter than the two SEs side by side, since both fronts answered the same prompts."""
    a, b = np.asarray(first["hv_resamples"], dtype=float), np.asarray(second["hv_resamples"], dtype=float)
    same = ("seed", "resamples", "prompts_sha")
    if a.shape != b.shape or any(first.get(key) != second.get(key) for key in same):
        raise ValueError("these bootstraps used different draws or prompts; pair only methods of one run")
    diff = a - b
    estimate = hv_first - hv_second
    low, high = np.percentile(diff, [2.5, 97.5])
    return {"difference": float(estimate), "se": float(np.std(diff, ddof=1)),
            "ci95": [float(2 * estimate - high), float(2 * estimate - low)]}

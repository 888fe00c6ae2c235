"""Pareto-quality and controllability metrics on N x n arrays (rows in preference-grid order).

All objectives are maximised. Conventions and golden values: shared/METRICS.md. Pure numpy, plus
pymoo for the hypervolume; nothing here imports torch or a model.
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

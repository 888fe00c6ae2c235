"""Bone Soup's linear algebra (paper 3.3.4–3.3.5), shared by every method that merges backbones."""

from __future__ import annotations

import numpy as np


def backbone_weights(beta: float, n: int) -> np.ndarray:
    """Symmetric circulant B (Eq. 12): β on the diagonal, (1−β)/(n−1) elsewhere.

    Column i is the reward weight vector w_i of backbone i.
    """
    if n < 2:
        raise ValueError("Bone Soup needs at least two objectives")
    if not 1.0 / n < beta < 1.0:
        raise ValueError(f"beta must lie in (1/n, 1) = ({1 / n:.3g}, 1) for n = {n}, got {beta}")
    off = (1.0 - beta) / (n - 1)
    matrix = np.full((n, n), off)
    np.fill_diagonal(matrix, beta)
    return matrix


def bone_soup_coefficients(weights: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """λ = B⁻¹μ: the merging coefficients that express μ in the backbones' reward weights.

    They sum to one (B's columns do) and may be negative: interpretable extrapolation.
    """
    return np.linalg.solve(np.asarray(weights, dtype=float), np.asarray(mu, dtype=float))


def extrapolation_scale(alpha: float) -> float:
    """θ̂_b = θ̂ + α(θ̂ − θ_sft) (Eq. 13): the merge's displacement from θ_sft is scaled by 1 + α."""
    return 1.0 + alpha

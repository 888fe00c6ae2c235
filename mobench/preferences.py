"""Preference vectors μ on the simplex: the default grid and user-supplied preference files."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np

from mobench.errors import MobenchError

SIMPLEX_TOLERANCE = 1e-6
DECIMALS = 10  # μ and weight vectors are rounded so that 1 - 0.7 and 0.3 name the same point
MAX_GRID_POINTS = 2_000  # far beyond any sweep (the paper: 11); the metrics compare points pairwise


def canonical(vector: np.ndarray | list[float]) -> list[float]:
    """Rounded plain floats: the form used in ids, recipes and results files."""
    return [round(float(x), DECIMALS) + 0.0 for x in vector]


def simplex_grid(n_objectives: int, points_per_axis: int, label: str = "--grid") -> np.ndarray:
    """All μ on the simplex with coordinates k/(points_per_axis - 1).

    For two objectives this is μ₁ = 0, 0.1, …, 1 with 11 points (the paper's grid), in that order;
    for n objectives the lattice is ordered lexicographically by μ₁, μ₂, ….
    """
    if n_objectives < 1:
        raise MobenchError("a task needs at least one objective")
    if points_per_axis < 2:
        raise MobenchError(f"{label} must be at least 2, got {points_per_axis}")
    steps = points_per_axis - 1
    # Counted before the lattice is built: C(steps + n - 1, n - 1) points.
    count = math.comb(steps + n_objectives - 1, n_objectives - 1)
    if count > MAX_GRID_POINTS:
        raise MobenchError(f"{label} {points_per_axis} on {n_objectives} objectives gives {count:,} preference "
                           f"vectors (more than {MAX_GRID_POINTS:,}); choose a smaller grid")
    rows = []
    for head in itertools.product(range(steps + 1), repeat=n_objectives - 1):
        if sum(head) <= steps:
            rows.append([*head, steps - sum(head)])
    grid = np.array(rows, dtype=float) / steps
    return np.array([canonical(row) for row in grid])


def validate_preferences(prefs: np.ndarray, n_objectives: int, source: str) -> np.ndarray:
    """Each row must have n finite, non-negative entries summing to 1; rows must be distinct."""
    if prefs.ndim != 2 or prefs.shape[1] != n_objectives:
        raise MobenchError(f"{source}: expected rows of {n_objectives} preference weights, got shape "
                           f"{tuple(prefs.shape)}")
    if len(prefs) == 0:
        raise MobenchError(f"{source}: no preference vectors")
    for index, row in enumerate(prefs, start=1):
        if not np.all(np.isfinite(row)):
            raise MobenchError(f"{source}: row {index} {row.tolist()} has a NaN or infinite value")
        if np.any(row < 0):
            raise MobenchError(f"{source}: row {index} {row.tolist()} has a negative weight")
        if abs(row.sum() - 1.0) > SIMPLEX_TOLERANCE:
            raise MobenchError(f"{source}: row {index} {row.tolist()} sums to {row.sum():.6g}, "
                               f"not 1 (preferences must lie on the simplex)")
    rounded = np.array([canonical(row) for row in prefs])
    seen: dict[tuple[float, ...], int] = {}
    for index, row in enumerate(rounded, start=1):
        key = tuple(row)
        if key in seen:
            raise MobenchError(f"{source}: row {index} repeats row {seen[key]} ({[float(x) for x in key]})")
        seen[key] = index
    return rounded


def load_preferences(path: Path, n_objectives: int) -> np.ndarray:
    """Read μ rows from .json / .yaml (a list of lists) or .csv / .txt (one row per line)."""
    from mobench.fileio import read_user_text

    source = f"preference file {str(path)!r}"
    text = read_user_text(path, source)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            rows = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            rows = yaml.safe_load(text)
        elif suffix in (".csv", ".txt", ".tsv", ""):
            rows = [line.replace(",", " ").split() for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
        else:
            raise MobenchError(f"{source}: unsupported extension {suffix!r} (use .json, .yaml, .csv or .txt)")
        if isinstance(rows, dict) and "preferences" in rows:
            rows = rows["preferences"]
        if not isinstance(rows, list) or not all(isinstance(r, (list, tuple)) for r in rows):
            raise MobenchError(f"{source}: expected a list of rows of numbers")
        for index, row in enumerate(rows, start=1):
            if any(isinstance(x, bool) for x in row):
                raise MobenchError(f"{source}: row {index} holds a true/false value, not a number")
            if len(row) != n_objectives:
                raise MobenchError(f"{source}: row {index} has {len(row)} weights, expected {n_objectives} "
                                   f"(one per objective)")
        for index, row in enumerate(rows, start=1):
            for x in row:
                try:
                    float(x)
                except (ValueError, TypeError):
                    header = " (a header row? leave it out: every row is one preference)" if index == 1 else ""
                    raise MobenchError(f"{source}: row {index} holds {x!r}, not a number{header}") from None
        prefs = np.array([[float(x) for x in row] for row in rows], dtype=float).reshape(-1, n_objectives)
    except MobenchError:
        raise
    except (ValueError, TypeError) as exc:
        raise MobenchError(f"{source} is malformed: {exc}") from None
    except Exception as exc:  # yaml/json parser errors carry their own position information
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MobenchError(f"{source} is malformed: {first_line}") from None
    return validate_preferences(prefs, n_objectives, source)

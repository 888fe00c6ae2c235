"""Stable ids for what a run computes, and the per-cell record files of a run directory.

A cell is one (task, method, μ, seed). Its id hashes everything that changes its output, so a
rerun finds finished cells and an edited command recomputes only what changed. Each finished
cell is one JSON file written atomically: a run killed at any point leaves whole records only.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from mobench.fileio import atomic_write_json, json_safe, read_json


def stable_hash(payload: Any, length: int = 16) -> str:
    canonical = json.dumps(json_safe(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


class CellStore:
    def __init__(self, run_dir: Path) -> None:
        self.cells = run_dir / "cells"
        self.methods = run_dir / "methods"

    def remove_stale_temporaries(self, min_age_s: float = 3600.0) -> list[str]:
        """Temporary files of atomic writes that a killed process left; only old ones, so a writer that
        shares the run directory right now keeps its file."""
        removed = []
        for folder in (self.cells, self.methods):
            for tmp in folder.glob(".*.tmp"):
                if time.time() - tmp.stat().st_mtime > min_age_s:
                    tmp.unlink(missing_ok=True)
                    removed.append(tmp.name)
        return removed

    def cell_path(self, cell_id: str) -> Path:
        return self.cells / f"{cell_id}.json"

    def has_cell(self, cell_id: str) -> bool:
        return self.cell_path(cell_id).is_file()

    def is_finished(self, cell_id: str, data_sha: str | None = None) -> bool:
        """The cell's file exists and, where the task fingerprints its data, was computed on the same data.
        Cell ids do not hash the data (the artifacts a cell used do), so without this an edited corpus would
        reuse old cells; cells written before fingerprints were recorded carry none and count as finished."""
        if not self.has_cell(cell_id):
            return False
        try:
            record = self.read_cell(cell_id)
        except (ValueError, OSError):
            return False  # damaged (a disk error, a hand edit): computed again and replaced
        if data_sha is None:
            return True
        return isinstance(record, dict) and record.get("data_sha", data_sha) == data_sha

    def write_cell(self, cell_id: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.cell_path(cell_id), record)

    def read_cell(self, cell_id: str) -> dict[str, Any]:
        return read_json(self.cell_path(cell_id))

    def method_path(self, method_id: str) -> Path:
        return self.methods / f"{method_id}.json"

    def has_method(self, method_id: str) -> bool:
        """The method's record exists and is readable (a damaged one is written again by the next run)."""
        try:
            return isinstance(self.read_method(method_id), dict)
        except (ValueError, OSError):
            return False

    def write_method(self, method_id: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.method_path(method_id), record)

    def read_method(self, method_id: str) -> dict[str, Any]:
        return read_json(self.method_path(method_id))

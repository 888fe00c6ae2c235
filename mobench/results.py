"""Assemble a run's results file from its cell records alone (never from models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mobench.cells import CellStore, stable_hash
from mobench.fileio import atomic_write_json, json_safe, read_json
from mobench.metrics import bootstrap_hypervolume, evaluate, paired_hv_difference
from mobench.runner import Plan
from mobench.task import pooled_means
from mobench.versions import device_description, package_versions, source_revision

SCHEMA = "mobench.results/1"
RESULTS_FILE = "results.json"
TIMING_FILE = "timing.json"


def assemble(plan: Plan) -> dict[str, Any]:
    """The results file: deterministic, so the same command writes the same bytes (timing lives
    in timing.json beside it)."""
    cells = CellStore(plan.out)
    task = plan.task
    methods_out: dict[str, Any] = {}
    packages: list[str] = list(task.uses_packages)
    devices: list[str] = []
    # Every cell answers the evaluation prompts in this order (runner._run_cell).
    run_keys = [json.dumps(json_safe(task.prompt_record(p)), sort_keys=True) for p in task.evaluation_prompts()]
    for planned in plan.methods:
        records = [cells.read_cell(cell_id) for cell_id in planned.cell_ids]
        method_record = cells.read_method(planned.method_id)
        # Where the cells were computed; records written before devices were recorded: this machine.
        devices.append(method_record.get("device") or device_description())
        prefs = np.array([r["mu"] for r in records], dtype=float)
        rewards = np.array([r["rewards"] for r in records], dtype=float)
        artifacts: dict[str, dict[str, Any]] = {}
        for entry in method_record["artifacts"] + [a for r in records for a in r["artifacts"]]:
            artifacts.setdefault(entry["id"], entry)
        methods_out[planned.key] = {
            "name": planned.method.name,
            "version": planned.method.version,
            "method_id": planned.method_id,  # names its cells, so `mobench judge` reads this run's outputs only
            "params": planned.method.resolved_params(),
            "n_points": len(records),
            "metrics": evaluate(prefs, rewards, task.reference_point, plan.config.ctrl_ties),
            "uncertainty": _uncertainty(records, run_keys, task.reference_point),
            "details": method_record["details"],
            "points": [{"mu": r["mu"], "rewards": r["rewards"], "reward_std": r["reward_std"],
                        "output": r["output"]} for r in records],
            "artifacts": list(artifacts.values()),
        }
        packages.extend(planned.method.uses_packages)
    _pair_up(methods_out)
    return {
        "schema": SCHEMA,
        "task": task.describe(),
        "config": {
            "task": plan.config.task,
            "methods": [m.key for m in plan.methods],
            "preferences": plan.prefs_source,
            "n_preferences": len(plan.prefs),
            "seed": plan.config.seed,
            "ctrl_ties": plan.config.ctrl_ties,
        },
        "versions": package_versions(tuple(dict.fromkeys(packages))),
        "source": source_revision(),
        "device": ", ".join(sorted(set(devices))),
        "methods": methods_out,
    }


def _pair_up(methods_out: dict[str, Any]) -> None:
    """Each bootstrapped method's HV difference to every other one over the same draws (`paired`), after
    which the resampled HVs are dropped: 1000 floats a method would bloat results.json."""
    spread = {key: entry["uncertainty"] for key, entry in methods_out.items() if entry["uncertainty"]}
    for key, own in spread.items():
        own["paired"] = {other: paired_hv_difference(own, theirs, methods_out[key]["metrics"]["hv"],
                                                     methods_out[other]["metrics"]["hv"])
                         for other, theirs in spread.items() if other != key}
    for own in spread.values():
        del own["hv_resamples"]


def _uncertainty(records: list[dict[str, Any]], run_keys: list[str], ref: Any) -> dict[str, Any] | None:
    """The HV's bootstrap over test prompts (metrics.bootstrap_hypervolume) from the cells' per-sample
    rewards, pooled with the weights the cells kept. None where it would not be the reported HV's: one
    prompt (quad), points that answered other prompts than the run's, or samples whose pooled means do
    not reproduce the cells' (cells written before weights were kept, by a judge that pools)."""
    if len(set(run_keys)) < 2 or not records or any("samples" not in r for r in records):
        return None
    if any([json.dumps(x["prompt"], sort_keys=True) for x in r["samples"]] != run_keys for r in records):
        return None  # the draws of a run are shared by prompt: every point must answer the same prompts
    samples = [np.array([x["rewards"] for x in r["samples"]], dtype=float) for r in records]
    kept = [_kept_weights(r) for r in records]
    for a, columns, r in zip(samples, kept, records):  # a NaN reward fails this too
        if not np.allclose(pooled_means(a, columns), r["rewards"], rtol=1e-9, atol=1e-12):
            return None
    weights = None  # per point, an S x n array (ones where the objective's judge takes a plain mean)
    if any(columns is not None for columns in kept):
        weights = [np.column_stack([np.ones(len(a)) if w is None else w for w in (columns or [None] * a.shape[1])])
                   for a, columns in zip(samples, kept)]
    groups = np.unique(run_keys, return_inverse=True)[1]
    result = bootstrap_hypervolume(samples, groups, ref, weights)
    if result is not None:
        result["prompts_sha"] = stable_hash(sorted(set(run_keys)), 12)
    return result


def _kept_weights(record: dict[str, Any]) -> list[np.ndarray | None] | None:
    """The per-objective pooling weights a cell kept beside its samples (runner._run_cell; None for a
    plain-mean judge), or None where it kept none."""
    rows = [sample.get("weights") for sample in record["samples"]]
    if not rows or any(row is None for row in rows):
        return None
    return [None if any(row[i] is None for row in rows) else np.array([row[i] for row in rows], dtype=float)
            for i in range(len(rows[0]))]


def write_results(out: Path, results: dict[str, Any], timing: dict[str, float]) -> Path:
    path = out / RESULTS_FILE
    atomic_write_json(path, results)
    atomic_write_json(out / TIMING_FILE, {"computed_this_run_s": timing})
    return path


def load_results(path: Path) -> dict[str, Any]:
    import json

    try:
        data = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{path} is not JSON, so not a mobench results file ({SCHEMA})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a mobench results file ({SCHEMA})")
    problems = _shape_problems(data)
    if problems:
        raise ValueError(f"a damaged or hand-edited results file: {'; '.join(problems[:3])}")
    return data


def _shape_problems(data: dict[str, Any]) -> list[str]:
    """What the readers of a results file (reports, leaderboard, `mobench judge`) rely on, checked once."""
    missing = [key for key in ("task", "config", "methods") if key not in data]
    if missing:
        return [f"lacks {', '.join(missing)}"]
    task, config, methods = data["task"], data["config"], data["methods"]
    problems = []
    if not isinstance(task, dict) or not all(k in task for k in ("name", "objectives", "reference_point")):
        problems.append("task needs name, objectives and reference_point")
    if not isinstance(config, dict) or not all(k in config for k in ("task", "seed")):
        problems.append("config needs task and seed")
    if not isinstance(methods, dict):
        return problems + ["methods must be a mapping"]
    for name, entry in methods.items():
        lacking = [k for k in ("metrics", "n_points", "points") if not isinstance(entry, dict) or k not in entry]
        if lacking:
            problems.append("lacks " + ", ".join(f"methods.{name}.{key}" for key in lacking))
        elif not isinstance(entry["points"], list) or not all(
                isinstance(p, dict) and isinstance(p.get("mu"), list) and isinstance(p.get("rewards"), list)
                for p in entry["points"]):
            problems.append(f"methods.{name}.points must be a list of {{mu: [...], rewards: [...]}}")
    return problems

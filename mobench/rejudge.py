"""`mobench judge RUN_DIR --judges J`: score a finished run's saved generations again, without
regenerating. A pointwise judge gives each (method, μ) its mean score; a pairwise judge gives each
(method, μ) its win rate against the reference method's outputs on the same prompts, per objective,
and the win rates form a front per method (paper Figure 7). Results go to RUN_DIR/judged/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mobench.errors import MobenchError
from mobench.fileio import atomic_write_text
from mobench.judge import mean_score
from mobench.progress import Reporter


def _cells(run_dir: Path, results: dict[str, Any]) -> dict[str, dict[tuple[float, ...], dict[str, Any]]]:
    """method key -> μ -> cell record, for the methods and points of `results` only: a run directory
    can also hold cells of other seeds, a `--limit` trial or an earlier configuration."""
    wanted = {key: (entry.get("method_id"), {tuple(p["mu"]) for p in entry["points"]})
              for key, entry in results["methods"].items()}
    # A cell is found by its method id: a later run that spelled the same method otherwise
    # (`bone-soup` then `bone-soup:beta=0.7`) reused the cell under another key.
    key_of_id = {method_id: key for key, (method_id, _) in wanted.items() if method_id is not None}
    seed = results["config"]["seed"]
    by_method: dict[str, dict[tuple[float, ...], dict[str, Any]]] = {}
    for path in sorted((run_dir / "cells").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise MobenchError(f"cannot read cell {str(path)!r}: {exc}; delete it and rerun `mobench run` "
                               f"to recompute it") from None
        if not isinstance(record, dict) or not isinstance(record.get("mu"), list) or record.get("seed") != seed:
            continue
        # Results written before method ids were recorded match cells by key.
        key = key_of_id.get(record.get("method_id")) if key_of_id else record.get("method")
        if key in wanted and tuple(record["mu"]) in wanted[key][1]:
            by_method.setdefault(key, {})[tuple(record["mu"])] = record
    return by_method


def _first_prompts(records: list[Any], limit: int | None) -> int:
    """How many evaluation entries the first `limit` distinct test prompts take (each is sampled
    `samples` times in a row), so `judge --limit` counts test prompts as `run --limit` does."""
    if limit is None:
        return len(records)
    seen: set[str] = set()
    for i, record in enumerate(records):
        key = json.dumps(record, sort_keys=True, default=str)
        if key not in seen:
            if len(seen) == limit:
                return i
            seen.add(key)
    return len(records)


def _file_name(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", spec)[:120] + ".json"


def rejudge(run_dir: Path, judge_specs: Sequence[str], limit: int | None, reporter: Reporter) -> list[Path]:
    from mobench.judge import PairwiseJudge
    from mobench.registry import judges, tasks
    from mobench.results import load_results
    from mobench.textdata import prompt_text
    from mobench.versions import package_versions

    created = [judges.create(spec) for spec in judge_specs]  # unknown names fail first, before any work
    twice = [spec for i, spec in enumerate(judge_specs) if spec in judge_specs[:i]]
    if twice:
        raise MobenchError(f"judge {twice[0]!r} is listed twice")
    results_path = run_dir / "results.json"
    if not run_dir.is_dir():
        problem = "is not a directory" if run_dir.exists() else "does not exist"
        raise MobenchError(f"run directory {str(run_dir)!r} {problem}")
    if not results_path.is_file():
        raise MobenchError(f"{run_dir} holds no results.json; run `mobench run` first")
    if limit is not None and limit < 1:
        raise MobenchError(f"--limit must be >= 1, got {limit}")
    try:
        results = load_results(results_path)
    except (ValueError, OSError) as exc:
        raise MobenchError(f"cannot read {str(results_path)!r}: {exc}") from None
    # The task's own resolved spec: it carries run-time overrides such as --limit's n_test.
    task = tasks.create(results["task"].get("spec") or results["config"]["task"])
    _check_judges_fit(judge_specs, created, task)
    prompts = task.evaluation_prompts()
    cells = _cells(run_dir, results)
    if not cells:
        where = "holds none of the generations" if (run_dir / "cells").is_dir() else "does not exist: it holds the generations"
        raise MobenchError(f"{run_dir}/cells {where} of the methods in its results.json (a copy of a run, such as the "
                           "committed reference runs, keeps only the summaries); rerun its `mobench run` command to "
                           "regenerate them (trained artifacts are reused), then judge")
    missing = sorted(set(results["methods"]) - set(cells))
    if missing:
        raise MobenchError(f"{run_dir}/cells lacks the generations of {', '.join(missing)}; rerun `mobench run`")
    shortest = min(len(c["samples"]) for by_mu in cells.values() for c in by_mu.values())
    all_records = [task.prompt_record(p) for p in prompts]
    n = min(len(prompts), shortest, _first_prompts(all_records, limit))
    records = all_records[:n]
    texts = [prompt_text(p) for p in prompts[:n]]
    for method, by_mu in cells.items():
        for mu, cell in by_mu.items():
            if [s["prompt"] for s in cell["samples"][:n]] != records:
                raise MobenchError(f"the saved outputs of {method} at μ={list(mu)} do not follow the task's "
                                   f"evaluation prompts; was the run made with another task version?")
    written = []
    for spec, judge in zip(judge_specs, created):
        if isinstance(judge, PairwiseJudge):
            report = _pairwise(judge, task, cells, prompts[:n], texts, reporter)
        else:
            report = _pointwise(judge, cells, prompts[:n], reporter)
        report.update({"judge": judge.id, "run": str(run_dir), "task": results["config"]["task"],
                       "n_prompts": n, "versions": package_versions(("openai",))})
        out = run_dir / "judged" / _file_name(spec)
        atomic_write_text(out, json.dumps(report, indent=2, sort_keys=True) + "\n")
        written.append(out)
    return written


def _check_judges_fit(specs: Sequence[str], created: Sequence[Any], task: Any) -> None:
    """A judge must score what the run's task produces (text replies or parameter vectors), and its
    model must be reachable: both are checked before any saved output is scored."""
    from mobench.hub import require

    for spec, judge in zip(specs, created):
        if judge.scores_text != task.outputs_text:
            what = "text replies" if judge.scores_text else "parameter vectors"
            raise MobenchError(f"judge {spec!r} scores {what}, but the outputs of task {task.name!r} are "
                               f"{'text replies' if task.outputs_text else 'parameter vectors'}")
        judge.check_outputs_fit(task)
    require([asset for judge in created for asset in judge.assets()])


def _pointwise(judge: Any, cells: dict[str, Any], prompts: list[Any], reporter: Reporter) -> dict[str, Any]:
    n = len(prompts)
    methods_out: dict[str, Any] = {}
    for method, by_mu in cells.items():
        points = []
        for mu in sorted(by_mu):
            outputs = [s["output"] for s in by_mu[mu]["samples"][:n]]
            scores = np.asarray(judge.score(prompts, outputs), dtype=float)
            mean = mean_score(judge, prompts, outputs, scores)
            points.append({"mu": list(mu), "mean": round(mean, 6), "std": round(float(scores.std()), 6)})
        methods_out[method] = {"points": points}
        reporter.log(f"{judge.name}: {method} scored at {len(points)} preferences")
    return {"kind": "pointwise", "methods": methods_out}


def _pairwise(judge: Any, task: Any, cells: dict[str, Any], prompts: list[Any], texts: list[str],
              reporter: Reporter) -> dict[str, Any]:
    from mobench.metrics import evaluate

    reference = judge.params.reference
    if reference not in cells:
        known = ", ".join(sorted(cells))
        raise MobenchError(f"the reference method {reference!r} is not in this run (methods: {known}); "
                           f"run it too, or pass reference=...")
    names = [o.name for o in task.objectives]
    objectives = list(judge.params.objectives) or names
    unknown = [o for o in objectives if o not in names]
    if unknown:
        raise MobenchError(f"objectives {unknown} are not objectives of {task.name} ({', '.join(names)})")
    n = len(prompts)
    ref_cells = cells[reference]
    constant_reference = len({json.dumps([s["output"] for s in c["samples"][:n]]) for c in ref_cells.values()}) == 1
    methods_out: dict[str, Any] = {}
    for method, by_mu in cells.items():
        if method == reference:
            continue
        points = []
        for mu in sorted(by_mu):
            ref_cell = next(iter(ref_cells.values())) if constant_reference else ref_cells.get(mu)
            if ref_cell is None:
                reporter.log(f"{method} at μ={list(mu)}: the reference has no outputs at this μ; skipped")
                continue
            candidates = [s["output"] for s in by_mu[mu]["samples"][:n]]
            references = [s["output"] for s in ref_cell["samples"][:n]]
            per_objective = {obj: judge.win_rates(obj, texts, candidates, references) for obj in objectives}
            rates = [per_objective[o]["win_rate"] for o in objectives]
            points.append({"mu": list(mu), "win_rates": [None if r is None else round(r, 6) for r in rates],
                           "counts": per_objective})
            reporter.log(f"{judge.name}: {method} μ={list(mu)} win rates "
                         + ", ".join(f"{o} {'-' if r is None else f'{r:.3f}'}" for o, r in zip(objectives, rates)))
        entry: dict[str, Any] = {"points": points}
        rates = np.asarray([[np.nan if r is None else r for r in p["win_rates"]] for p in points], dtype=float)
        if len(points) and len(objectives) == len(names) and not np.isnan(rates).any():
            prefs = np.asarray([p["mu"] for p in points], dtype=float)
            entry["metrics"] = evaluate(prefs, rates, tuple([0.0] * len(objectives)))
        methods_out[method] = entry
    return {"kind": "pairwise", "reference": reference, "objectives": objectives, "methods": methods_out,
            "usage": judge.client().usage.to_dict()}

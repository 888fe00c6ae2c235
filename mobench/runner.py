"""Resolve a run (everything validated before any expensive work), then sweep its cells.

Flow: resolve task, methods and preferences -> for each method, skip if every cell is finished,
else prepare (train or load artifacts) and compute the missing cells, each written as soon as it
is done -> assemble results.json, tables and the Pareto plot from the cell files alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mobench.artifacts import ArtifactStore
from mobench.cells import CellStore, stable_hash
from mobench.context import RunContext
from mobench.errors import MobenchError
from mobench.method import Method
from mobench.metrics import CtrlTies
from mobench.params import parse_spec
from mobench.preferences import canonical, load_preferences, simplex_grid
from mobench.progress import Reporter
from mobench.registry import methods, tasks
from mobench.task import Task, pooled_means
from mobench.versions import device_description


@dataclass(frozen=True)
class MethodRequest:
    """A method as the user asked for it.

    `key` names it in results (the spec as given); `spec` goes to the registry; `overrides` are
    typed parameter values from a YAML mapping, so lists and numbers are not re-parsed from text.
    """

    key: str
    spec: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: str) -> MethodRequest:
        return cls(key=spec, spec=spec)


@dataclass
class RunConfig:
    task: str
    methods: list[MethodRequest]
    grid: int | None = None
    prefs_file: Path | None = None
    seed: int = 0
    out: Path | None = None
    allow_training: bool = True
    ctrl_ties: CtrlTies = "strict"
    limit: int | None = None  # evaluate on N test prompts (a quick trial)
    offline: bool = False  # local paths and the hub cache only
    ray: Any = None  # mobench.distributed.RayOptions: sweep the cells on a Ray cluster (None: in this process)


@dataclass
class PlannedMethod:
    key: str
    method: Method
    method_id: str
    cell_ids: list[str]
    prefs: np.ndarray  # the run's grid, or the method's own points


@dataclass
class Plan:
    config: RunConfig
    task: Task
    prefs: np.ndarray
    prefs_source: str
    out: Path
    methods: list[PlannedMethod]

    @property
    def n_cells(self) -> int:
        return sum(len(m.cell_ids) for m in self.methods)


def default_out(task: Task) -> Path:
    return Path("results") / task.name


def check_same_task(out: Path, task: Task, seed: int) -> None:
    """A run directory holds one run of one task under one seed: a run of another task, other task
    parameters (`--limit` included) or another seed shares none of its cells and would silently replace
    its results (the committed reference runs among them). Other methods, preferences or tie rules
    reuse its cells and may write there, and so may a new version of the task's code: rerunning a
    reference run after a change is how it is brought up to date."""
    from mobench.fileio import json_safe, read_json

    try:
        previous = read_json(out / "results.json")
        before = previous["task"]
        name, params, old_seed = before["name"], before.get("params"), previous["config"]["seed"]
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return  # no results yet, or a damaged file that the run rewrites
    if name != task.name:
        raise MobenchError(f"{str(out)!r} holds a run of task {name!r}; a run of {task.name!r} would replace "
                           f"its results: pick another --out (or delete its results.json)")
    now = json_safe(task.resolved_params())
    if isinstance(params, dict) and params != now:
        missing = "(not set)"
        changed = sorted(k for k in set(params) | set(now) if params.get(k, missing) != now.get(k, missing))
        shown = ", ".join(f"{k}={params.get(k, missing)!r} there, {now.get(k, missing)!r} now" for k in changed[:3])
        raise MobenchError(f"{str(out)!r} holds a run of {name!r} with other task parameters ({shown}); this run "
                           f"would replace its results: pick another --out (or delete its results.json)")
    if old_seed != seed:
        raise MobenchError(f"{str(out)!r} holds a run with seed {old_seed}; a run with seed {seed} would replace "
                           f"its results: pick another --out, e.g. {str(out)}-seed{seed}")


def check_out_dir(out: Path, create: bool = True) -> None:
    if out.exists() and not out.is_dir():
        raise MobenchError(f"output directory {str(out)!r} is a file")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise MobenchError(f"output directory {str(out)!r} lies under a file ({str(parent)!r})")
    if not create:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MobenchError(f"cannot create output directory {str(out)!r}: {exc.strerror}") from None


def resolve(config: RunConfig, create_out: bool = True) -> Plan:
    """Look everything up and validate it; raises MobenchError before any model work.

    `create_out=False` (for `prepare`, which writes no results) checks the run directory but does not
    create it."""
    if config.offline:
        from mobench.hub import set_offline

        set_offline()
    task = tasks.create(config.task)
    if config.limit is not None:
        if config.limit < 1:
            raise MobenchError(f"--limit must be >= 1, got {config.limit}")
        if "n_test" not in task.resolved_params():
            raise MobenchError(f"--limit sets the number of test prompts; task {task.name!r} has no such parameter")
        name, raw = parse_spec(config.task)
        raw.pop("n_test", None)  # --limit wins over an n_test in the spec: it is the explicit quick-trial switch
        task = tasks.create(name, overrides={**raw, "n_test": config.limit})
    if hasattr(task, "check_assets"):
        task.check_assets()  # a missing dataset or model is named now, not after an hour of training
    if not config.methods:
        raise MobenchError("no methods given; see `mobench ls methods`")
    seen: set[str] = set()
    resolved: list[tuple[str, Method]] = []
    for request in config.methods:
        if request.key in seen:
            raise MobenchError(f"method {request.key!r} is listed twice")
        seen.add(request.key)
        method = methods.create(request.spec, request.overrides)
        method.check_task(task)
        resolved.append((request.key, method))
    if config.prefs_file is not None and config.grid is not None:
        raise MobenchError("give either --grid or --prefs, not both")
    if config.prefs_file is not None:
        prefs = load_preferences(Path(config.prefs_file), task.n_objectives)
        # The rows' hash, not just the file name: two runs with different prefs.json files must not
        # share a leaderboard table.
        prefs_source = f"file:{Path(config.prefs_file).name}#{stable_hash(prefs.tolist(), 8)}"
    else:
        grid = config.grid if config.grid is not None else task.default_grid
        prefs = simplex_grid(task.n_objectives, grid)
        prefs_source = f"grid:{grid}"
    if not 0 <= config.seed < 2**32:  # the range numpy, torch and transformers' set_seed accept
        raise MobenchError(f"--seed must be in [0, 2**32 - 1], got {config.seed}")
    out = Path(config.out) if config.out is not None else default_out(task)
    check_out_dir(out, create=False)
    if create_out:  # `prepare` writes no results: any run directory is fine for it
        check_same_task(out, task, config.seed)

    task_identity = {"name": task.name, "version": task.version, "params": task.resolved_params(),
                     "judges": [judge.id for judge in task.judges]}
    planned = []
    keys_of_id: dict[str, str] = {}
    for key, method in resolved:
        method_id = stable_hash({"task": task_identity, "seed": config.seed, "method": {
            "name": method.name, "version": method.version, "params": method.resolved_params()}})
        if method_id in keys_of_id:
            raise MobenchError(f"methods {keys_of_id[method_id]!r} and {key!r} are the same method with the "
                               f"same parameters; list it once")
        keys_of_id[method_id] = key
        own = method.own_preferences(task)
        method_prefs = prefs if own is None else np.asarray(own, dtype=float)
        cell_ids = [stable_hash({"method_id": method_id, "mu": canonical(mu)}) for mu in method_prefs]
        planned.append(PlannedMethod(key, method, method_id, cell_ids, method_prefs))
    given = config.limit is not None or "n_test" in parse_spec(config.task)[1]
    asked = task.resolved_params().get("n_test") if given else None  # the parsed value (--limit set it above)
    if asked is not None and hasattr(task, "test_prompts"):
        # Only a number the user gave is held to the split's size; a task's default n_test (500 for the
        # paper tasks) takes what a smaller local copy has.
        found = len(task.test_prompts())  # builds the data, which the run needs next anyway
        if found < int(asked):
            how = f"--limit {config.limit}" if config.limit is not None else f"n_test={asked}"
            raise MobenchError(f"{how}: task {task.name!r} has {found} test prompts")
    check_out_dir(out, create_out)  # created last: a refused run leaves no empty directory behind
    return Plan(config, task, prefs, prefs_source, out, planned)


def prepare_all(plan: Plan, store: ArtifactStore, reporter: Reporter) -> list[dict[str, Any]]:
    """Build (or find) every artifact the methods need for the run's preferences, without sweeping;
    returns what was used."""
    _remove_leftovers(store, None, reporter)
    memo: dict[str, Any] = {}
    used: dict[str, dict[str, Any]] = {}
    for planned in plan.methods:
        ctx = RunContext(plan.task, plan.config.seed, store, allow_training=plan.config.allow_training,
                         reporter=reporter, memo=memo)
        planned.method.prepare(ctx)
        for mu in planned.prefs:  # what single preferences need (MORLHF's policies)
            planned.method.prepare_preference(ctx, mu)
        used.update(ctx.take_artifacts_used())
    return _artifact_list(used)


def pending_methods(plan: Plan, cells: CellStore, reporter: Reporter) -> list[tuple[PlannedMethod, list[int]]]:
    """Each method with work left and the indices of its unfinished cells (a method whose cells are all
    finished but whose record is missing comes with none: its record is written again)."""
    sha = data_sha(plan.task)
    pending = []
    for planned in plan.methods:
        missing = [i for i, cell_id in enumerate(planned.cell_ids) if not cells.is_finished(cell_id, sha)]
        if not missing and cells.has_method(planned.method_id):
            reporter.log(f"{planned.key}: all {len(planned.cell_ids)} cells finished, nothing to compute")
        else:
            pending.append((planned, missing))
    return pending


def write_method_record(cells: CellStore, planned: PlannedMethod, ctx: RunContext) -> None:
    """The method's record, once `prepare` has run (everything in it is known then). Written before its
    cells, so a crash after the last cell never leaves an older record beside them."""
    cells.write_method(planned.method_id, {
        "method_id": planned.method_id,
        "name": planned.method.name,
        "params": planned.method.resolved_params(),
        "artifacts": _artifact_list(ctx.take_artifacts_used()),
        "details": ctx.details,
        "device": device_description(),  # where the cells were computed (a rerun may compute nothing)
    })


def execute(plan: Plan, store: ArtifactStore, reporter: Reporter) -> dict[str, float]:
    """Compute every missing cell; returns wall seconds spent per method key."""
    cells = CellStore(plan.out)
    _remove_leftovers(store, cells, reporter)
    prompts = plan.task.evaluation_prompts()
    memo: dict[str, Any] = {}
    timing: dict[str, float] = {}
    for planned, missing in pending_methods(plan, cells, reporter):
        started = time.perf_counter()
        ctx = RunContext(plan.task, plan.config.seed, store, allow_training=plan.config.allow_training,
                         reporter=reporter, memo=memo)
        planned.method.prepare(ctx)
        write_method_record(cells, planned, ctx)
        with reporter.bar(f"{planned.key}: {len(missing)} of {len(planned.cell_ids)} preferences",
                          total=len(missing)) as bar:
            for index in missing:
                mu = planned.prefs[index]
                record = _run_cell(plan, planned, ctx, prompts, mu)
                cells.write_cell(planned.cell_ids[index], record)
                bar.advance()
        timing[planned.key] = round(time.perf_counter() - started, 3)
    return timing


def _remove_leftovers(store: ArtifactStore, cells: CellStore | None, reporter: Reporter) -> None:
    """What killed processes left behind: staging folders of builds nobody runs now, and temporary
    files of cell writes (kill -9 skips every cleanup)."""
    removed = store.remove_stale_staging()
    if cells is not None:
        removed += cells.remove_stale_temporaries()
    if removed:
        reporter.log(f"removed {len(removed)} leftover(s) of killed runs")


def _run_cell(plan: Plan, planned: PlannedMethod, ctx: RunContext, prompts: list[Any],
              mu: np.ndarray) -> dict[str, Any]:
    started = time.perf_counter()
    generator = planned.method.generator(ctx, mu)
    outputs = generator.generate(prompts)
    generated = time.perf_counter()
    if len(outputs) != len(prompts):
        raise RuntimeError(f"{planned.key} returned {len(outputs)} outputs for {len(prompts)} prompts")
    scores = plan.task.score(prompts, outputs)
    weights = plan.task.sample_weights(prompts, outputs)  # kept per sample: the HV bootstrap pools as the cell
    judged = time.perf_counter()
    return {
        "method_id": planned.method_id,
        "method": planned.key,
        "data_sha": data_sha(plan.task),
        "mu": canonical(mu),
        "seed": plan.config.seed,
        "rewards": pooled_means(scores, weights).tolist(),
        "reward_std": scores.std(axis=0).tolist(),
        "n_samples": len(outputs),
        "output": plan.task.point_output(outputs),
        "samples": [{"prompt": plan.task.prompt_record(p), "output": o, "rewards": s.tolist(),
                     **({} if weights is None else {"weights": [None if w is None else float(w[i]) for w in weights]})}
                    for i, (p, o, s) in enumerate(zip(prompts, outputs, scores))],
        "artifacts": _artifact_list(ctx.take_artifacts_used()),
        "timing": {"generate_s": round(generated - started, 4), "judge_s": round(judged - generated, 4)},
    }


def _artifact_list(used: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": artifact, **info} for artifact, info in used.items()]


def missing_cells(plan: Plan) -> int:
    cells, sha = CellStore(plan.out), data_sha(plan.task)
    return sum(not cells.is_finished(c, sha) for m in plan.methods for c in m.cell_ids)


def data_sha(task: Task) -> str | None:
    """The task's data fingerprint (text tasks hash every split), or None for tasks without data."""
    return getattr(task, "data_fingerprint", None)

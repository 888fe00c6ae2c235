"""Sweeping a run's cells on a Ray cluster (`mobench run --ray`).

The division of work keeps every artifact built once:

1. The driver (this process) prepares each method: what all of its preferences share (SFT policy,
   experts, Bone Soup backbones, value models, the β/α/γ selections) is trained or loaded here, once.
2. The missing cells go to Ray tasks, a method's cells split into as many chunks as the cluster runs
   tasks at once. Each task resolves the run again from its configuration, prepares its method from
   the stored artifacts, builds what its own preferences alone need (MORLHF's policy per μ, so those RL
   runs spread over the cluster; the artifact store's file locks keep any artifact from being built
   twice), and writes each cell and the method's record to the run directory as a local run does.
3. The driver assembles results.json from the cell files, so a Ray run and a local run of one command
   write the same results.

Workers must see the run directory and `$MOBENCH_HOME` on a shared filesystem with working file locks
(a single machine's cluster does); they start in the driver's working directory, with its MOBENCH_*,
HF_* and TRANSFORMERS_* environment. A cell's output depends only on its method, μ and seed, never on
which worker computed it or in what order. An interrupted driver keeps every cell a task has written.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobench.errors import MobenchError

FORWARDED_ENV_PREFIXES = ("MOBENCH_", "HF_", "TRANSFORMERS_")


@dataclass(frozen=True)
class RayOptions:
    """How to reach the cluster and what each task asks of it."""

    address: str | None = None  # None: RAY_ADDRESS if set, else a new local cluster on this machine
    gpus_per_task: float | None = None  # None: 1 when the cluster has GPUs, else 0
    cpus_per_task: float = 1.0

    def __post_init__(self) -> None:
        if self.gpus_per_task is not None and not (0 <= self.gpus_per_task and math.isfinite(self.gpus_per_task)):
            raise MobenchError(f"ray_gpus must be a number >= 0, got {self.gpus_per_task!r}")
        if not (self.cpus_per_task > 0 and math.isfinite(self.cpus_per_task)):
            raise MobenchError(f"ray_cpus must be a number > 0, got {self.cpus_per_task!r}")


def check_ray_installed() -> None:
    """Fail before any work when `--ray` is asked for and Ray is missing."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise MobenchError("--ray needs Ray, which is not installed: pip install -c constraints.txt ray "
                           "(or the mobench[ray] extra), or drop --ray to run locally")


def execute_on_ray(plan: Any, store: Any, reporter: Any, options: RayOptions) -> dict[str, float]:
    """Compute every missing cell of `plan` on Ray; returns worker seconds spent per method key."""
    import ray

    from mobench.cells import CellStore
    from mobench.context import RunContext
    from mobench.registry import loaded_plugin_targets
    from mobench.runner import _remove_leftovers, data_sha

    cells = CellStore(plan.out)
    _remove_leftovers(store, cells, reporter)
    sha = data_sha(plan.task)
    pending: list[tuple[Any, list[int]]] = []
    for planned in plan.methods:
        missing = [i for i, cell_id in enumerate(planned.cell_ids) if not cells.is_finished(cell_id, sha)]
        if not missing and cells.has_method(planned.method_id):
            reporter.log(f"{planned.key}: all {len(planned.cell_ids)} cells finished, nothing to compute")
        else:
            pending.append((planned, missing))
    if not pending:
        return {}

    started_here = not ray.is_initialized()
    if started_here:
        _init(options, store)
    refs: dict[Any, tuple[str, int]] = {}
    try:
        # The cluster is checked before any training: a GPU request it cannot meet fails now.
        gpus = options.gpus_per_task
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        slots = _slots(ray.cluster_resources(), gpus, options.cpus_per_task)
        memo: dict[str, Any] = {}
        for planned, _ in pending:  # what every preference shares: trained here, once, before any task starts
            ctx = RunContext(plan.task, plan.config.seed, store, allow_training=plan.config.allow_training,
                             reporter=reporter, memo=memo)
            planned.method.prepare(ctx)
        memo.clear()
        remote = ray.remote(num_gpus=gpus, num_cpus=options.cpus_per_task, max_retries=0)(compute_cells)
        config = dataclasses.replace(plan.config, ray=None)
        for planned, missing in pending:
            for chunk in _chunks(missing, slots):
                ref = remote.remote(config, planned.key, chunk, str(store.home), loaded_plugin_targets(), os.getcwd())
                refs[ref] = (planned.key, len(chunk))
        n_cells = sum(len(missing) for _, missing in pending)
        reporter.log(f"ray: {len(refs)} task(s) for {n_cells} cell(s), up to {slots} at once "
                     f"({gpus:g} GPU and {options.cpus_per_task:g} CPU each)")
        timing: dict[str, float] = {}
        with reporter.bar("cells on ray", total=n_cells) as bar:
            waiting = list(refs)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                key, n = refs[done[0]]
                timing[key] = round(timing.get(key, 0.0) + _result(ray, done[0]), 3)
                bar.advance(n)
        return timing
    except BaseException:  # an error or Ctrl-C: stop the other tasks (their written cells stay)
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


def _init(options: RayOptions, store: Any) -> None:
    import ray

    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    env["MOBENCH_HOME"] = str(Path(store.home).resolve())
    try:
        ray.init(address=options.address, runtime_env={"env_vars": env}, include_dashboard=False,
                 log_to_driver=True, logging_level="WARNING")
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = options.address or os.environ.get("RAY_ADDRESS") or "a new local cluster"
        raise MobenchError(f"cannot start or reach Ray at {where}: {exc}") from None


def _slots(resources: dict[str, float], gpus: float, cpus: float) -> int:
    """How many tasks the cluster runs at once."""
    by_cpu = int(resources.get("CPU", 0) // cpus)
    if gpus > 0:
        have = resources.get("GPU", 0)
        if have < gpus:
            raise MobenchError(f"each Ray task asks for {gpus:g} GPU but the cluster has {have:g}; "
                               "set --ray-gpus 0 to run on CPUs")
        return max(1, min(by_cpu, int(have // gpus)))
    if by_cpu < 1:
        raise MobenchError(f"each Ray task asks for {cpus:g} CPU but the cluster has {resources.get('CPU', 0):g}")
    return by_cpu


def _chunks(indices: list[int], slots: int) -> list[list[int]]:
    """`indices` in up to `slots` contiguous, near-equal chunks (one for a method with nothing missing:
    its task writes the method's record)."""
    if not indices:
        return [[]]
    n = min(slots, len(indices))
    size, extra = divmod(len(indices), n)
    chunks, start = [], 0
    for k in range(n):
        end = start + size + (1 if k < extra else 0)
        chunks.append(indices[start:end])
        start = end
    return chunks


def _result(ray: Any, ref: Any) -> float:
    """A finished task's worker seconds; its error as this process's (a MobenchError stays one line)."""
    try:
        return float(ray.get(ref))
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, MobenchError):
            raise MobenchError(str(cause)) from None
        raise


def compute_cells(config: Any, key: str, indices: list[int], home: str, plugins: list[str], cwd: str) -> float:
    """One Ray task: prepare method `key` of the run from the stored artifacts and compute the cells at
    `indices` of its preferences, writing each as it finishes; returns the seconds it took."""
    from mobench.artifacts import ArtifactStore
    from mobench.cells import CellStore
    from mobench.context import RunContext
    from mobench.progress import Reporter
    from mobench.registry import load_plugin, load_plugins
    from mobench.runner import _artifact_list, _run_cell, resolve
    from mobench.versions import device_description

    started = time.perf_counter()
    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative paths in the task spec (local datasets) mean what they meant to the driver
    load_plugins()
    for target in plugins:
        load_plugin(target)
    plan = resolve(config, create_out=False)
    planned = next(m for m in plan.methods if m.key == key)
    ctx = RunContext(plan.task, config.seed, ArtifactStore(Path(home)), allow_training=config.allow_training,
                     reporter=Reporter(quiet=True))
    planned.method.prepare(ctx)
    cells = CellStore(plan.out)
    cells.write_method(planned.method_id, {
        "method_id": planned.method_id,
        "name": planned.method.name,
        "params": planned.method.resolved_params(),
        "artifacts": _artifact_list(ctx.take_artifacts_used()),
        "details": ctx.details,
        "device": device_description(),
    })
    prompts = plan.task.evaluation_prompts()
    for index in indices:
        mu = planned.prefs[index]
        planned.method.prepare_preference(ctx, mu)
        ctx.take_artifacts_used()  # as in a local run, a cell lists what its generator uses
        cells.write_cell(planned.cell_ids[index], _run_cell(plan, planned, ctx, prompts, mu))
    return time.perf_counter() - started

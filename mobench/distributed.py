"""Sweeping a run's cells on a Ray cluster (`mobench run --ray`).

Two stages of Ray tasks, so every artifact is built once and this process never loads a model:

1. One task per method prepares it: what all of its preferences share (SFT policy, experts, Bone
   Soup backbones, value models, the β/α/γ selections) is trained or loaded. The methods' tasks run
   side by side; an artifact two of them need is built by one while the other waits on the artifact
   store's file lock.
2. When every method is prepared, its missing cells go out in as many chunks as the cluster runs tasks
   at once. A chunk resolves the run again from its configuration, prepares its method from the store,
   builds what its own preferences alone need (MORLHF's policy per μ, so those RL runs spread over the
   cluster) and writes the method's record and each cell to the run directory as a local run does.
   (MORLHF shares nothing it must prepare: run alone, its SFT policy is trained by the first chunk that
   needs it while the others wait on the lock; with sft, rs or any other method it is ready by then.)

This process then assembles results.json from the cell files as a local run does: the same cells, the
same results, except that `device` names what the workers saw (a worker sees only the GPUs Ray gave it).

Workers need the run directory and `$MOBENCH_HOME` on a shared filesystem with working file locks (one
machine's cluster has them) and the same mobench installed; they get this process's working directory,
its MOBENCH_*, HF_* (tokens included: gated hub models need them) and TRANSFORMERS_* variables and its
`--plugin`s. A task asking for no GPU sees none. An interrupted or failed run cancels the remaining
tasks and keeps every cell already written.
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
MIN_RESOURCE = 1e-4  # Ray's granularity for fractional CPU and GPU requests


@dataclass(frozen=True)
class RayOptions:
    """How to reach the cluster and what each task asks of it."""

    # None: RAY_ADDRESS if set, else a cluster started on this machine with `ray start`, else a new local
    # one (Ray's own rule); "local" always starts a new one; "auto" joins this machine's running one.
    address: str | None = None
    gpus_per_task: float | None = None  # None: 1 when the cluster has GPUs, else 0
    cpus_per_task: float = 1.0

    def __post_init__(self) -> None:
        if self.address is not None and not self.address.strip():
            raise MobenchError("ray_address is empty; leave it out to use RAY_ADDRESS or a local cluster")
        gpus = self.gpus_per_task
        if gpus is not None and not (math.isfinite(gpus) and (gpus == 0 or gpus >= MIN_RESOURCE)):
            raise MobenchError(f"ray_gpus must be 0 or a number >= {MIN_RESOURCE:g}, got {gpus!r}")
        if not (math.isfinite(self.cpus_per_task) and self.cpus_per_task >= MIN_RESOURCE):
            raise MobenchError(f"ray_cpus must be a number >= {MIN_RESOURCE:g}, got {self.cpus_per_task!r}")


def check_ray_installed() -> None:
    """Fail before any work when `--ray` is asked for and Ray is missing."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise MobenchError("--ray needs Ray, which is not installed: pip install -c constraints.txt ray "
                           "(or the mobench[ray] extra), or drop --ray to run locally")


def execute_on_ray(plan: Any, store: Any, reporter: Any, options: RayOptions) -> dict[str, float]:
    """Compute every missing cell of `plan` on Ray; returns worker seconds spent per method key (its
    preparation included)."""
    from mobench.cells import CellStore
    from mobench.registry import loaded_plugin_targets
    from mobench.runner import _remove_leftovers, pending_methods

    cells = CellStore(plan.out)
    _remove_leftovers(store, cells, reporter)
    pending = [(planned.key, missing) for planned, missing in pending_methods(plan, cells, reporter)]
    if not pending:
        return {}

    # The first failure is reported; the tasks cancelled after it need not print theirs at shutdown.
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        _init(options, store, log_to_driver=not reporter.quiet)
    refs: dict[Any, tuple[str, int]] = {}
    try:
        gpus = options.gpus_per_task
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        slots = _slots(_alive_nodes(ray), gpus, options.cpus_per_task)  # checked before anything trains
        task_options: dict[str, Any] = {"num_gpus": gpus, "num_cpus": options.cpus_per_task, "max_retries": 0}
        if gpus == 0:  # Ray leaves CUDA_VISIBLE_DEVICES alone for such tasks: they would all share GPU 0
            task_options["runtime_env"] = {"env_vars": {"CUDA_VISIBLE_DEVICES": ""}}
        prepare_task = ray.remote(prepare_method).options(**task_options)
        cells_task = ray.remote(compute_cells).options(**task_options)
        # Absolute paths: a worker's working directory is not guaranteed to be this one.
        prefs_file = plan.config.prefs_file
        config = dataclasses.replace(plan.config, ray=None, out=Path(plan.out).resolve(),
                                     prefs_file=Path(prefs_file).resolve() if prefs_file is not None else None)
        common = (str(Path(store.home).resolve()), loaded_plugin_targets(), os.getcwd(), reporter.quiet)
        timing: dict[str, float] = {}

        reporter.log(f"ray: preparing {len(pending)} method(s), up to {slots} task(s) at once "
                     f"({gpus:g} GPU and {options.cpus_per_task:g} CPU each)")
        refs = {prepare_task.remote(config, key, *common): (key, 0) for key, _ in pending}
        _collect(ray, refs, timing, bar=None)

        n_cells = sum(len(missing) for _, missing in pending)
        refs = {cells_task.remote(config, key, chunk, *common): (key, len(chunk))
                for key, missing in pending for chunk in _chunks(missing, slots)}
        reporter.log(f"ray: {len(refs)} task(s) for {n_cells} cell(s)")
        with reporter.bar("cells on ray", total=n_cells) as bar:
            _collect(ray, refs, timing, bar)
        return timing
    except BaseException:  # an error or Ctrl-C: stop the other tasks (the cells they wrote stay)
        # A cluster this command started goes down with ray.shutdown() below, workers and all. Cancelling
        # first raced task replies inside Ray 2.60 (a fatal "Tried to complete task that was not pending"
        # on Ctrl-C), so only tasks on a cluster we joined are cancelled, and without force.
        if not started_here:
            for ref in refs:
                try:
                    ray.cancel(ref)
                except Exception:  # a lost connection must not hide the error that got us here
                    pass
        raise
    finally:
        if started_here:
            ray.shutdown()


def _init(options: RayOptions, store: Any, log_to_driver: bool) -> None:
    import ray

    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    env["MOBENCH_HOME"] = str(Path(store.home).resolve())
    try:
        ray.init(address=options.address, runtime_env={"env_vars": env}, include_dashboard=False,
                 log_to_driver=log_to_driver, logging_level="WARNING")
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = options.address or os.environ.get("RAY_ADDRESS") or "this machine"
        raise MobenchError(f"cannot start or reach Ray at {where}: {exc}") from None


def _alive_nodes(ray: Any) -> list[dict[str, float]]:
    return [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]


def _slots(nodes: list[dict[str, float]], gpus: float, cpus: float) -> int:
    """How many tasks the cluster runs at once, counted node by node (a task runs on one node)."""
    total = 0
    for resources in nodes:
        fit = int(resources.get("CPU", 0) // cpus)
        if gpus > 0:
            fit = min(fit, int(resources.get("GPU", 0) // gpus))
        total += fit
    if total < 1:
        have = "; ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU" for r in nodes) or "no live node"
        hint = " (--ray-gpus 0 runs on CPUs)" if gpus > 0 else ""
        raise MobenchError(f"each Ray task asks for {cpus:g} CPU and {gpus:g} GPU, which no node of the cluster "
                           f"has ({have}){hint}")
    return total


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


def _collect(ray: Any, refs: dict[Any, tuple[str, int]], timing: dict[str, float], bar: Any) -> None:
    """Wait for every task; add its seconds to its method's and its cells to the bar."""
    waiting = list(refs)
    while waiting:
        done, waiting = ray.wait(waiting, num_returns=1)
        key, n = refs[done[0]]
        timing[key] = round(timing.get(key, 0.0) + _result(ray, done[0], key), 3)
        if bar is not None:
            bar.advance(n)


def _result(ray: Any, ref: Any, key: str) -> float:
    """A finished task's seconds; its failure as a one-line error of this process."""
    try:
        return float(ray.get(ref))
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, MobenchError):
            raise MobenchError(str(cause)) from None
        if isinstance(cause, OSError) and cause.strerror:  # a full disk: the CLI's environment message
            raise OSError(cause.errno, cause.strerror, cause.filename) from None
        what = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc).strip().splitlines()[-1]
        raise MobenchError(f"a Ray task of {key} failed: {what}") from None
    except ray.exceptions.RayError as exc:  # a worker killed (out of memory), a node lost
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MobenchError(f"a Ray task of {key} did not finish ({type(exc).__name__}: {first}); the cells "
                           "already written are kept, rerun to resume") from None


def _worker_plan(config: Any, key: str, home: str, plugins: list[str], cwd: str, quiet: bool) -> tuple[Any, Any, Any]:
    """(plan, planned method, context) of method `key`, rebuilt in a Ray worker."""
    from mobench.artifacts import ArtifactStore
    from mobench.context import RunContext
    from mobench.progress import Reporter
    from mobench.registry import load_plugin, load_plugins
    from mobench.runner import resolve

    if os.path.isdir(cwd):
        os.chdir(cwd)  # relative paths in a task spec (local datasets) mean what they meant to the driver
    load_plugins()
    for target in plugins:
        load_plugin(target)
    plan = resolve(config, create_out=False)
    planned = next(m for m in plan.methods if m.key == key)
    ctx = RunContext(plan.task, config.seed, ArtifactStore(Path(home)), allow_training=config.allow_training,
                     reporter=Reporter(quiet=quiet))
    return plan, planned, ctx


def prepare_method(config: Any, key: str, home: str, plugins: list[str], cwd: str, quiet: bool) -> float:
    """Stage 1 (a Ray task): build what every preference of method `key` shares; returns its seconds."""
    started = time.perf_counter()
    _, planned, ctx = _worker_plan(config, key, home, plugins, cwd, quiet)
    planned.method.prepare(ctx)
    return time.perf_counter() - started


def compute_cells(config: Any, key: str, indices: list[int], home: str, plugins: list[str], cwd: str,
                  quiet: bool) -> float:
    """Stage 2 (a Ray task): compute the cells at `indices` of method `key`'s preferences, writing the
    method's record and each cell as it finishes; returns its seconds."""
    from mobench.cells import CellStore
    from mobench.runner import _run_cell, write_method_record

    started = time.perf_counter()
    plan, planned, ctx = _worker_plan(config, key, home, plugins, cwd, quiet)
    planned.method.prepare(ctx)
    cells = CellStore(plan.out)
    # Every chunk of a method writes the same record (atomically); only `device` can differ, on a
    # cluster of unlike nodes.
    write_method_record(cells, planned, ctx)
    prompts = plan.task.evaluation_prompts()
    for index in indices:
        mu = planned.prefs[index]
        planned.method.prepare_preference(ctx, mu)
        ctx.take_artifacts_used()  # as in a local run, a cell lists what its generator uses
        cells.write_cell(planned.cell_ids[index], _run_cell(plan, planned, ctx, prompts, mu))
    return time.perf_counter() - started

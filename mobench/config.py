"""Run configuration from the command line and an optional YAML file (command line wins).

YAML form:

    task: quad
    methods:
      - rs
      - bone-soup:beta=0.6
      - bone-soup: {beta: 0.7, alpha: 0.2}
    grid: 11            # or: prefs: prefs.json
    seed: 0
    out: results/quad
    ray: true           # sweep on a Ray cluster (optional: ray_address, ray_gpus, ray_cpus)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobench.errors import MobenchError, did_you_mean
from mobench.fileio import read_user_text
from mobench.params import split_top_level
from mobench.runner import MethodRequest, RunConfig

CONFIG_KEYS = ("task", "methods", "grid", "prefs", "seed", "out", "no_train", "ctrl_ties", "limit", "offline",
               "ray", "ray_address", "ray_gpus", "ray_cpus")


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    text = read_user_text(path, f"config file {str(path)!r}")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        raise MobenchError(f"config file {str(path)!r} is not valid YAML{where}: {problem or first}") from None
    if not isinstance(data, dict):
        raise MobenchError(f"config file {str(path)!r} must be a mapping of {', '.join(CONFIG_KEYS)}")
    for key in data:
        if key not in CONFIG_KEYS:
            raise MobenchError(f"unknown key {key!r} in config file {str(path)!r}"
                               f"{did_you_mean(str(key), CONFIG_KEYS)}; accepted: {', '.join(CONFIG_KEYS)}")
    return data


def _method_requests(value: Any, where: str) -> list[MethodRequest]:
    if isinstance(value, str):
        return [MethodRequest.from_spec(spec) for spec in split_top_level(value) if spec]
    if not isinstance(value, list):
        raise MobenchError(f"{where}: methods must be a comma-separated string or a list")
    requests = []
    for item in value:
        if isinstance(item, str):
            requests.append(MethodRequest.from_spec(item.strip()))
        elif isinstance(item, dict) and len(item) == 1:
            ((name, params),) = item.items()
            params = params or {}
            if not isinstance(params, dict):
                raise MobenchError(f"{where}: parameters of method {name!r} must be a mapping")
            key = str(name) + "".join(f":{k}={v}" for k, v in params.items())
            requests.append(MethodRequest(key=key, spec=str(name), overrides=dict(params)))
        else:
            raise MobenchError(f"{where}: each method is a spec string or a one-key mapping {{name: {{params}}}}")
    return requests


def build_run_config(config_file: Path | None, **cli: Any) -> RunConfig:
    data: dict[str, Any] = _load_yaml(config_file) if config_file is not None else {}
    where = f"config file {str(config_file)!r}" if config_file is not None else "--methods"
    if config_file is not None and isinstance(data.get("prefs"), str):
        # A preference file named in a config is found beside the config (`out` stays relative to the
        # working directory: it is where results go, not an input).
        prefs = Path(data["prefs"]).expanduser()
        data["prefs"] = str(prefs if prefs.is_absolute() else Path(config_file).parent / prefs)
    if cli.get("ray") is None and any(cli.get(k) is not None for k in ("ray_address", "ray_gpus", "ray_cpus")):
        cli["ray"] = True  # a --ray-* option asks for Ray, whatever the file says
    for key, value in cli.items():
        if value is not None:
            data[key] = value
    # --grid and --prefs are one choice: the command line's replaces the file's.
    for given, other in (("grid", "prefs"), ("prefs", "grid")):
        if cli.get(given) is not None and cli.get(other) is None:
            data.pop(other, None)
    if not data.get("task"):
        raise MobenchError("no task given: use --task NAME (see `mobench ls tasks`)")
    if not data.get("methods"):
        raise MobenchError("no methods given: use --methods a,b (see `mobench ls methods`)")
    for key in ("grid", "seed", "limit"):
        if data.get(key) is not None and (isinstance(data[key], bool) or not isinstance(data[key], int)):
            raise MobenchError(f"{key} must be an integer, got {data[key]!r}")
    for key in ("task", "prefs", "out"):
        if key in data and data[key] is not None and not isinstance(data[key], (str, Path)):
            raise MobenchError(f"{key} must be a string, got {data[key]!r}")
    for key in ("no_train", "offline"):
        if key in data and not isinstance(data[key], bool):
            raise MobenchError(f"{key} must be true or false, got {data[key]!r}")
    ray = _ray_options(data)
    ctrl_ties = data.get("ctrl_ties", "strict")
    if ctrl_ties not in ("strict", "ignore"):
        raise MobenchError(f"ctrl_ties must be 'strict' or 'ignore', got {ctrl_ties!r}")
    return RunConfig(
        task=str(data["task"]),
        methods=_method_requests(data["methods"], where),
        grid=data.get("grid"),
        prefs_file=Path(data["prefs"]) if data.get("prefs") is not None else None,
        seed=int(data.get("seed", 0)),
        out=Path(data["out"]) if data.get("out") is not None else None,
        allow_training=not bool(data.get("no_train", False)),
        ctrl_ties=ctrl_ties,
        limit=data.get("limit"),
        offline=bool(data.get("offline", False)),
        ray=ray,
    )


def _ray_options(data: dict[str, Any]) -> Any:
    """RayOptions when the run goes to Ray (`ray: true`, or any ray_* key), else None."""
    from mobench.distributed import RayOptions

    if "ray" in data and not isinstance(data["ray"], bool):
        raise MobenchError(f"ray must be true or false, got {data['ray']!r}")
    extras = [key for key in ("ray_address", "ray_gpus", "ray_cpus") if data.get(key) is not None]
    if not data.get("ray") and not extras:
        return None
    if data.get("ray") is False and extras:
        raise MobenchError(f"{extras[0]} is set but ray is false")
    address = data.get("ray_address")
    if address is not None and not isinstance(address, str):
        raise MobenchError(f"ray_address must be a string, got {address!r}")
    for key in ("ray_gpus", "ray_cpus"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise MobenchError(f"{key} must be a number, got {value!r}")
    gpus, cpus = data.get("ray_gpus"), data.get("ray_cpus")
    return RayOptions(address=address, gpus_per_task=None if gpus is None else float(gpus),
                      cpus_per_task=1.0 if cpus is None else float(cpus))

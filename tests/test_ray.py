"""`mobench run --ray`: cells swept by Ray tasks on a new local cluster (`local`: never a developer's
running one) write what a local run writes."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

PLUGIN = str(REPO / "tests" / "micro_text.py")


def _without_device(run: str) -> str:
    """results.json as text, but for `device`: workers asking for no GPU see none, while the local run in
    this process would name a GPU on a machine that has one."""
    data = json.loads(Path(run, "results.json").read_text())
    data.pop("device")
    return json.dumps(data, sort_keys=True)
MICRO = "micro-text:sft_steps=30:rl_steps=4:n_test=6:samples=1:max_new_tokens=10"


def test_quad_on_ray_writes_the_bytes_of_a_local_run(cli, isolated, tmp_path):
    assert cli("run", "--task", "quad", "--methods", "rs,bone-soup,morlhf", "--out", "local").code == 0
    config = tmp_path / "run.yaml"
    config.write_text("task: quad\nmethods: [rs, bone-soup, morlhf]\nout: on-ray\nray: true\nray_cpus: 1\n"
                      "ray_address: local\nray_gpus: 0\n")
    result = cli("run", "--config", str(config))
    assert result.code == 0, result.err
    assert "ray: " in result.err and "task(s) for 33 cell(s)" in result.err
    assert _without_device("on-ray") == _without_device("local")
    again = cli("run", "--config", str(config))  # finished cells are not sent again
    assert again.code == 0 and "0 of 33 cells to compute" in again.err and "task(s)" not in again.err


def test_an_interrupted_ray_sweep_resumes_to_what_a_local_sweep_writes(cli, isolated, tmp_path):
    """Everything is trained by Ray tasks (the SFT policy by a method's preparation, MORLHF's policy per μ
    by the chunk that sweeps it). Ctrl-C cancels the tasks and keeps the cells written; the rerun
    finishes the rest; a local sweep that may not train then finds every artifact and writes the same
    results."""
    args = ["--plugin", PLUGIN, "run", "--task", MICRO, "--methods", "sft,morlhf", "--grid", "5",
            "--ray-address", "local", "--ray-gpus", "0"]
    proc = subprocess.Popen([sys.executable, "-m", "mobench.cli", *args, "--out", "on-ray"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    cells = tmp_path / "on-ray" / "cells"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (cells.is_dir() and len(list(cells.glob("*.json"))) >= 6):
        time.sleep(0.05)  # SFT's 5 cells and MORLHF's first: its other policies are still training
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err and "Traceback" not in err
    saved = len(list(cells.glob("*.json")))
    assert 6 <= saved < 10 and not (tmp_path / "on-ray" / "results.json").exists()

    resumed = cli(*args, "--out", "on-ray")
    assert resumed.code == 0, resumed.err
    assert f"{10 - saved} of 10 cells to compute" in resumed.err
    local = cli(*args[:-4], "--out", "local", "--no-train")
    assert local.code == 0, local.err
    assert _without_device("on-ray") == _without_device("local")
    morlhf = json.loads(Path("local/results.json").read_text())["methods"]["morlhf"]
    assert [a["kind"] for a in morlhf["artifacts"]].count("rl-policy") == 5


def test_a_worker_error_is_one_line_and_cluster_problems_fail_before_training(cli, isolated):
    # The SFT policy exists; MORLHF's policies do not, and --no-train forbids the workers to build them.
    assert cli("--plugin", PLUGIN, "-q", "run", "--task", MICRO, "--methods", "sft", "--grid", "3").code == 0
    failed = cli("--plugin", PLUGIN, "-q", "run", "--task", MICRO, "--methods", "morlhf", "--grid", "3",
                 "--no-train", "--ray-address", "local", "--ray-gpus", "0")
    assert failed.code == 2 and "training is forbidden" in failed.err and "Traceback" not in failed.err
    built = sorted(p.name for p in (isolated / "artifacts").iterdir())
    no_gpu = cli("run", "--task", "quad", "--methods", "rs", "--out", "gpu", "--ray-address", "local",
                 "--ray-gpus", "1024")
    assert no_gpu.code == 2 and "asks for 1 CPU and 1024 GPU, which no node of the cluster has" in no_gpu.err
    assert sorted(p.name for p in (isolated / "artifacts").iterdir()) == built  # quad's experts were not trained
    for value in ("nan", "-1", "0.00001"):
        bad = cli("run", "--task", "quad", "--methods", "rs", "--ray-gpus", value)
        assert bad.code == 2 and "ray_gpus must be 0 or a number >= 0.0001" in bad.err


def test_ray_missing_is_a_clear_error_before_any_work(cli, isolated, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    result = cli("run", "--task", "quad", "--methods", "rs", "--out", "never", "--ray")
    assert result.code == 2 and "--ray needs Ray" in result.err
    assert not Path("never").exists()


@pytest.mark.parametrize("text, message", [
    ("ray: yes-please", "ray must be true or false"),
    ("ray: false\nray_gpus: 1", "ray_gpus is set but ray is false"),
    ("ray_cpus: lots", "ray_cpus must be a number"),
    ("ray_cpus: 0", "ray_cpus must be a number >= 0.0001"),
    ("ray_address: ' '", "ray_address is empty"),
])
def test_bad_ray_settings_in_a_config_are_one_line(cli, isolated, tmp_path, text, message):
    config = tmp_path / "run.yaml"
    config.write_text(f"task: quad\nmethods: [rs]\n{text}\n")
    result = cli("run", "--config", str(config))
    assert result.code == 2 and message in result.err


def test_a_ray_option_on_the_command_line_wins_over_ray_false_in_the_file(tmp_path):
    from mobench.config import build_run_config

    config = tmp_path / "run.yaml"
    config.write_text("task: quad\nmethods: [rs]\nray: false\n")
    assert build_run_config(config).ray is None
    options = build_run_config(config, ray_gpus=0.5).ray
    assert options is not None and options.gpus_per_task == 0.5 and options.cpus_per_task == 1.0
    assert build_run_config(None, task="quad", methods="rs", ray_address="auto").ray.address == "auto"

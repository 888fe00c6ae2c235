"""`mobench run` end to end on quad: outputs, resume without recomputation, interruption, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import REPO

QUAD_METHODS = "rs,bone-soup,morlhf"


def _tree_state(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_run_writes_results_table_and_plot(cli, tmp_path):
    result = cli("run", "--task", "quad", "--methods", QUAD_METHODS)
    assert result.code == 0, result.err
    out = tmp_path / "results" / "quad"  # the default run directory, under the working directory
    data = json.loads((out / "results.json").read_text())
    assert list(data["methods"]) == ["rs", "bone-soup", "morlhf"]
    assert data["task"]["reference_point"] == [-10.0, -25.0]
    assert data["versions"]["torch"].startswith("2.")
    from conftest import git_head

    head = git_head(REPO)
    if head is not None:  # the code that computed it, when run from a checkout git reads
        assert data["source"]["commit"] == head and isinstance(data["source"]["modified"], bool)
    rs = data["methods"]["rs"]
    assert set(rs["metrics"]) == {"hv", "ip", "sparsity", "spacing", "front", "ctrl"}
    assert [p["mu"][0] for p in rs["points"]] == [round(0.1 * k, 10) for k in range(11)]
    middle = rs["points"][5]
    assert middle["output"] == [2.0, 0.0]
    assert {a["kind"] for a in rs["artifacts"]} == {"rl-policy"}
    assert rs["uncertainty"] is None  # quad has one prompt: nothing to resample
    assert (out / "pareto.png").stat().st_size > 10_000
    assert "**" in (out / "table.md").read_text()
    assert "HV" in result.out and "morlhf" in result.out


def test_rerun_recomputes_nothing(cli, tmp_path, isolated):
    args = ("run", "--task", "quad", "--methods", QUAD_METHODS, "--out", str(tmp_path / "run"))
    assert cli(*args).code == 0
    first = (tmp_path / "run" / "results.json").read_bytes()
    before = {**_tree_state(tmp_path / "run" / "cells"), **_tree_state(isolated)}
    again = cli(*args)
    assert again.code == 0
    assert "0 of 33 cells to compute" in again.err
    assert {**_tree_state(tmp_path / "run" / "cells"), **_tree_state(isolated)} == before
    assert (tmp_path / "run" / "results.json").read_bytes() == first


def test_changed_grid_reuses_finished_cells(cli, tmp_path):
    assert cli("run", "--task", "quad", "--methods", "rs", "--grid", "3", "--out", "r").code == 0
    result = cli("run", "--task", "quad", "--methods", "rs", "--grid", "5", "--out", "r")
    assert "2 of 5 cells to compute" in result.err  # μ₁ = 0, 0.5, 1 are shared


def test_same_command_same_bytes_with_fresh_stores(cli, tmp_path, monkeypatch):
    outputs = []
    for attempt in range(2):
        monkeypatch.setenv("MOBENCH_HOME", str(tmp_path / f"home{attempt}"))
        assert cli("run", "--task", "quad", "--methods", QUAD_METHODS, "--out", f"run{attempt}").code == 0
        outputs.append((tmp_path / f"run{attempt}" / "results.json").read_bytes())
    assert outputs[0] == outputs[1]


def test_yaml_config_and_typed_method_parameters(cli, tmp_path):
    (tmp_path / "run.yaml").write_text(textwrap.dedent("""
        task: quad
        methods:
          - rs
          - bone-soup: {beta: 0.6, alpha: 0}
        grid: 3
        out: from-yaml
    """))
    assert cli("run", "--config", "run.yaml", "--seed", "0").code == 0
    data = json.loads((tmp_path / "from-yaml" / "results.json").read_text())
    assert list(data["methods"]) == ["rs", "bone-soup:beta=0.6:alpha=0"]
    bone = data["methods"]["bone-soup:beta=0.6:alpha=0"]
    assert bone["params"]["beta"] == 0.6 and bone["params"]["alpha"] == 0.0
    assert bone["points"][1]["output"][1] == round(-(5 / 11 + 5 / 7) / 2, 10)


def test_preference_file(cli, tmp_path):
    (tmp_path / "prefs.csv").write_text("# mu1, mu2\n0.25, 0.75\n0.75, 0.25\n")
    assert cli("run", "--task", "quad", "--methods", "morlhf", "--prefs", "prefs.csv", "--out", "p").code == 0
    data = json.loads((tmp_path / "p" / "results.json").read_text())
    assert [p["mu"] for p in data["methods"]["morlhf"]["points"]] == [[0.25, 0.75], [0.75, 0.25]]
    assert data["config"]["preferences"].startswith("file:prefs.csv#")
    # The rows' hash, not the file name, tells preference sets apart (the leaderboard groups by it).
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "prefs.csv").write_text("0.5, 0.5\n")
    assert cli("run", "--task", "quad", "--methods", "morlhf", "--prefs", "other/prefs.csv", "--out", "q").code == 0
    other = json.loads((tmp_path / "q" / "results.json").read_text())
    assert other["config"]["preferences"] != data["config"]["preferences"]


SLOW_PLUGIN = '''
import time
from mobench.registry import methods
from mobench.methods.soups import RewardedSoups

@methods.register("slow-rs")
class SlowRewardedSoups(RewardedSoups):
    """Rewarded Soups that takes a while per preference (for interruption tests)."""

    def generator(self, ctx, mu):
        time.sleep(0.25)
        return super().generator(ctx, mu)
'''


def _start(tmp_path: Path, out: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mobench.cli", "--plugin", str(tmp_path / "slow.py"), "run", "--task", "quad",
         "--methods", "slow-rs,morlhf", "--grid", "21", "--out", out],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell's background job ignores SIGINT, and Python keeps an ignored SIGINT ignored: restore
        # the default so the test means the same under `cmd &` as in a terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_cells(folder: Path, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if folder.is_dir() and len(list(folder.glob("*.json"))) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} cells appeared in {folder}")


def test_killed_and_interrupted_runs_resume_to_the_same_results(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_PLUGIN)
    reference = _start(tmp_path, "reference")
    _, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err

    for sig, expected_code in ((signal.SIGKILL, -9), (signal.SIGINT, 130)):
        out = f"resumed-{sig.name}"
        proc = _start(tmp_path, out)
        _wait_for_cells(tmp_path / out / "cells", 4)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == expected_code, err
        if sig == signal.SIGINT:
            assert "rerun the same command to resume" in err and "Traceback" not in err
        saved = len(list((tmp_path / out / "cells").glob("*.json")))
        assert 4 <= saved < 42 and not (tmp_path / out / "results.json").exists()
        resumed = _start(tmp_path, out)
        _, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
        assert f"{42 - saved} of 42 cells to compute" in err
        assert (tmp_path / out / "results.json").read_bytes() == (tmp_path / "reference" / "results.json").read_bytes()


def test_a_selection_is_stored_and_not_searched_again(cli, tmp_path):
    (tmp_path / "no-train.yaml").write_text("no_train: true\n")
    spec = "bone-soup:alpha_select=[0,0.2]"
    assert cli("prepare", "--task", "quad", "--methods", "bone-soup").code == 0  # the backbones
    # Selecting α trains nothing, so --no-train allows it (and still forbids training); `prepare` stores it.
    assert cli("prepare", "--task", "quad", "--methods", "rs", "--config", "no-train.yaml").code != 0
    first = cli("prepare", "--task", "quad", "--methods", spec, "--config", "no-train.yaml")
    assert first.code == 0, first.err
    assert "alpha = 0.2: validation HV" in first.err
    # A run after `prepare`, with another grid, reads the stored selection instead of searching again.
    second = cli("run", "--task", "quad", "--methods", spec, "--grid", "3", "--out", "r")
    assert second.code == 0, second.err
    assert "validation HV" not in second.err
    entry = json.loads((tmp_path / "r" / "results.json").read_text())["methods"][spec]
    selection = entry["details"]["alpha_selection"]
    assert selection["chosen"] == entry["details"]["alpha"]
    assert [c["candidate"] for c in selection["candidates"]] == [0, 0.2]
    assert "selection" in {a["kind"] for a in entry["artifacts"]}


def test_damaged_run_files_are_computed_again_and_outputs_are_readable(cli, tmp_path):
    args = ("run", "--task", "quad", "--methods", "rs", "--grid", "3", "--out", "r")
    assert cli(*args).code == 0
    first = (tmp_path / "r" / "results.json").read_bytes()
    cell = sorted((tmp_path / "r" / "cells").glob("*.json"))[0]
    cell.write_text('{"mu": [0.5')  # torn by a disk error
    method = next((tmp_path / "r" / "methods").glob("*.json"))
    method.write_text("{")
    again = cli(*args)
    assert again.code == 0, again.err
    assert "1 of 3 cells to compute" in again.err
    assert (tmp_path / "r" / "results.json").read_bytes() == first
    # Written files are readable by the group and others, as files from open() would be (not mkstemp's 0600).
    from mobench.fileio import FILE_MODE  # 0o666 less the umask

    assert (tmp_path / "r" / "results.json").stat().st_mode & 0o044 == FILE_MODE & 0o044


def test_prepare_builds_morlhf_policies_for_the_sweep_it_is_given(cli, tmp_path):
    # MORLHF trains one policy per preference: prepare needs the run's grid to build them.
    assert cli("prepare", "--task", "quad", "--methods", "morlhf", "--grid", "3").code == 0
    ran = cli("run", "--task", "quad", "--methods", "morlhf", "--grid", "3", "--no-train", "--out", "m")
    assert ran.code == 0, ran.err
    refused = cli("run", "--task", "quad", "--methods", "morlhf", "--grid", "5", "--no-train", "--out", "m5")
    assert refused.code != 0 and "training is forbidden" in refused.err


def test_judge_finds_cells_reused_under_another_spelling(cli, tmp_path):
    assert cli("run", "--task", "quad", "--methods", "bone-soup", "--grid", "3", "--out", "j").code == 0
    # The same method spelled out: its cells are reused, and recorded under the new key.
    reused = cli("run", "--task", "quad", "--methods", "bone-soup:beta=0.7", "--grid", "3", "--out", "j")
    assert "0 of 3 cells to compute" in reused.err
    judged = cli("judge", "j", "--judges", "quadratic:center=[0,0]:curvature=[1,1]")
    assert judged.code == 0, judged.err
    report = json.loads(next((tmp_path / "j" / "judged").glob("*.json")).read_text())
    assert len(report["methods"]["bone-soup:beta=0.7"]["points"]) == 3


def test_an_unwritable_store_is_one_line(cli, tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("MOBENCH_HOME", str(tmp_path / "afile" / "home"))
    result = cli("run", "--task", "quad", "--methods", "rs", "--grid", "3", "--out", "u")
    assert result.code == 1 and "Traceback" not in result.err
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("error: Not a directory") and "afile" in last


def test_bone_soups_beta_search_is_not_repeated_for_other_alpha_candidates(cli):
    first = cli("prepare", "--task", "quad", "--methods", "bone-soup:beta_select=[0.6,0.7]:alpha_select=[0,0.1]")
    assert first.code == 0 and "beta = 0.7: validation HV" in first.err and "alpha = 0.1" in first.err
    second = cli("prepare", "--task", "quad", "--methods", "bone-soup:beta_select=[0.6,0.7]:alpha_select=[0,0.2]")
    assert second.code == 0 and "beta = " not in second.err and "alpha = 0.2: validation HV" in second.err
    third = cli("prepare", "--task", "quad", "--methods", "bone-soup:beta_select=[0.6,0.7]:select_fraction=0.5")
    assert third.code == 0 and "beta = 0.7: validation HV" in third.err  # other short runs: searched again

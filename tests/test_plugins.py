"""Third-party components plug in without edits to mobench: a file, a module, an entry point."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_subprocess

PLUGIN = '''
from mobench.method import Method
from mobench.registry import methods
from mobench.merging import task_arithmetic


@methods.register("sft-echo")
class SftEcho(Method):
    """The SFT starting point for every preference (a plugin used by the tests)."""

    def prepare(self, ctx):
        self.sft = ctx.sft_policy()

    def generator(self, ctx, mu):
        return ctx.task.generator(ctx, self.sft)
'''


def _write_plugin(folder: Path, module: str = "echo_plugin") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{module}.py"
    path.write_text(PLUGIN)
    return path


def _quad_outputs(plugin: Path, methods: str, method: str, out: Path) -> list:
    """The outputs of `method` in a 3-point quad run through the CLI with `plugin` loaded."""
    ran = run_subprocess("--plugin", str(plugin), "-q", "run", "--task", "quad", "--methods", methods,
                         "--grid", "3", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    results = json.loads((out / "results.json").read_text())
    return [p["output"] for p in results["methods"][method]["points"]]


def test_plugin_file_runs_through_the_cli(tmp_path):
    path = _write_plugin(tmp_path / "plugins")
    listed = run_subprocess("--plugin", str(path), "ls", "methods")
    assert listed.returncode == 0, listed.stderr
    assert "sft-echo" in listed.stdout and "SFT starting point" in listed.stdout
    assert _quad_outputs(path, "sft-echo,rs", "sft-echo", tmp_path / "run") == [[0.0, 0.0]] * 3


def test_the_readme_plugin_example_runs_as_written(tmp_path):
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Extending", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my_method.py"
    path.write_text(block)
    assert _quad_outputs(path, "my-method", "my-method", tmp_path / "run") == [[0.0, 0.0]] * 3


def test_a_plugin_class_missing_a_required_method_is_refused_by_name(tmp_path):
    path = tmp_path / "incomplete.py"
    path.write_text("from mobench.method import Method\nfrom mobench.registry import methods\n\n"
                    "@methods.register('half-done')\nclass HalfDone(Method):\n    \"\"\"No generator.\"\"\"\n")
    ran = run_subprocess("--plugin", str(path), "run", "--task", "quad", "--methods", "half-done")
    assert ran.returncode != 0 and "Traceback" not in ran.stderr
    assert "method 'half-done'" in ran.stderr and "does not implement generator" in ran.stderr


def test_plugin_module_from_environment(tmp_path):
    folder = tmp_path / "plugins"
    _write_plugin(folder)
    listed = run_subprocess("ls", "methods", env={"PYTHONPATH": str(folder), "MOBENCH_PLUGINS": "echo_plugin"})
    assert listed.returncode == 0, listed.stderr
    assert "sft-echo" in listed.stdout


def test_entry_point_plugin(tmp_path):
    """An installed distribution exposing the `mobench.plugins` group is picked up automatically."""
    site = tmp_path / "site"
    _write_plugin(site, "thirdparty_mobench")
    dist = site / "thirdparty_mobench-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-mobench\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mobench.plugins]\necho = thirdparty_mobench\n")
    listed = run_subprocess("ls", "methods", env={"PYTHONPATH": str(site)})
    assert listed.returncode == 0, listed.stderr
    assert "sft-echo" in listed.stdout


def test_broken_entry_point_is_a_clear_error(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    dist = site / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mobench.plugins]\nbroken = broken_plugin\n")
    listed = run_subprocess("ls", "methods", env={"PYTHONPATH": str(site)})
    assert listed.returncode == 2
    assert "plugin 'broken'" in listed.stderr and "boom" in listed.stderr
    assert "Traceback" not in listed.stderr


def test_duplicate_names_are_rejected(tmp_path):
    clash = tmp_path / "clash.py"
    clash.write_text(
        "from mobench.method import Method\nfrom mobench.registry import methods\n\n"
        "@methods.register('rs')\nclass Impostor(Method):\n    '''Not Rewarded Soups.'''\n")
    result = run_subprocess("--plugin", str(clash), "ls", "methods")
    assert result.returncode == 2
    assert "duplicate method name 'rs'" in result.stderr


def test_registry_rejects_duplicates_in_process():
    from mobench.errors import MobenchError
    from mobench.registry import Component, Registry

    registry: Registry = Registry("widget")

    @registry.register("a")
    class A(Component):
        """First."""

    with pytest.raises(MobenchError, match="duplicate widget name 'a'"):
        @registry.register("a")
        class B(Component):
            """Second."""


def test_ls_imports_no_torch_and_is_quick():
    code = ("import sys, time; t = time.perf_counter(); from mobench.cli import main\n"
            "import contextlib, io\n"
            "for kind in ('tasks', 'methods', 'judges'):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        assert main(['ls', kind]) == 0\n"
            "print(time.perf_counter() - t, 'torch' in sys.modules, 'transformers' in sys.modules)")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    seconds, torch_loaded, transformers_loaded = out.stdout.split()
    assert torch_loaded == "False" and transformers_loaded == "False"
    assert float(seconds) < 5.0


@pytest.mark.parametrize("kind, expected", [("tasks", ["quad", "quad3", "objectives"]),
                                            ("methods", ["rs", "bone-soup", "beta", "morlhf"]),
                                            ("judges", ["quadratic", "center"])])
def test_ls_lists_names_descriptions_and_parameters(cli, kind, expected):
    result = cli("ls", kind)
    assert result.code == 0, result.err
    for fragment in expected:
        assert fragment in result.out

"""Bad input: one line naming the problem, exit code 2, no traceback, nothing computed."""

from __future__ import annotations

from pathlib import Path

import pytest


QUAD_RUN = str(Path(__file__).resolve().parents[1] / "results" / "quad")  # the committed quad run


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.code == 2, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _nothing_computed(isolated: Path) -> bool:
    return not (isolated / "artifacts").exists()


def test_unknown_task_suggests(cli, isolated):
    result = cli("run", "--task", "qaud", "--methods", "rs")
    _assert_one_line_error(result, "unknown task 'qaud'", "did you mean 'quad'")
    _assert_one_line_error(cli("run", "--task", "QUAD", "--methods", "rs"), "did you mean 'quad'")


def test_unknown_method_suggests(cli, isolated):
    result = cli("run", "--task", "quad", "--methods", "rs,bone-sop")
    _assert_one_line_error(result, "unknown method 'bone-sop'", "'bone-soup'")
    assert _nothing_computed(isolated)


def test_unknown_parameter_suggests(cli, isolated):
    result = cli("run", "--task", "quad", "--methods", "bone-soup:bta=0.6")
    _assert_one_line_error(result, "unknown parameter 'bta'", "'beta'")


@pytest.mark.parametrize("spec, fragment", [
    ("bone-soup:beta=abc", "expected a number"),
    ("bone-soup:beta=nan", "finite"),
    ("bone-soup:alpha=inf", "finite"),
    ("bone-soup:beta=1.5", "beta must lie in"),
    ("bone-soup:alpha=-1", "alpha must be >= 0"),
    ("bone-soup:beta", "expected key=value"),
])
def test_bad_parameter_values(cli, spec, fragment):
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", spec), fragment)


def test_beta_below_one_over_n_is_checked_against_the_task(cli):
    _assert_one_line_error(cli("run", "--task", "quad3", "--methods", "bone-soup:beta=0.3"), "(1/n, 1)")


def test_method_listed_twice(cli):
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs,rs"), "listed twice")


@pytest.mark.parametrize("content, suffix, fragment", [
    ("[[0.5, 0.5], [0.2, 0.9]]", ".json", "sums to 1.1"),
    ("[[0.5, 0.5], [1.5, -0.5]]", ".json", "negative weight"),
    ("[[0.5, NaN]]", ".json", "NaN"),
    ("0.5,0.5\n0.5,nan\n", ".csv", "NaN"),
    ("[[0.5, 0.5, 0.0]]", ".json", "has 3 weights, expected 2"),
    ("[[0.5, 0.5]", ".json", "malformed"),
    ("0.5,abc\n", ".csv", "row 1 holds 'abc', not a number"),
    ("mu1,mu2\n0.5,0.5\n", ".csv", "a header row? leave it out"),
    ("{a: [1, 2}", ".yaml", "malformed"),
    ("[[0.5, 0.5], [0.5, 0.5]]", ".json", "repeats row 1"),
    ('[[0.5, "x"]]', ".json", "row 1 holds 'x', not a number"),
    ("[]", ".json", "no preference vectors"),
])
def test_bad_preference_files(cli, tmp_path, content, suffix, fragment, isolated):
    path = tmp_path / f"prefs{suffix}"
    path.write_text(content)
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", "--prefs", str(path)), fragment)
    assert _nothing_computed(isolated)


def test_missing_preference_file(cli):
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", "--prefs", "nope.json"),
                           "does not exist")


def test_output_dir_that_is_a_file(cli, tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", "--out", str(target)), "is a file")
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", "--out", str(target / "sub")),
                           "lies under a file")


@pytest.mark.parametrize("args, fragment", [
    (("--grid", "1"), "--grid must be at least 2"),
    (("--grid", "x"), "'x' is not a valid integer"),
    (("--seed", "-1"), "--seed must be in [0, 2**32 - 1]"),
    (("--seed", str(2**32)), "--seed must be in [0, 2**32 - 1]"),
    (("--grid", "100000"), "choose a smaller grid"),
])
def test_bad_numbers(cli, args, fragment):
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", *args), fragment)


def test_missing_task_or_methods(cli):
    _assert_one_line_error(cli("run", "--methods", "rs"), "no task given")
    _assert_one_line_error(cli("run", "--task", "quad"), "no methods given")


def test_grid_and_prefs_together(cli, tmp_path):
    path = tmp_path / "p.json"
    path.write_text("[[0.5, 0.5]]")
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", "--grid", "3", "--prefs", str(path)),
                           "either --grid or --prefs")


def test_unknown_option_is_one_line(cli):
    _assert_one_line_error(cli("run", "--tsak", "quad"), "--tsak")


def test_bad_config_file(cli, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: quad\nmethods: [rs]\ngird: 3\n")
    _assert_one_line_error(cli("run", "--config", str(path)), "unknown key 'gird'", "'grid'")
    path.write_text("task: quad\nmethods: [rs,\n  bone-soup\nseed: 0\n")
    _assert_one_line_error(cli("run", "--config", str(path)), "is not valid YAML (line 4, column 5)")


@pytest.mark.parametrize("content, fragment", [
    ("task: quad\nmethods: [rs]\nprefs: 5\n", "prefs must be a string"),
    ("task: quad\nmethods: [rs]\nout: [a]\n", "out must be a string"),
    ("task: quad\nmethods: [rs]\noffline: maybe\n", "offline must be true or false"),
])
def test_config_values_of_the_wrong_type(cli, tmp_path, content, fragment, isolated):
    path = tmp_path / "run.yaml"
    path.write_text(content)
    _assert_one_line_error(cli("run", "--config", str(path)), fragment)
    assert _nothing_computed(isolated)


def test_command_line_prefs_replace_the_config_grid(cli, tmp_path):
    prefs = tmp_path / "p.json"
    prefs.write_text("[[0.5, 0.5], [1.0, 0.0]]")
    path = tmp_path / "run.yaml"
    path.write_text("task: quad\nmethods: [rs]\ngrid: 3\n")
    result = cli("-q", "run", "--config", str(path), "--prefs", str(prefs), "--out", str(tmp_path / "out"))
    assert result.code == 0, result.err
    import json

    assert json.loads((tmp_path / "out" / "results.json").read_text())["methods"]["rs"]["n_points"] == 2


def test_a_limit_or_n_test_beyond_the_test_split_is_refused(cli):
    from conftest import REPO

    plugin = str(REPO / "tests" / "micro_text.py")
    _assert_one_line_error(cli("--plugin", plugin, "run", "--task", "micro-text", "--methods", "sft", "--limit", "500"),
                           "--limit 500: task 'micro-text' has 12 test prompts")
    assert not Path("results/micro-text").exists()  # a refused run leaves no empty run directory
    _assert_one_line_error(cli("--plugin", plugin, "run", "--task", "micro-text:n_test=40", "--methods", "sft"),
                           "n_test=40: task 'micro-text' has 12 test prompts")


def test_a_run_of_another_task_seed_or_task_parameters_does_not_replace_a_run_directory(cli):
    assert cli("-q", "run", "--task", "quad", "--methods", "rs", "--grid", "3", "--out", "shared").code == 0
    _assert_one_line_error(cli("run", "--task", "quad3", "--methods", "rs", "--out", "shared"),
                           "holds a run of task 'quad'", "pick another --out")
    # `prepare` writes no results, so a run directory of another task does not concern it.
    assert cli("-q", "run", "--task", "quad", "--methods", "rs", "--grid", "3", "--out", "results/quad3").code == 0
    assert cli("-q", "prepare", "--task", "quad3", "--methods", "rs").code == 0
    # Another seed or other task parameters share no cell with the run there: refused, not replaced.
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", "--seed", "1", "--out", "shared"),
                           "holds a run with seed 0", "shared-seed1")
    _assert_one_line_error(cli("run", "--task", "quad:eta=0.1", "--methods", "rs", "--out", "shared"),
                           "other task parameters (eta=0.0 there, 0.1 now)", "pick another --out")
    # Other methods and another grid reuse its cells and may write there.
    assert cli("-q", "run", "--task", "quad", "--methods", "rs,morlhf", "--grid", "5", "--out", "shared").code == 0
    (Path("damaged")).mkdir()
    Path("damaged/results.json").write_text("[1, 2]")  # not a results file: the run rewrites it
    assert cli("-q", "run", "--task", "quad", "--methods", "rs", "--grid", "3", "--out", "damaged").code == 0


def test_a_prefs_file_named_in_a_config_is_found_beside_it(cli, tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "mine.json").write_text("[[0.5, 0.5], [1.0, 0.0]]")
    (folder / "run.yaml").write_text("task: quad\nmethods: [rs]\nprefs: mine.json\n")
    result = cli("-q", "run", "--config", str(folder / "run.yaml"), "--out", str(tmp_path / "out"))
    assert result.code == 0, result.err
    import json

    assert json.loads((tmp_path / "out" / "results.json").read_text())["methods"]["rs"]["n_points"] == 2


def test_guide_merge_is_refused_where_it_does_nothing(cli):
    _assert_one_line_error(cli("run", "--task", "hh2-mini", "--methods", "mage-e:guide_merge=naive"),
                           "guide_merge applies to mage-i-m only")


def test_plugin_that_does_not_exist(cli):
    _assert_one_line_error(cli("--plugin", "no_such_plugin_module", "ls", "methods"), "no_such_plugin_module")


def test_leaderboard_without_results(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    _assert_one_line_error(cli("leaderboard", str(tmp_path / "empty")), "no results.json")


@pytest.mark.parametrize("methods, fragment", [
    ("bone-soup:beta_select=[0.6,0.7,rs", "1 bracket(s) left open"),
    ("bone-soup:beta=0.6],rs", "a closing ']' has no opening one"),
    ("rs,bone-soup,bone-soup:beta=0.7", "'bone-soup' and 'bone-soup:beta=0.7' are the same method"),
])
def test_malformed_or_repeated_methods(cli, isolated, methods, fragment):
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", methods), fragment)
    assert _nothing_computed(isolated)


def test_undecodable_or_directory_files(cli, tmp_path):
    binary = tmp_path / "p.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", "--prefs", str(binary)), "is not UTF-8")
    config = tmp_path / "c.yaml"
    config.write_bytes(b"\xff\xfe\x00")
    _assert_one_line_error(cli("run", "--config", str(config)), "is not UTF-8")
    _assert_one_line_error(cli("run", "--config", str(tmp_path)), "is not a file")
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", "--prefs", str(tmp_path)), "is not a file")
    booleans = tmp_path / "b.json"
    booleans.write_text("[[true, false]]")
    _assert_one_line_error(cli("run", "--task", "quad", "--methods", "rs", "--prefs", str(booleans)),
                           "true/false value")


def test_judge_and_leaderboard_bad_inputs(cli, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "results.json").write_text("garbage")
    _assert_one_line_error(cli("judge", str(run), "--judges", "humor-mini"), "cannot read")
    (run / "results.json").write_text('{"schema": "mobench.results/1"}')
    _assert_one_line_error(cli("judge", str(run), "--judges", "humor-mini"), "lacks task, config, methods")
    _assert_one_line_error(cli("leaderboard", str(run)), "lacks task, config, methods")
    (run / "results.json").write_text('{"schema": "mobench.results/1", "task": {}, "config": {}, '
                                      '"methods": {"rs": {"points": []}}}')
    _assert_one_line_error(cli("leaderboard", str(run)), "lacks methods.rs.metrics, methods.rs.n_points")
    (tmp_path / "file").write_text("x")
    _assert_one_line_error(cli("leaderboard", QUAD_RUN, "--out", str(tmp_path / "file" / "sub")),
                           "lies under a file")
    (tmp_path / "c.yaml").write_text("task: quad\n")
    _assert_one_line_error(cli("leaderboard", str(tmp_path / "c.yaml")), "is not JSON", "results file")
    _assert_one_line_error(cli("judge", str(tmp_path / "nowhere"), "--judges", "humor-mini"), "does not exist")
    judge = "quadratic:center=[0,0]:curvature=[1,1]"
    _assert_one_line_error(cli("judge", QUAD_RUN, "--judges", f"{judge},{judge}"), "listed twice")


def test_judge_must_fit_the_runs_task(cli):
    # The committed quad run: its outputs are parameter vectors, not text; its θ has 2 dimensions.
    _assert_one_line_error(cli("judge", QUAD_RUN, "--judges", "humor-mini"),
                           "scores text replies", "parameter vectors")
    _assert_one_line_error(cli("judge", QUAD_RUN, "--judges", "quadratic:center=[1,1,1]:curvature=[1,1,1]"),
                           "3-dimensional center", "2-dimensional")
    _assert_one_line_error(cli("judge", QUAD_RUN, "--judges", "rm-humor:batch_size=0"), "batch_size")

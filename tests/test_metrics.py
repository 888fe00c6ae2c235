"""Golden examples of the metric conventions (the project's METRICS notes: examples A and B) and pymoo
cross-checks against a brute-force hypervolume."""

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from mobench import metrics


def _two_objective(mu1, rewards):
    mu1 = np.asarray(mu1, dtype=float)
    return np.stack([mu1, 1 - mu1], axis=1), np.asarray(rewards, dtype=float)


def test_golden_example_a():
    prefs, rewards = _two_objective([0, .25, .5, .75, 1], [(0, 4), (1, 3), (2, 2), (3, 0), (4, 1)])
    assert metrics.front_size(rewards) == 4
    assert metrics.hypervolume(rewards, (0, 0)) == pytest.approx(7)
    assert metrics.hypervolume(rewards, (-1, -1)) == pytest.approx(16)
    assert metrics.inner_product(prefs, rewards) == pytest.approx(2.95)
    assert metrics.sparsity(rewards) == pytest.approx(2.75)
    assert metrics.spacing(rewards) == pytest.approx(0)
    assert metrics.controllability(prefs, rewards) == pytest.approx(0.9)


def test_golden_example_b():
    prefs, rewards = _two_objective([0, .5, 1], [(1, 3), (1, 2), (3, 1)])
    result = metrics.evaluate(prefs, rewards, (0, 0))
    assert list(result) == ["hv", "ip", "sparsity", "spacing", "front", "ctrl"]
    assert result["front"] == 2
    assert result["hv"] == pytest.approx(5)
    assert result["ip"] == pytest.approx(2.5)
    assert result["sparsity"] == pytest.approx(3.0)
    assert result["spacing"] == pytest.approx(0.582688032598)
    assert result["ctrl"] == pytest.approx(2 / 3)


def test_paper_grid_controllability_is_a_multiple_of_one_55th():
    prefs, _ = _two_objective(np.linspace(0, 1, 11), np.zeros((11, 2)))
    rewards = np.stack([np.arange(11.0), -np.arange(11.0)], axis=1)
    assert metrics.controllability(prefs, rewards) == 1.0
    rewards[[4, 5]] = rewards[[5, 4]]  # one adjacent swap breaks exactly one unordered pair
    assert metrics.controllability(prefs, rewards) == pytest.approx(54 / 55)


def test_reward_tie_fails_unless_preference_ties():
    prefs = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert metrics.controllability(prefs, np.array([[1.0, 2.0], [1.0, 1.0]])) == 0.0
    prefs3 = np.array([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]])
    rewards3 = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 1.0]])
    assert metrics.controllability(prefs3, rewards3, ties="strict") == 0.0
    assert metrics.controllability(prefs3, rewards3, ties="ignore") == 1.0


def test_front_keeps_exact_duplicates_and_points_below_reference_add_nothing():
    rewards = np.array([[1.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    assert metrics.front_size(rewards) == 2
    assert metrics.hypervolume(np.array([[2.0, -1.0], [1.0, 1.0]]), (0, 0)) == pytest.approx(1.0)
    assert metrics.hypervolume(np.array([[-1.0, -1.0]]), (0, 0)) == 0.0


def test_single_point_metrics_that_need_pairs_are_nan():
    result = metrics.evaluate(np.array([[0.5, 0.5]]), np.array([[1.0, 2.0]]), (0, 0))
    assert result["hv"] == pytest.approx(2.0)
    assert np.isnan(result["sparsity"]) and np.isnan(result["spacing"]) and np.isnan(result["ctrl"])


def _brute_force_hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Inclusion-exclusion over all subsets: exact and independent of pymoo."""
    points = points[np.all(points > ref, axis=1)]
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in combinations(range(len(points)), size):
            corner = points[list(subset)].min(axis=0)
            total += (-1) ** (size + 1) * float(np.prod(corner - ref))
    return total


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_matches_brute_force_on_random_fronts(dims, seed):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(8, dims))
    ref = np.full(dims, -1.5)
    assert metrics.hypervolume(points, ref) == pytest.approx(_brute_force_hypervolume(points, ref), rel=1e-9)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="reference point"):
        metrics.hypervolume(np.ones((2, 2)), (0, 0, 0))
    with pytest.raises(ValueError, match="N x n"):
        metrics.sparsity(np.ones(3))


def test_a_front_with_a_non_finite_reward_gets_no_metric():
    prefs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    rewards = np.array([[1.0, 0.0], [np.nan, 0.5], [0.0, 1.0]])
    values = metrics.evaluate(prefs, rewards, [0.0, 0.0])
    assert set(values) == set(metrics.METRIC_KEYS) and all(np.isnan(v) for v in values.values())


def test_hypervolume_bootstrap_resamples_prompts_with_all_their_samples():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 2)  # 20 prompts, 2 samples each, as the text tasks' `samples`
    front = [np.clip(rng.normal([0.2 + 0.06 * k, 0.8 - 0.06 * k], 0.1, (40, 2)), 0, 1) for k in range(11)]
    first = metrics.bootstrap_hypervolume(front, groups, [0, 0])
    assert first == metrics.bootstrap_hypervolume(front, groups, [0, 0])  # seeded
    assert first["resamples"] == 1000 and first["hv_se"] > 0 and first["n_prompts"] == 20
    full = metrics.hypervolume(np.array([a.mean(axis=0) for a in front]), [0, 0])
    low, high = first["hv_ci95"]  # the basic interval, around the front's own HV
    assert low < full < high and high - low < 4.5 * first["hv_se"]
    assert first["bias"] == pytest.approx(np.mean(first["hv_resamples"]) - full, abs=1e-5)
    # Prompts that every point answers alike leave nothing to resample; one prompt, or a NaN, gives none.
    same = [np.tile(a[:1], (40, 1)) for a in front]
    assert metrics.bootstrap_hypervolume(same, groups, [0, 0])["hv_se"] == pytest.approx(0.0, abs=1e-12)
    assert metrics.bootstrap_hypervolume(front, np.zeros(40), [0, 0]) is None
    broken = [a.copy() for a in front]
    broken[3][0, 0] = np.nan
    assert metrics.bootstrap_hypervolume(broken, groups, [0, 0]) is None
    # A sample of weight 0 (a judge's pooling: an answer without segments) counts for nothing.
    weights = [np.ones_like(a) for a in front]
    changed = [a.copy() for a in front]
    for w, a in zip(weights, changed):
        w[::2, 0] = 0.0
        a[::2, 0] = 0.99
    assert metrics.bootstrap_hypervolume(front, groups, [0, 0], weights) == \
        metrics.bootstrap_hypervolume(changed, groups, [0, 0], weights)
    # Two fronts of one run pair up: a uniformly better front's gain is far beyond its paired SE.
    shifted = [a + 0.05 for a in front]
    better = metrics.bootstrap_hypervolume(shifted, groups, [0, 0])
    hv_better = metrics.hypervolume(np.array([a.mean(axis=0) for a in shifted]), [0, 0])
    paired = metrics.paired_hv_difference(better, first, hv_better, full)
    assert paired["difference"] == pytest.approx(hv_better - full)
    assert paired["ci95"][0] > 0 and paired["se"] < first["hv_se"]
    with pytest.raises(ValueError, match="different draws"):
        metrics.paired_hv_difference(better, metrics.bootstrap_hypervolume(front, groups, [0, 0], seed=1), 1, 1)


def test_the_bootstrap_is_left_out_where_it_would_not_be_the_reported_hv():
    import json

    from mobench.results import _uncertainty

    keys = [json.dumps(f"p{i // 2}") for i in range(8)]  # 4 prompts x 2 samples

    def record(shift: float, weights: bool = False) -> dict:
        rewards = [[0.1 * (i % 3) + shift, 0.5 - shift] for i in range(8)]
        # As the runner keeps them: the first judge pools by weights, the second takes a plain mean (None).
        samples = [{"prompt": f"p{i // 2}", "rewards": r, **({"weights": [1.0 + i, None]} if weights else {})}
                   for i, r in enumerate(rewards)]
        w = np.array([[1.0 + i, 1.0] for i in range(8)]) if weights else np.ones((8, 2))
        means = (np.array(rewards) * w).sum(axis=0) / w.sum(axis=0)
        return {"samples": samples, "rewards": means.tolist()}

    records = [record(0.0), record(0.2)]
    assert _uncertainty(records, keys, [0, 0])["n_prompts"] == 4
    assert _uncertainty([record(0.0, True), record(0.2, True)], keys, [0, 0]) is not None  # pooled as kept
    stale = record(0.0, True)
    for sample in stale["samples"]:
        del sample["weights"]  # a pooled cell written before weights were kept: its means are not plain ones
    assert _uncertainty([stale, record(0.2)], keys, [0, 0]) is None
    other = record(0.2)
    other["samples"][0]["prompt"] = "elsewhere"
    assert _uncertainty([record(0.0), other], keys, [0, 0]) is None
    assert _uncertainty(records, [json.dumps("only")] * 8, [0, 0]) is None  # one prompt: nothing to resample


def _results(methods: dict, judge: str = "j@1", spec: str = "t") -> dict:
    return {"schema": "mobench.results/1",
            "task": {"name": "t", "spec": spec, "version": "1", "reference_point": [0, 0],
                     "objectives": [{"name": "a", "judge": judge}, {"name": "b", "judge": judge}]},
            "config": {"task": spec, "seed": 0, "preferences": "grid:3", "ctrl_ties": "strict"},
            "methods": {key: {"metrics": {"hv": hv}, "n_points": 1, "points": [{"mu": [1, 0], "rewards": pt}]}
                        for key, (hv, pt) in methods.items()}}


def test_tables_escape_user_text_and_rank_both_directions():
    from mobench.reports import Row, _format, markdown_table, table_cells

    rows = [Row("rs:name='a|b'", {"hv": 2.0, "spacing": 0.3}, 3, hv_se=0.01234),
            Row("*x*", {"hv": 1.0, "spacing": 0.1}, 3), Row("z", {"hv": 0.5, "spacing": 0.2}, 3, hv_se=123.4)]
    table = markdown_table(rows)
    assert "a\\|b" in table and "\\*x\\*" in table
    assert all(line.count("|") - line.count("\\|") == 10 for line in table.splitlines())  # 9 columns
    header, body = table_cells(rows)
    assert header[1:3] == ["HV ↑", "± SE"]
    assert [line[2] for line in body] == [("0.012", ""), ("–", ""), ("120", "")]  # shown, never ranked
    assert table_cells([Row("q", {"hv": 3e-4}, 3, hv_se=1.63e-5)])[1][0][2] == ("0.000016", "")  # no e-notation
    hv = [line[1][1] for line in body]
    spacing = [line[5][1] for line in body]
    assert hv == ["best", "second", ""] and spacing == ["", "best", "second"]  # Spac ↓: lower is better
    # One policy for every μ (sft: one reward vector N times) has zero spacing but is no front: not ranked.
    single = Row("sft", {"hv": 3.0, "spacing": 0.0}, 3, ranked=False)
    _, body = table_cells(rows + [single])
    assert [line[1][1] for line in body] == ["best", "second", "", ""]
    assert [line[5][1] for line in body] == ["", "best", "second", ""]
    assert _format("hv", 1234.0) == "1234" and _format("hv", -0.0) == "0.000" and _format("hv", 0.10654) == "0.1065"
    _, body = table_cells([single, rows[0]])  # one ranked row beside sft is best at nothing
    assert all(mark == "" for line in body for _, mark in line)


def test_a_single_policy_is_told_from_a_front_by_its_points():
    from mobench.reports import rows_of, run_report_markdown

    def results(points: list[list[float]]) -> dict:
        return {"task": {"spec": "t", "version": "1", "reference_point": [0, 0],
                         "objectives": [{"name": "a"}, {"name": "b"}]},
                "config": {"ctrl_ties": "strict", "preferences": "grid:3"},
                "methods": {"m": {"metrics": {"hv": 1.0}, "n_points": len(points),
                                  "points": [{"mu": [1, 0], "rewards": r} for r in points]}}}

    assert [r.ranked for r in rows_of(results([[0.5, 0.5]] * 3))] == [False]
    assert "not ranked" in run_report_markdown(results([[0.5, 0.5]] * 3))
    assert [r.ranked for r in rows_of(results([[0.5, 0.5], [0.4, 0.6]]))] == [True]
    assert [r.ranked for r in rows_of(results([[0.5, 0.5]]))] == [True]  # a one-point preference file
    assert "not ranked" not in run_report_markdown(results([[0.5, 0.5], [0.4, 0.6]]))


def test_leaderboard_keeps_runs_of_other_judges_apart(tmp_path):
    import json

    from mobench.reports import collect

    for name, judge in (("a", "j@1"), ("b", "j@2"), ("c", "j@1")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(_results({name: (1.0, [1, 0])}, judge)))
    boards = collect([tmp_path])
    assert len(boards) == 2
    assert sorted(sorted(b["rows"]) for b in boards.values()) == [["a", "c"], ["b"]]
    assert all("judges j@" in title for title in boards)


def test_pareto_plot_draws_a_front_with_a_missing_reward(tmp_path):
    from mobench.reports import pareto_plot

    results = _results({"rs": (None, [1.0, 0.0])})
    results["methods"]["rs"]["points"].append({"mu": [0.5, 0.5], "rewards": [None, 0.5]})
    pareto_plot(results, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_committed_tables_and_leaderboard_are_what_the_suite_writes(monkeypatch):
    """The reference runs' table.md and the leaderboard, regenerated from their results.json by the
    current code, are byte for byte what is committed (a report change must regenerate them)."""
    from conftest import REPO

    from mobench.reports import collect, leaderboard_html, leaderboard_markdown, run_report_markdown
    from mobench.results import load_results

    monkeypatch.chdir(REPO)
    runs = sorted(Path("results").glob("*/results.json"))
    assert len(runs) >= 9
    for path in runs:
        assert (path.parent / "table.md").read_text() == run_report_markdown(load_results(path)), path
    boards = collect([Path("results")])
    assert Path("results/leaderboard.md").read_text() == leaderboard_markdown(boards)
    assert Path("results/leaderboard.html").read_text() == leaderboard_html(boards)


def test_seed_replicates_script_compares_seeds_and_refuses_mismatched_runs(tmp_path):
    """bench/seeds.py on a committed run and a copy under another seed (HVs scaled): per-seed HVs, the
    spread across seeds, per-seed paired verdicts; runs of one seed or of another task are refused."""
    import json
    import subprocess
    import sys

    from conftest import REPO

    source = json.loads((REPO / "results/hh2-mini/results.json").read_text())
    other = json.loads(json.dumps(source))
    other["config"]["seed"] = 1
    for entry in other["methods"].values():
        entry["metrics"]["hv"] *= 0.5
    (tmp_path / "seed1.json").write_text(json.dumps(other))
    script = [sys.executable, str(REPO / "bench/seeds.py"), str(REPO / "results/hh2-mini")]

    out = subprocess.run(script + [str(tmp_path / "seed1.json"), "--against", "bone-soup"],
                         capture_output=True, text=True, check=True).stdout
    sft_hv = source["methods"]["sft"]["metrics"]["hv"]
    row = next(line for line in out.splitlines() if line.startswith("| sft |") and "HV" not in line)
    mean = float(row.split("|")[-3])
    assert mean == pytest.approx(0.75 * sft_hv, rel=1e-3)
    assert "| ric |" in out and "behind bone-soup in every seed" in out

    same = subprocess.run(script + [str(REPO / "results/hh2-mini")], capture_output=True, text=True)
    assert same.returncode != 0 and "differ in seed" in same.stderr
    wrong = subprocess.run(script + [str(REPO / "results/hh1-mini")], capture_output=True, text=True)
    assert wrong.returncode != 0 and "only replicates of one run" in wrong.stderr

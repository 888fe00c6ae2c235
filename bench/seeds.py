"""Training-seed replicates of one task: each method's hypervolume per seed, with its mean and
standard deviation across seeds, and its paired difference to reference methods in every seed.

The HV standard error of a results file covers the test prompts drawn, not training: a second
`mobench run --seed 1` trains every policy, value model and selection again. A method comparison
that holds in one seed's paired bootstrap but flips sign in another is a seed effect, not a finding.

    .venv/bin/python bench/seeds.py results/hh2-mini results/hh2-mini-seed1 [--against rs,bone-soup]

Runs must share the task (spec and version) and the preference set, and differ in seed; a method is
compared only where its version and parameters are the same in every run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _num(value: float | None, digits: int, sign: bool = False) -> str:
    from mobench.reports import significant

    if value is None:  # a metric stored as null (no finite value)
        return "–"
    text = significant(value, digits)
    return f"+{text}" if sign and value >= 0 else text


def check_replicates(runs: list[dict[str, Any]], paths: list[Path]) -> None:
    """Raise ValueError unless `runs` are the same task and preference set under distinct seeds."""
    first = runs[0]
    for run, path in zip(runs[1:], paths[1:]):
        for what, key in (("task", lambda r: (r["task"].get("spec", r["task"]["name"]), r["task"].get("version"))),
                          ("preference set", lambda r: r["config"]["preferences"])):
            if key(run) != key(first):
                raise ValueError(f"{path} has {what} {key(run)!r} but {paths[0]} has {key(first)!r}: "
                                 "only replicates of one run can be compared")
    seeds = [r["config"]["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the runs must differ in seed, got seeds {seeds}")


def shared_methods(runs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(methods in every run with one version and parameters, methods left out with the reason)."""
    keys = [k for k in runs[0]["methods"] if all(k in r["methods"] for r in runs)]
    kept, skipped = [], []
    for key in keys:
        entries = [r["methods"][key] for r in runs]
        if len({(e.get("version"), repr(e.get("params"))) for e in entries}) > 1:
            skipped.append(f"{key} (its version or parameters differ between runs)")
        else:
            kept.append(key)
    missing = sorted({k for r in runs for k in r["methods"]} - set(keys))
    skipped += [f"{k} (not in every run)" for k in missing]
    return kept, skipped


def _paired(run: dict[str, Any], key: str, ref: str) -> dict[str, Any] | None:
    spread = run["methods"][key].get("uncertainty")
    if not isinstance(spread, dict):
        return None
    return spread.get("paired", {}).get(ref)


def compare(runs: list[dict[str, Any]], paths: list[Path], against: list[str]) -> list[str]:
    import numpy as np

    check_replicates(runs, paths)
    seeds = [r["config"]["seed"] for r in runs]
    methods, skipped = shared_methods(runs)
    refs = [ref for ref in against if ref in methods]
    task = runs[0]["task"]
    lines = [f"## {task.get('spec', task['name'])} (task v{task.get('version', '?')}), seeds {', '.join(map(str, seeds))}", ""]
    head = "| method | " + " | ".join(f"HV seed {s} (± SE)" for s in seeds) + " | mean | std across seeds |"
    lines += [head, "|---|" + "---|" * (len(seeds) + 2)]
    for key in methods:
        hvs = [r["methods"][key]["metrics"]["hv"] for r in runs]
        cells = []
        for run, hv in zip(runs, hvs):
            spread = run["methods"][key].get("uncertainty")
            se = spread.get("hv_se") if isinstance(spread, dict) else None
            cells.append(_num(hv, 4) + (f" (± {_num(se, 2)})" if se is not None else ""))
        finite = [hv for hv in hvs if hv is not None]
        mean = _num(float(np.mean(finite)), 4) if len(finite) == len(hvs) else "–"
        spread = _num(float(np.std(finite, ddof=1)), 2) if len(finite) == len(hvs) else "–"
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {mean} | {spread} |")
    for ref in refs:
        lines += ["", f"Paired HV difference to {ref} per seed (paired SE); `*`: the seed's 95% interval excludes 0.", "",
                  "| method | " + " | ".join(f"seed {s}" for s in seeds) + " | verdict |",
                  "|---|" + "---|" * (len(seeds) + 1)]
        for key in methods:
            if key == ref:
                continue
            cells, signs = [], []
            for run in runs:
                d = _paired(run, key, ref)
                if d is None:
                    cells.append("–")
                    signs.append(None)
                    continue
                low, high = d["ci95"]
                excluded = low > 0 or high < 0
                cells.append(f"{_num(d['difference'], 3, True)} ({_num(d['se'], 2)}){'*' if excluded else ''}")
                signs.append((1 if low > 0 else -1) if excluded else 0)
            lines.append(f"| {key} | " + " | ".join(cells) + f" | {verdict(signs, ref)} |")
    if skipped:
        lines += ["", "Left out: " + "; ".join(skipped) + "."]
    return lines + [""]


def verdict(signs: list[int | None], ref: str) -> str:
    """Ahead/behind only when every seed's interval excludes 0 on the same side."""
    if any(s is None for s in signs):
        return "no bootstrap in every seed"
    if all(s == 1 for s in signs):
        return f"ahead of {ref} in every seed"
    if all(s == -1 for s in signs):
        return f"behind {ref} in every seed"
    if 1 in signs and -1 in signs:
        return "sign flips between seeds"
    return "not separated in at least one seed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories or results.json files, one per seed")
    parser.add_argument("--against", default="rs,bone-soup", help="comma-separated reference methods")
    args = parser.parse_args()
    if len(args.runs) < 2:
        sys.exit("error: give at least two runs (one per seed)")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mobench.results import load_results

    paths = [run / "results.json" if run.is_dir() else run for run in args.runs]
    runs = []
    for path in paths:
        if not path.is_file():
            sys.exit(f"error: {path} does not exist")
        try:
            runs.append(load_results(path))
        except ValueError as exc:
            sys.exit(f"error: {exc}")
    try:
        print("\n".join(compare(runs, paths, [k for k in args.against.split(",") if k])))
    except ValueError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()

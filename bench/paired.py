"""Paired comparisons of hypervolumes in one run: each method against reference methods (default
Rewarded Soups and Bone Soup), over the same bootstrap resamples of the test prompts.

Two methods of a run answered the same prompts, so the difference of their HVs varies much less
than either HV: a gap of one HV standard error can still be a consistent win. Prints, per pair, the HV
difference, its paired standard error and its basic bootstrap 95% interval, marked * where the
interval excludes 0. It measures the evaluation sample (which prompts were drawn), not training seeds.

    .venv/bin/python bench/paired.py results/hh2-mini [--against rs,bone-soup]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _num(value: float, digits: int, sign: bool = False) -> str:
    from mobench.reports import significant

    text = significant(value, digits)
    return f"+{text}" if sign and value >= 0 else text


def compare(path: Path, against: list[str]) -> list[str]:
    from mobench.results import load_results

    results = load_results(path)
    methods = results["methods"]
    spread = {key: entry.get("uncertainty") if isinstance(entry.get("uncertainty"), dict) else None
              for key, entry in methods.items()}
    lines = [f"## {results['task']['spec']}", ""]
    refs = []
    for key in against:
        if key not in methods:
            lines.append(f"- no method {key} in this run")
        elif not spread[key] or "paired" not in spread[key]:
            lines.append(f"- {key} has no bootstrap (one prompt, a non-finite reward, results from before it, "
                         f"or cells that do not reproduce its means)")
        else:
            refs.append(key)
    if not refs:
        return lines + [""]
    lines += ([""] if lines[-1] else []) + ["| method | HV | ± SE | " + " | ".join(f"− {key}: difference (paired SE) [95% CI]" for key in refs)
              + " |", "|---|---|---|" + "---|" * len(refs)]
    for key, entry in methods.items():
        own = spread[key]
        if not own or "paired" not in own:
            lines.append(f"| {key} | {_num(entry['metrics']['hv'], 4)} | – |" + " – |" * len(refs))
            continue
        cells = []
        for ref in refs:
            if ref == key:
                cells.append("–")
                continue
            d = own["paired"][ref]  # computed over the run's shared draws when the results were written
            low, high = d["ci95"]
            mark = "*" if low > 0 or high < 0 else ""
            cells.append(f"{_num(d['difference'], 3, True)} ({_num(d['se'], 2)}) "
                         f"[{_num(low, 3, True)}, {_num(high, 3, True)}]{mark}")
        lines.append(f"| {key} | {_num(entry['metrics']['hv'], 4)} | {_num(own['hv_se'], 2)} | " + " | ".join(cells) + " |")
    return lines + ["", "`*`: the 95% interval excludes 0.", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories or results.json files")
    parser.add_argument("--against", default="rs,bone-soup", help="comma-separated reference methods")
    args = parser.parse_args()
    for run in args.runs:
        path = run / "results.json" if run.is_dir() else run
        if not path.is_file():
            sys.exit(f"error: {path} does not exist")
        print("\n".join(compare(path, [k for k in args.against.split(",") if k])))


if __name__ == "__main__":
    main()

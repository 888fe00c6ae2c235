"""Paired comparisons of hypervolumes in one run: each method against reference methods (default
Rewarded Soups and Bone Soup), over the same bootstrap resamples of the test prompts.

Two methods of a run answered the same prompts, so the difference of their HVs varies much less
than either HV: a gap of one HV standard error can still be a consistent win. Prints, per pair, the HV
difference, its paired standard error, its 95% interval and the share of resamples the method wins.

    python bench/paired.py results/hh2-mini [--against rs,bone-soup]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def compare(path: Path, against: list[str]) -> list[str]:
    from mobench.metrics import paired_hv_difference
    from mobench.results import load_results

    results = load_results(path)
    methods = results["methods"]
    spread = {key: entry.get("uncertainty") for key, entry in methods.items()}
    missing = [key for key in against if key not in methods]
    if missing:
        return [f"{path}: no method {', '.join(missing)} in this run"]
    if any(spread[key] is None or "hv_resamples" not in spread[key] for key in against):
        return [f"{path}: no bootstrap resamples recorded (a run of one prompt, or results from before them)"]
    lines = [f"## {results['task']['spec']}", "",
             "| method | HV | ± SE | " + " | ".join(f"− {key} (paired SE; 95% CI; wins)" for key in against) + " |",
             "|---|---|---|" + "---|" * len(against)]
    for key, entry in methods.items():
        own = spread[key]
        if own is None or "hv_resamples" not in own:
            continue
        cells = []
        for ref in against:
            if ref == key:
                cells.append("–")
                continue
            d = paired_hv_difference(own, spread[ref])
            gap = entry["metrics"]["hv"] - methods[ref]["metrics"]["hv"]
            cells.append(f"{gap:+.4f} ({d['se']:.4f}; [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]; {d['wins']:.0%})")
        lines.append(f"| {key} | {entry['metrics']['hv']:.4f} | {own['hv_se']:.4f} | " + " | ".join(cells) + " |")
    return lines + [""]


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

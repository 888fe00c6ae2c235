"""Check that a text task shows a real, controllable trade-off, from results files alone.

For every results.json holding `sft` and a sweeping method (default `rs`), objective i's mean reward
at μ = e_i must exceed its mean at the opposite end of the sweep by at least one standard deviation
of the SFT policy's per-sample rewards. Also prints each endpoint policy's reply statistics beside
SFT's (mean words, distinct-word ratio), which expose a degenerate policy.

    python bench/tradeoff.py results/hh2-mini results/hh1-mini [--method rs]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def check(path: Path, method: str) -> list[str]:
    from mobench.results import load_results

    try:
        results = load_results(path)
    except (ValueError, OSError) as exc:
        return [f"{path}: {exc}"]
    methods = results["methods"]
    if "sft" not in methods or method not in methods:
        return [f"{path}: needs `sft` and `{method}` in the same run"]
    names = [o["name"] for o in results["task"]["objectives"]]
    sft_point = methods["sft"]["points"][0]
    points = methods[method]["points"]
    lines = [f"## {results['task']['spec']} ({method})", ""]
    ok = True
    for i, name in enumerate(names):
        at_one = next((p for p in points if p["mu"][i] == 1.0), None)
        at_zero = next((p for p in points if p["mu"][i] == 0.0 and max(p["mu"]) == 1.0), None)
        if at_one is None or at_zero is None:
            return [f"{path}: {method} has no point at μ_{name} = 1 and one at μ_{name} = 0 with another "
                    f"objective at 1 (its preferences: {[p['mu'] for p in points]})"]
        gain = at_one["rewards"][i] - at_zero["rewards"][i]
        std = sft_point["reward_std"][i]
        if std is None or not std > 0:
            return [f"{path}: sft's {name} rewards have no spread (std {std}): a one-policy task such as quad "
                    "has no per-sample standard deviation to measure the trade-off in"]
        passed = gain >= std
        ok &= passed
        lines.append(f"- {name}: mean at μ_{name}=1 {at_one['rewards'][i]:.4f}, at μ_{name}=0 "
                     f"{at_zero['rewards'][i]:.4f}, gain {gain:+.4f} = {gain / std:.2f} SFT std "
                     f"(std {std:.4f}) -> {'PASS' if passed else 'FAIL'}")
    stats = [("sft", sft_point["output"])] + [(f"{method} μ={p['mu']}", p["output"]) for p in points
                                               if max(p["mu"]) == 1.0]
    for label, output in stats:
        lines.append(f"- {label}: mean words {output['mean_words']}, distinct ratio {output['distinct_ratio']}")
    lines.append(f"- verdict: {'trade-off shown' if ok else 'NO controllable trade-off'}")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories or results.json files")
    parser.add_argument("--method", default="rs")
    args = parser.parse_args()
    for run in args.runs:
        path = run / "results.json" if run.is_dir() else run
        if not path.is_file():
            sys.exit(f"error: {path} does not exist")
        print("\n".join(check(path, args.method)))


if __name__ == "__main__":
    main()

"""Held-out quality of the explicit value models in the artifact store (MAGE-E's guides).

For every `value-model` artifact: the task, the objective, the token-level held-out MSE of
V(x, y<t)[y_t] against the final reward, the same for a constant predictor (the training mean), and
the Spearman correlation of the last token's value with the reward. A value model that does not beat
the constant predictor is flagged.

    python bench/value_models.py [--home ~/.cache/mobench] [--task hh2-mini] [--run results/hh2-mini]

The store keeps every value model ever built (older task versions and settings too); `--run` lists only
those a run's results.json names, i.e. the guides its MAGE-E rows used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="artifact store (default $MOBENCH_HOME)")
    parser.add_argument("--task", default=None, help="only this task")
    parser.add_argument("--run", type=Path, default=None, help="only the value models this run directory's results name")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mobench.artifacts import default_home

    home = args.home or Path(default_home())
    used: set[str] | None = None
    if args.run is not None:
        results_path = args.run / "results.json" if args.run.is_dir() else args.run
        if not results_path.is_file():
            sys.exit(f"error: {results_path} does not exist")
        results = json.loads(results_path.read_text())
        used = {a["id"] for m in results.get("methods", {}).values() for a in m.get("artifacts", [])
                if a.get("kind") == "value-model"}
    rows = []
    for manifest_path in sorted((home / "artifacts").glob("value-model-*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        recipe, info = manifest["recipe"], manifest["info"]
        if args.task and recipe["task"] != args.task:
            continue
        if used is not None and manifest_path.parent.name not in used:
            continue
        held = info.get("heldout", {})
        settings = recipe.get("value", {})
        rows.append((recipe["task"], recipe["objective"], held.get("mse"), held.get("constant_mse"),
                     held.get("final_spearman"), held.get("n"),
                     f"{manifest_path.parent.name} ({settings.get('epochs')} ep, lr {settings.get('learning_rate')})"))
    if not rows:
        sys.exit(f"no value-model artifacts under {home}" + (f" named by {args.run}" if used is not None else ""))
    print("| task | objective | held-out MSE | constant MSE | ratio | Spearman (last token) | n | artifact |")
    print("|---|---|---|---|---|---|---|---|")
    for task, objective, mse, const, rho, n, name in rows:
        ratio = mse / const if mse is not None and const else float("nan")
        flag = "" if ratio < 1 else " (no better than constant)"
        print(f"| {task} | {objective} | {mse:.5f} | {const:.5f} | {ratio:.3f}{flag} | {rho} | {n} | {name} |")


if __name__ == "__main__":
    main()

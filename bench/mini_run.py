"""Measure a whole `mobench run` on a fresh artifact store: wall time (every training step
included), peak memory, and the time of the same command rerun (which must compute nothing).

    python bench/mini_run.py --task hh2-mini --methods rs,bone-soup

Writes bench/results/<task>.json with the figures, the command, the machine and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hh2-mini")
    parser.add_argument("--methods", default="rs,bone-soup")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary store and run directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mobench-bench-"))
    env = {**os.environ, "MOBENCH_HOME": str(work / "home")}
    command = [sys.executable, "-m", "mobench.cli", "-q", "run", "--task", args.task, "--methods", args.methods,
               "--seed", str(args.seed), "--out", str(work / "run")]
    first, table = timed(command, env)
    # ru_maxrss of children: the largest resident set of any finished child, in KiB on Linux.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rerun, _ = timed(command, env)
    versions = json.loads((work / "run" / "results.json").read_text())["versions"]
    report = {
        "command": "mobench run --task {} --methods {} --seed {}".format(args.task, args.methods, args.seed),
        "fresh_store_wall_s": round(first, 1),
        "rerun_wall_s": round(rerun, 1),
        "peak_rss_gib": round(peak_kib / 2**20, 3),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": versions,
        "table": table,
        "date": time.strftime("%Y-%m-%d"),
    }
    out = HERE / "results" / f"{args.task}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("versions", "table")}, indent=2))
    print(table)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Tables like the paper's Table 2, Pareto plots, and the leaderboard, from results files only."""

from __future__ import annotations

import html
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mobench.errors import MobenchError
from mobench.fileio import atomic_write_bytes, atomic_write_text
from mobench.results import RESULTS_FILE, load_results

# (results key, header, higher is better). The paper marks Sparsity and Spacing "lower is better"
# while noting that with 11 points they mostly measure coverage; tables follow its arrows.
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("hv", "HV ↑", True),
    ("ip", "IP ↑", True),
    ("sparsity", "Spar ↓", False),
    ("spacing", "Spac ↓", False),
    ("front", "Front ↑", True),
    ("ctrl", "Ctrl ↑", True),
)
Mark = Literal["best", "second", ""]


@dataclass(frozen=True)
class Row:
    method: str
    metrics: dict[str, Any]
    n_points: int
    ranked: bool = True  # False: every point is one reward vector (one policy for every μ), not a front
    hv_se: float | None = None  # the HV's bootstrap standard error over test prompts, where there is one


UNRANKED_NOTE = "A method whose points are all one reward vector (one policy for every μ, e.g. sft) is shown, not ranked."
SE_NOTE = ("± SE: the HV's standard error over test prompts (bootstrap, 1000 resamples of the prompts with all "
           "their samples); HVs within a few SE of each other are not a ranking (bench/paired.py pairs them).")


def rows_of(results: dict[str, Any]) -> list[Row]:
    return [Row(key, entry["metrics"], entry["n_points"], ranked=_is_front(entry["points"]),
                hv_se=entry["uncertainty"].get("hv_se") if isinstance(entry.get("uncertainty"), dict) else None)
            for key, entry in results["methods"].items()]


def _is_front(points: list[dict[str, Any]]) -> bool:
    """False when several preferences all got one reward vector: one policy for every μ."""
    return len(points) < 2 or len({json.dumps(p["rewards"]) for p in points}) > 1


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def marks(values: Sequence[float | None], higher_is_better: bool) -> list[Mark]:
    """'best' for every row that ties the best value, 'second' for the next distinct value."""
    distinct = sorted({v for v in values if v is not None}, reverse=higher_is_better)
    if sum(v is not None for v in values) < 2 or not distinct:  # one ranked row is best at nothing
        return ["" for _ in values]
    best = distinct[0]
    second = distinct[1] if len(distinct) > 1 else None
    return ["best" if v == best else "second" if v is not None and v == second else "" for v in values]


def _format(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    if key == "front":
        return str(int(value))
    # Four significant digits: mini-task HVs differ in the fourth (0.1065 vs 0.1057), quad's in the first;
    # `+ 0.0` turns -0.0 into 0.0, and a whole number keeps no bare trailing dot ("1234.").
    return f"{value + 0.0:#.4g}".rstrip(".")


def table_cells(rows: list[Row]) -> tuple[list[str], list[list[tuple[str, Mark]]]]:
    """Header and body cells (text, mark) for a metrics table with best/second marks per column."""
    header = ["Method", COLUMNS[0][1], "± SE", *[title for _, title, _ in COLUMNS[1:]], "N"]
    columns = []
    for key, _, higher in COLUMNS:
        values = [_number(row.metrics.get(key)) for row in rows]
        # Rank on the shown precision, so that two printed 0.1065s are both bold or neither; a single
        # policy's "front" (sft) has zero sparsity and spacing and N non-dominated copies: not ranked.
        ranked = [None if v is None or not row.ranked else float(_format(key, v)) for v, row in zip(values, rows)]
        columns.append([(_format(key, v), m) for v, m in zip(values, marks(ranked, higher))])
    # The HV's spread over resampled test prompts: two HVs a standard error or two apart are not a ranking.
    spread = [(_format_se(row.hv_se), "") for row in rows]
    body = []
    for index, row in enumerate(rows):
        body.append([(row.method, ""), columns[0][index], spread[index], *[column[index] for column in columns[1:]],
                     (str(row.n_points), "")])
    return header, body


def significant(value: float, digits: int) -> str:
    """`value` to `digits` significant digits, never in e-notation (0.000016, 0.012, 120)."""
    import numpy as np

    return np.format_float_positional(value + 0.0, precision=digits, unique=False, fractional=False, trim="-")


def _format_se(value: float | None) -> str:
    return "–" if value is None else significant(value, 2)


def markdown_escape(text: str) -> str:
    """Method keys and task specs are user text: `|` would split a table cell, `*` or `<` style it."""
    return re.sub(r"([\\|*_`\[\]<>])", r"\\\1", text)


def markdown_table(rows: list[Row]) -> str:
    from tabulate import tabulate

    header, body = table_cells(rows)
    styled = {"best": "**{}**", "second": "<ins>{}</ins>", "": "{}"}
    data = [[styled[mark].format(markdown_escape(text)) for text, mark in line] for line in body]
    return tabulate(data, headers=header, tablefmt="github", disable_numparse=True)


def html_table(rows: list[Row]) -> str:
    header, body = table_cells(rows)
    styled = {"best": "<b>{}</b>", "second": "<u>{}</u>", "": "{}"}
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for line in body:
        cells = "".join(f"<td>{styled[mark].format(html.escape(text))}</td>" for text, mark in line)
        lines.append(f"<tr>{cells}</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


def rich_table(rows: list[Row], title: str) -> Any:
    from rich.markup import escape
    from rich.table import Table

    header, body = table_cells(rows)
    table = Table(title=escape(title))
    for index, name in enumerate(header):
        table.add_column(name, justify="left" if index == 0 else "right", no_wrap=True)
    styles = {"best": "bold", "second": "underline", "": ""}
    for line in body:
        table.add_row(*[f"[{styles[m]}]{escape(text)}[/]" if m else escape(text) for text, m in line])
    return table


def table_notes(rows: Sequence[Row]) -> list[str]:
    """What a table's reader needs beside it: the SE column, and why a row is not ranked."""
    return ([SE_NOTE] if any(row.hv_se is not None for row in rows) else []) + \
        ([UNRANKED_NOTE] if any(not row.ranked for row in rows) else [])


def task_title(results: dict[str, Any]) -> str:
    task = results["task"]
    ref = ", ".join(f"{x:g}" for x in task["reference_point"])
    objectives = " vs ".join(o["name"] for o in task["objectives"])
    return f"{task['spec']} ({objectives}; HV reference point ({ref}); task v{task['version']})"


def run_report_markdown(results: dict[str, Any]) -> str:
    ctrl = results["config"]["ctrl_ties"]
    rows = rows_of(results)
    lines = [f"## {markdown_escape(task_title(results))}", "",
             markdown_table(rows), "",
             f"Best in bold, second underlined. Ctrl uses the {ctrl} tie rule; N is the number of "
             f"preference points ({results['config']['preferences']}).", *table_notes(rows), ""]
    return "\n".join(lines)


def pareto_plot(results: dict[str, Any], path: Path) -> None:
    """Every method's front (points in grid order, annotated with μ₁); pairwise panels for n > 2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    objectives = [o["name"] for o in results["task"]["objectives"]]
    n = len(objectives)
    pairs = [(0, 1)] if n == 2 else [(i, j) for i in range(n) for j in range(i + 1, n)]
    if n < 2:
        pairs = []
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, max(1, len(pairs)), figsize=(6.5 * max(1, len(pairs)), 5.5), squeeze=False)
    # tab10 repeats its colours past 10 methods (sft and modpo were both dark blue): its 10, then tab20's lighter shades.
    shades = sns.color_palette("tab20")
    palette = shades[0::2] + shades[1::2]  # tab10 first, then its light shades
    for (i, j), ax in zip(pairs, axes[0]):
        for colour, (key, entry) in zip(itertools.cycle(palette), results["methods"].items()):
            # A non-finite reward is stored as null: plotted as a gap, never annotated.
            xs = [_plain(p["rewards"][i]) for p in entry["points"]]
            ys = [_plain(p["rewards"][j]) for p in entry["points"]]
            ax.plot(xs, ys, "-o", color=colour, label=key, markersize=5, linewidth=1.2, alpha=0.9)
            for point, x, y in zip(entry["points"], xs, ys):
                if not (math.isfinite(x) and math.isfinite(y)):
                    continue
                ax.annotate(f"{point['mu'][0]:g}", (x, y), textcoords="offset points", xytext=(3, 3),
                            fontsize=7, color=colour)
        ax.set_xlabel(objectives[i])
        ax.set_ylabel(objectives[j])
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{results['task']['name']}: Pareto fronts (labels: μ₁)")
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())  # a unique temporary name: two writers never collide


def _plain(value: Any) -> float:
    return math.nan if value is None else float(value)


def write_run_report(results: dict[str, Any], out: Path) -> dict[str, Path]:
    paths = {"markdown": out / "table.md", "plot": out / "pareto.png"}
    atomic_write_text(paths["markdown"], run_report_markdown(results))
    pareto_plot(results, paths["plot"])
    return paths


# --- leaderboard -----------------------------------------------------------------------------

def find_results(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(path.rglob(RESULTS_FILE)))
        else:
            raise MobenchError(f"{str(path)!r} does not exist")
    return found


def board_title(results: dict[str, Any]) -> str:
    """The task title plus what else makes rows comparable: seed, preference set and Ctrl tie rule."""
    config = results.get("config", {})
    return (f"{task_title(results)} — seed {config.get('seed', '?')}, preferences {config.get('preferences', '?')}, "
            f"Ctrl {config.get('ctrl_ties', 'strict')} ties")


def collect(paths: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """Group methods by task (name, params, version, reference point), seed, preference set, Ctrl
    tie rule and judges, so rows of runs that are not comparable never share a table. Keyed by table
    title (the judges are named only where they tell two tables apart).

    One method is one row: a method listed under two spellings (`bone-soup:beta=0.6` and
    `bone-soup:beta=0.6:alpha=0`: the same method id) keeps the later file's spelling, and a method
    in two files keeps the later file's row. Each board's `replaced` lists what gave way, for the
    command to report."""
    boards: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    for path in find_results(paths):
        try:
            results = load_results(path)
        except (ValueError, OSError) as exc:
            raise MobenchError(f"cannot read {str(path)!r}: {exc}") from None
        # Runs judged by other judges (another version, another model) are not comparable either.
        judges = tuple(o.get("judge", "") for o in results["task"]["objectives"])
        board = boards.setdefault((board_title(results), judges),
                                  {"task": results["task"]["name"], "entries": {}, "replaced": []})
        for row in rows_of(results):
            entry = {"row": row, "source": str(path.parent), "id": results["methods"][row.method].get("method_id")}
            entries = board["entries"]
            same = next((key for key, e in entries.items() if entry["id"] and e["id"] == entry["id"]), None)
            gone = [key for key in dict.fromkeys((same, row.method)) if key is not None and key in entries]
            board["replaced"] += [f"{key} ({entries[key]['source']}) by {row.method} ({path.parent})" for key in gone]
            # The new row takes the place of the first row it replaces, so a table keeps its order.
            board["entries"] = {(row.method if key == gone[0] else key): (entry if key == gone[0] else e)
                                for key, e in entries.items() if key not in gone[1:]} if gone else entries
            board["entries"][row.method] = entry
    for board in boards.values():
        entries = board.pop("entries")
        board["rows"] = {key: e["row"] for key, e in entries.items()}
        board["sources"] = {key: e["source"] for key, e in entries.items()}
    titles = [title for title, _ in boards]
    return {(title if titles.count(title) == 1 else f"{title} — judges {', '.join(judges)}"): board
            for (title, judges), board in sorted(boards.items())}


def _all_rows(boards: dict[str, dict[str, Any]]) -> list[Row]:
    return [row for board in boards.values() for row in board["rows"].values()]


def leaderboard_markdown(boards: dict[str, dict[str, Any]]) -> str:
    lines = ["# mobench leaderboard", "",
             " ".join(["Generated by `mobench leaderboard` from results files; best in bold, second underlined.",
                       *table_notes(_all_rows(boards))]), ""]
    for title, board in boards.items():
        lines += [f"## {markdown_escape(title)}", "", markdown_table(list(board["rows"].values())), ""]
        sources = sorted(set(board["sources"].values()))
        lines += ["Sources: " + ", ".join(f"`{s}`" for s in sources), ""]
    return "\n".join(lines)


def leaderboard_html(boards: dict[str, dict[str, Any]]) -> str:
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>mobench leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child"
             "{text-align:left}</style></head><body>", "<h1>mobench leaderboard</h1>",
             f"<p>Generated by <code>mobench leaderboard</code>; best in bold, second underlined. "
             f"{html.escape(' '.join(table_notes(_all_rows(boards))))}</p>"]
    for title, board in boards.items():
        parts += [f"<h2>{html.escape(title)}</h2>", html_table(list(board["rows"].values()))]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

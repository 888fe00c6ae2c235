"""The `mobench` command line. Nothing heavy is imported at start-up: `--help` and `ls` are instant.

Every input problem is a MobenchError (or a click usage error) printed as one line, exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mobench.errors import MobenchError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_FAILURE = 1  # the environment failed (disk full, permissions), not the input


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE|FILE.py",
              help="Import a plugin module or file that registers tasks, methods or judges (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="Only print results, no progress.")
@click.version_option(package_name="mobench")
@click.pass_context
def cli(ctx: click.Context, plugins: tuple[str, ...], quiet: bool) -> None:
    """mobench: benchmark controllable multi-objective generation methods."""
    from mobench.registry import load_plugin, load_plugins

    load_plugins()
    for plugin in plugins:
        load_plugin(plugin)
    ctx.obj = {"quiet": quiet}


@cli.command()
@click.option("--task", help="Task spec, e.g. quad or quad:eta=0.1 (see `mobench ls tasks`).")
@click.option("--methods", "methods_text", metavar="SPECS",
              help="Comma-separated method specs, e.g. rs,bone-soup:beta=0.6:alpha=0.")
@click.option("--grid", type=int, help="Points per objective axis of the preference grid (task default if unset).")
@click.option("--prefs", "prefs_file", type=click.Path(path_type=Path),
              help="File of preference vectors (.json/.yaml list of rows, or .csv/.txt lines).")
@click.option("--seed", type=int, help="Seed of every training and sampling step (default 0).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default results/TASK).")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="YAML run configuration; command-line options override it.")
@click.option("--no-train", is_flag=True, default=None, help="Fail instead of training a missing artifact.")
@click.option("--ctrl-ties", type=click.Choice(["strict", "ignore"]),
              help="Controllability rule for tied preference coordinates (default strict, as the paper).")
@click.option("--limit", type=int, help="Evaluate on N test prompts only (a quick trial; the mini tasks' first N, "
              "the paper tasks' N spread over the test split).")
@click.option("--offline", is_flag=True, default=None,
              help="Use local paths and the hub cache only; fail at once, naming any missing model or dataset.")
@click.option("--ray", "use_ray", is_flag=True, default=None,
              help="Sweep on a Ray cluster (RAY_ADDRESS, this machine's running one, or a new local one): "
              "each method is prepared in a Ray task, then its cells go out in chunks.")
@click.option("--ray-address", help="Ray cluster to join, e.g. auto or HOST:6379; local starts a new one "
              "(implies --ray).")
@click.option("--ray-gpus", type=float,
              help="GPUs per Ray task (default 1 when the cluster has GPUs, else 0; implies --ray).")
@click.option("--ray-cpus", type=float, help="CPUs per Ray task (default 1; implies --ray).")
@click.pass_context
def run(ctx: click.Context, task: str | None, methods_text: str | None, grid: int | None,
        prefs_file: Path | None, seed: int | None, out: Path | None, config_file: Path | None,
        no_train: bool | None, ctrl_ties: str | None, limit: int | None, offline: bool | None,
        use_ray: bool | None, ray_address: str | None, ray_gpus: float | None, ray_cpus: float | None) -> None:
    """Train what the methods need, sweep the preferences, judge, and report."""
    from mobench.config import build_run_config

    config = build_run_config(config_file, task=task, methods=methods_text, grid=grid, prefs=prefs_file,
                              seed=seed, out=out, no_train=no_train, ctrl_ties=ctrl_ties, limit=limit,
                              offline=offline, ray=use_ray, ray_address=ray_address, ray_gpus=ray_gpus,
                              ray_cpus=ray_cpus)
    _run(config, quiet=ctx.obj["quiet"])


def _run(config: Any, quiet: bool) -> None:
    from mobench.artifacts import ArtifactStore
    from mobench.progress import Reporter
    from mobench.reports import rich_table, rows_of, task_title, table_notes, write_run_report
    from mobench.results import assemble, write_results
    from mobench.runner import execute, missing_cells, resolve

    if config.ray is not None:
        from mobench.distributed import check_ray_installed

        check_ray_installed()
    plan = resolve(config)
    reporter = Reporter(quiet=quiet)
    todo = missing_cells(plan)
    reporter.log(f"{plan.task.name}: {len(plan.methods)} method(s) x {len(plan.prefs)} preferences "
                 f"(seed {config.seed}); {todo} of {plan.n_cells} cells to compute; run directory {plan.out}")
    try:
        if config.ray is not None:
            from mobench.distributed import execute_on_ray

            timing = execute_on_ray(plan, ArtifactStore(), reporter, config.ray)
        else:
            timing = execute(plan, ArtifactStore(), reporter)
    except KeyboardInterrupt:
        done = plan.n_cells - missing_cells(plan)
        raise Interrupted(f"interrupted: {done} of {plan.n_cells} cells are saved in {plan.out}; "
                          f"rerun the same command to resume") from None
    results = assemble(plan)
    path = write_results(plan.out, results, timing)
    reports = write_run_report(results, plan.out)
    rows = rows_of(results)
    console = _wide_console()
    console.print(rich_table(rows, title=task_title(results)))
    for note in table_notes(rows):
        console.print(note)
    reporter.log(f"wrote {path}, {reports['markdown']} and {reports['plot']}")


class Interrupted(Exception):
    pass


def _wide_console() -> Any:
    """Stdout console; when piped, wide enough that tables are not truncated."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


@cli.command()
@click.option("--task", help="Task spec (see `mobench ls tasks`).")
@click.option("--methods", "methods_text", metavar="SPECS", help="Comma-separated method specs.")
@click.option("--grid", type=int, help="Preferences per objective axis the run will sweep (MORLHF trains one "
              "policy per preference; default: the task's grid).")
@click.option("--prefs", "prefs_file", type=click.Path(path_type=Path), help="Preference file the run will sweep.")
@click.option("--seed", type=int, help="Seed of every training step (default 0).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML run configuration.")
@click.option("--offline", is_flag=True, default=None,
              help="Use local paths and the hub cache only; fail at once, naming any missing model or dataset.")
@click.pass_context
def prepare(ctx: click.Context, task: str | None, methods_text: str | None, grid: int | None,
            prefs_file: Path | None, seed: int | None, config_file: Path | None, offline: bool | None) -> None:
    """Build every artifact the methods need (SFT policy, RL backbones, judges, MORLHF's per-preference
    policies) without sweeping."""
    from mobench.artifacts import ArtifactStore
    from mobench.config import build_run_config
    from mobench.progress import Reporter
    from mobench.runner import prepare_all, resolve

    config = build_run_config(config_file, task=task, methods=methods_text, grid=grid, prefs=prefs_file, seed=seed,
                              out=None, no_train=None, ctrl_ties=None, limit=None, offline=offline)
    plan = resolve(config, create_out=False)
    reporter = Reporter(quiet=ctx.obj["quiet"])
    try:
        used = prepare_all(plan, ArtifactStore(), reporter)
    except KeyboardInterrupt:
        raise Interrupted("interrupted: finished artifacts are kept; rerun to build the rest") from None
    for artifact in used:
        click.echo(f"{artifact['id']}  {artifact['kind']}")


@cli.command(name="judge")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--judges", "judges_text", required=True, metavar="SPECS",
              help="Comma-separated judge specs, e.g. \"gpt4-pairwise:base_url='http://localhost:8000/v1':model=m\" "
                   "(quote values that hold a colon).")
@click.option("--limit", type=int, help="Judge only the first N test prompts, with all their samples (a quick, cheap trial).")
@click.pass_context
def judge_run(ctx: click.Context, run_dir: Path, judges_text: str, limit: int | None) -> None:
    """Score a finished run's saved generations again (no regeneration); writes RUN_DIR/judged/."""
    from mobench.params import split_top_level
    from mobench.progress import Reporter
    from mobench.rejudge import rejudge

    specs = [s.strip() for s in split_top_level(judges_text) if s.strip()]
    if not specs:
        raise MobenchError("no judges given; see `mobench ls judges`")
    try:
        written = rejudge(run_dir, specs, limit, Reporter(quiet=ctx.obj["quiet"]))
    except KeyboardInterrupt:
        from mobench.judge import PairwiseJudge
        from mobench.registry import judges

        # Only a pairwise (API) judge caches its verdicts; a pointwise judge's report is written whole.
        pairwise = any(isinstance(judges.create(spec), PairwiseJudge) for spec in specs)
        raise Interrupted(f"interrupted: judges that finished have their reports in {run_dir / 'judged'}"
                          + ("; the pairwise verdicts so far are cached, rerun to go on" if pairwise
                             else "; rerun to score with the rest")) from None
    for path in written:
        click.echo(f"wrote {path}")


@cli.command(name="ls")
@click.argument("kind", type=click.Choice(["tasks", "methods", "judges"]))
def list_components(kind: str) -> None:
    """List registered tasks, methods or judges with their parameters."""
    from rich.markup import escape
    from rich.table import Table

    from mobench import registry
    from mobench.params import param_fields

    reg = {"tasks": registry.tasks, "methods": registry.methods, "judges": registry.judges}[kind]
    table = Table(title=f"mobench {kind}", show_lines=False)
    table.add_column("name", style="bold", overflow="fold")
    table.add_column("description", overflow="fold")
    if kind == "tasks":
        table.add_column("objectives", overflow="fold")
        table.add_column("assets", overflow="fold")
    table.add_column("parameters", overflow="fold")
    for name in reg.names():
        cls = reg.get(name)
        params = "\n".join(f"{p.name}: {p.type}" + ("" if p.required else f" = {p.default!r}")
                           + (f"  ({p.help})" if p.help else "") for p in param_fields(cls.Params)) or "–"
        description = cls.description() if callable(cls.description) else str(cls.description)
        row = [name, description]
        if kind == "tasks":
            row.append(" vs ".join(o.name for o in cls.objectives))
            row.append(_asset_lines(cls))
        row.append(params)
        table.add_row(*(escape(cell) for cell in row))  # "[missing: …]" and "[a=b]" are text, not rich markup
    _wide_console().print(table)


def _asset_lines(cls: Any) -> str:
    """What a task loads and from where: local, hub cache or hub (file checks only, no network)."""
    if not hasattr(cls, "assets"):
        return "built in (offline)"
    from mobench.hub import status

    try:
        assets = cls().assets()
    except Exception as exc:  # a plugin task whose defaults cannot be built still gets listed
        return f"unknown ({exc})"
    return "\n".join(f"{a.role}: {a.source or '(not set)'} [{status(a)}]" for a in assets)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "formats", type=click.Choice(["md", "html"]), multiple=True,
              help="Output format(s); default both.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Folder that receives leaderboard.md / leaderboard.html.")
def leaderboard(paths: tuple[Path, ...], formats: tuple[str, ...], out: Path) -> None:
    """Collect results files (default: everything under results/) into one table per task."""
    from mobench.fileio import atomic_write_text
    from mobench.reports import collect, leaderboard_html, leaderboard_markdown
    from mobench.runner import check_out_dir

    sources = list(paths) or [Path("results")]
    boards = collect(sources)
    if not boards:
        raise MobenchError(f"no results.json found under {', '.join(str(p) for p in sources)}")
    check_out_dir(out)
    for title, board in boards.items():
        for replaced in board["replaced"]:
            click.echo(f"{title.split(' (')[0]}: {replaced} (one row per method; the later file wins)", err=True)
    written = []
    for fmt in formats or ("md", "html"):
        path = out / f"leaderboard.{fmt}"
        atomic_write_text(path, leaderboard_markdown(boards) if fmt == "md" else leaderboard_html(boards))
        written.append(str(path))
    click.echo(f"{len(boards)} task table(s) -> {', '.join(written)}")


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="mobench", standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except MobenchError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return EXIT_USAGE
    except Interrupted as exc:
        click.echo(str(exc), err=True)
        return EXIT_INTERRUPTED
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a full disk, a read-only folder, MOBENCH_HOME under a file
        where = f" ({exc.filename})" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}; what finished before is kept, fix it and rerun",
                   err=True)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())

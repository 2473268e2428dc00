"""The ``ferrocim sweep`` command (registered on the main group in :mod:`ferrocim.cli`)."""

from __future__ import annotations

import click

from ferrocim.cli_errors import friendly, rerun_to_continue


@click.command("sweep")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="sweep directory"
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="local worker processes (default: cores // --threads)",
)
@click.option(
    "--threads",
    "--threads-per-worker",
    "threads_per_worker",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="torch threads of each point (each worker runs one point at a time)",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="use a running dask scheduler instead of a local cluster",
)
@click.option(
    "--retries",
    type=int,
    default=2,
    show_default=True,
    help="retries of a point that raised an unexpected error (it resumes)",
)
@click.option("--dry-run", is_flag=True, help="validate and list the points; run nothing")
@click.pass_context
@rerun_to_continue("finished points")
@friendly
def sweep_cmd(
    ctx: click.Context,
    sweep_file: str,
    out: str,
    workers: int | None,
    threads_per_worker: int,
    scheduler: str | None,
    retries: int,
    dry_run: bool,
) -> None:
    """Run every point of SWEEP_FILE (a run config plus [grid]/[[zip]]/[[points]]) on dask.

    Each point is a run directory OUT/runs/<hash of its config>: finished points are
    skipped, unfinished ones resume. Writes OUT/results.parquet; exit status 1 when a
    point failed.
    """
    from ferrocim.pipelines.sweep import point_state, run_dir_of, run_sweep
    from ferrocim.pipelines.sweep_spec import read_sweep

    sweep = read_sweep(sweep_file)
    if dry_run:
        for p in sweep.points:
            state = point_state(run_dir_of(out, p))
            click.echo(f"{p.index:4d} {p.id} {state:8} {p.describe()}")
        return
    result = run_sweep(
        sweep,
        out,
        workers=workers,
        threads_per_worker=threads_per_worker,
        scheduler=scheduler,
        retries=retries,
        echo=click.echo,
    )
    click.echo(
        f"{result.done}/{len(sweep.points)} points done ({result.ran} run now, "
        f"{result.skipped} already done), {len(result.failed)} failed; "
        f"results: {result.results}"
    )
    for point, error in result.failed:
        click.echo(f"FAILED point {point.index} {point.id} ({point.describe()}): {error}", err=True)
    if result.failed:
        ctx.exit(1)

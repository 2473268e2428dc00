"""``ferrocim import eeg-ferro``: a run directory from a published EEG-Ferro checkpoint."""

from __future__ import annotations

import click


@click.group("import")
def import_group() -> None:
    """Bring models trained elsewhere into ferrocim run directories."""


@import_group.command("eeg-ferro")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="RUN_DIR")
@click.option(
    "--kind",
    type=click.Choice(["float", "device"]),
    default="float",
    show_default=True,
    help="float network, or weights programmed onto the configured array",
)
@click.option(
    "--data",
    "data",
    default=None,
    type=click.Path(dir_okay=False),
    metavar="FILE.h5",
    help="prepared file (`ferrocim data prepare`) to evaluate and personalise the run on",
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="any config field")
def eeg_ferro(
    checkpoint: str,
    out: str,
    kind: str,
    data: str | None,
    config_path: str | None,
    sets: tuple[str, ...],
) -> None:
    """Import CHECKPOINT (``torch.save(net.state_dict())`` of the published code).

    The checkpoint was trained elsewhere: `evaluate` and `sstl` use every trial of the
    --data file (no fold of the published training applies to it)."""
    from ferrocim.cli_errors import friendly

    def run() -> None:
        from ferrocim.pipelines.config import parse_set_options
        from ferrocim.pipelines.interop import import_eeg_ferro

        rd = import_eeg_ferro(
            checkpoint,
            out,
            kind=kind,
            config_path=config_path,
            overrides=parse_set_options(sets),
            data=data,
        )
        on = f" on {data}" if data else " (no data: pass --data to evaluate/sstl)"
        click.echo(f"imported {checkpoint} as a {kind} run{on}: {rd.path}")

    friendly(run)()

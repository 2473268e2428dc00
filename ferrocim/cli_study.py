"""``ferrocim study …``: studies built from many runs (registered by :mod:`ferrocim.cli`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ferrocim.checks import InputError
from ferrocim.cli_errors import friendly, rerun_to_continue


def _floats(flag: str, text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{flag} takes comma-separated numbers, got {text!r}") from None


def _ints(flag: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{flag} takes comma-separated integers, got {text!r}") from None


_CARD_OPTIONS = [
    click.option(
        "--dut", "device_id", default=None, help="Device id to calibrate (e.g. ID170ZR5000)."
    ),
    click.option("--pooled", is_flag=True, help="Fit all devices of a width together."),
    click.option(
        "--pulse-energy",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="CSV 'width_s,energy_j' of measured write energies (else the published factors).",
    ),
]


def _card_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(_CARD_OPTIONS):
        fn = opt(fn)
    return fn


@click.group()
def study() -> None:
    """Studies over pulse widths, training rules and seeds."""


@study.command("cards")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@_card_options
@friendly
def cards_cmd(
    paths: tuple[str, ...],
    out_dir: str,
    device_id: str | None,
    pooled: bool,
    pulse_energy: str | None,
) -> None:
    """One device card per pulse width (with its energy per pulse) from measurement files."""
    from ferrocim.pipelines.width_cards import calibrate_by_width

    cards = calibrate_by_width(
        list(paths), out_dir, device=device_id, pooled=pooled, energy_table=pulse_energy
    )
    for c in cards:
        click.echo(
            f"{c.tag:>7}  {c.energy_j:.3g} J/pulse ({c.energy_source.split(':')[0]})  "
            f"LTP a={c.card.ltp.a:.3g}  LTD a={c.card.ltd.a:.3g}  -> {c.path}"
        )
    click.echo(f"index: {out_dir}/widths.json")


@study.command("energy-convergence")
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Study TOML: the options below as top-level keys and an [array] table (weight "
    "window, symmetry reference, pulse order, dw_min, periphery); flags given override it.",
)
@click.option(
    "--set",
    "set_items",
    multiple=True,
    metavar="array.FIELD=VALUE",
    help="Override one array field (e.g. array.weight_window=fixed); repeatable.",
)
@click.option(
    "--cards",
    "cards_dir",
    required=True,
    type=click.Path(exists=True),
    help="Card folder (widths.json or a calibration output) or measurements to calibrate.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--rules", default="plain,symmetry,mixed", show_default=True)
@click.option(
    "--widths", default="2e-8,2e-7,2e-6,2e-5,2e-4,2e-3", show_default=True, help="Pulse widths (s)."
)
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--samples", default=None, type=int, help="Cap on the training samples.")
@click.option("--seeds", default="0", show_default=True)
@click.option("--data", type=click.Choice(["digits", "mnist"]), default="digits", show_default=True)
@click.option(
    "--root",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of the MNIST IDX files (--data mnist).",
)
@click.option("--lr", default=0.1, show_default=True, type=float)
@click.option("--batch-size", default=16, show_default=True, type=int)
@click.option("--bl", default=31, show_default=True, type=int, help="Pulse-train length.")
@click.option(
    "--target",
    default=0.8,
    show_default=True,
    type=float,
    help="Test accuracy (fraction) for the energy to target.",
)
@click.option(
    "--device", "torch_device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True
)
@click.option("--no-report", is_flag=True, help="Skip report.html (results.parquet only).")
@_card_options
@click.pass_context
@rerun_to_continue("finished runs")
@friendly
def energy_convergence_cmd(
    ctx: click.Context,
    config_path: str | None,
    set_items: tuple[str, ...],
    cards_dir: str,
    out_dir: str,
    rules: str,
    widths: str,
    seeds: str,
    device_id: str | None,
    pooled: bool,
    pulse_energy: str | None,
    torch_device: str,
    no_report: bool,
    **kw: Any,
) -> None:
    """Train a digit MLP per pulse width × rule × seed; results.parquet and report.html."""
    from click.core import ParameterSource

    from ferrocim.crossbar import AnalogConfig
    from ferrocim.pipelines.config import apply_overrides, parse_set_options
    from ferrocim.pipelines.energy_study import (
        StudyConfig,
        run_study,
        study_config_data,
    )

    flags = {
        "widths": _floats("--widths", widths),
        "rules": tuple(r.strip() for r in rules.split(",") if r.strip()),
        "seeds": _ints("--seeds", seeds),
        "device": torch_device,
        **kw,
    }
    source = {"device": "torch_device"}
    data = study_config_data(config_path) if config_path else {}
    for key, value in flags.items():
        given = ctx.get_parameter_source(source.get(key, key)) == ParameterSource.COMMANDLINE
        if given or key not in data:
            data[key] = value
    if set_items:
        sets = parse_set_options(set_items)
        bad = [k for k in sets if not k.startswith("array.")]
        if bad:
            raise InputError(f"--set takes array.FIELD=VALUE here, got {', '.join(bad)}")
        # only the fields the file gave, so that --set array.periphery=... fills the rest
        given = data.get("array", AnalogConfig())
        base = given.model_dump(mode="json", exclude={"card"}, exclude_unset=True)
        arr = apply_overrides(base, {k.removeprefix("array."): v for k, v in sets.items()})
        data["array"] = AnalogConfig(**arr)
    cfg = StudyConfig(**data)
    res = run_study(
        cfg,
        cards_dir,
        out_dir,
        device_id=device_id,
        pooled=pooled,
        energy_table=pulse_energy,
        report=not no_report,
    )
    cols = [
        "width_s",
        "rule",
        "seed",
        "final_acc",
        "pulses",
        "total_energy_j",
        "energy_to_target_j",
    ]
    click.echo(res.results[cols].to_string(index=False, float_format="{:.4g}".format))
    click.echo(f"results: {res.out_dir / 'results.parquet'}")
    if res.report_path is not None:
        click.echo(f"report: {res.report_path}")

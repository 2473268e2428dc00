"""The ``ferrocim`` command. Only this module knows the command line.

Each subcommand parses its options, calls one library function and prints where the
results went. Bad input raises :class:`ferrocim.checks.InputError`, shown as a one-line
error with exit status 2 (no traceback).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from ferrocim import __version__
from ferrocim.checks import FerrocimError
from ferrocim.cli_errors import INTERRUPTED, friendly
from ferrocim.cli_import import import_group
from ferrocim.cli_study import study as study_group
from ferrocim.cli_sweep import sweep_cmd

log = logging.getLogger("ferrocim")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="ferrocim")
@click.option(
    "-v", "--verbose", count=True, show_default=False, help="more messages (-vv: with sources)"
)
@click.option("-q", "--quiet", is_flag=True, help="warnings and results only, no progress bars")
def main(verbose: int, quiet: bool) -> None:
    """ferrocim: ferroelectric-synapse calibration, crossbar simulation and SNN training.

    Progress goes to stderr: one line per epoch, bars only on a terminal (TQDM_DISABLE=1
    or --quiet turns them off).
    """
    from ferrocim.logs import setup

    setup(verbose, quiet=quiet)


main.add_command(import_group)  # `ferrocim import eeg-ferro` (ferrocim/cli_import.py)


# ---------------------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------------------
@main.group()
def devices() -> None:
    """Built-in and calibrated device cards."""


@devices.command("list")
@click.argument("folders", nargs=-1, type=click.Path(exists=True, file_okay=False))
def devices_list(folders: tuple[str, ...]) -> None:
    """List the built-in cards, then calibrated cards found in FOLDERS.

    Cards are the JSON files in a `cards/` folder (what `calibrate` writes). Without
    FOLDERS they are looked for under ./out and ./reports (README and `demo` defaults).
    A card written into several folders is listed once; every listed name works as
    `--card NAME` and `devices show NAME` (a name two different cards share needs the path).
    """
    from ferrocim.calibration.card import DEFAULT_PRESET, DeviceCard, preset, preset_names
    from ferrocim.cards import ambiguous_names, calibrated_cards

    def line(name: str, c: DeviceCard, note: str = "") -> str:
        ltp = ", ".join(f"{v:.4g}" for v in c.ltp.as_tuple())
        ltd = ", ".join(f"{v:.4g}" for v in c.ltd.as_tuple())
        w = "—" if c.symmetry_point is None else f"{c.symmetry_point:.3f}"
        return f"{name:14} {ltp:28} {ltd:28} {w:6} {note}".rstrip()

    click.echo(f"{'name':14} {'LTP (A, alpha, beta)':28} {'LTD (A, alpha, beta)':28} {'W*':6}")
    for name in preset_names():
        click.echo(line(name, preset(name), "(default)" if name == DEFAULT_PRESET else ""))
    found = calibrated_cards(folders)
    shared = ambiguous_names(found)
    for entry in found:
        first, *more = entry.paths
        note = str(first)
        if more:
            note += f" (same card also in {', '.join(str(p.parent.parent) for p in more)})"
        if entry.name in shared:
            note += " [name shared by different cards: use the path]"
        click.echo(line(entry.name, entry.card, note))
    if not found:
        where = ", ".join(folders) if folders else "./out, ./reports"
        click.echo(f"(no calibrated cards under {where}; `ferrocim calibrate` writes them)")


@devices.command("show")
@click.argument("card")
@click.option("--json", "as_json", is_flag=True, help="print the whole card as JSON")
@friendly
def devices_show(card: str, as_json: bool) -> None:
    """Summarise a card (preset, calibrated card name from `devices list`, or card JSON
    path); --json prints all of it."""
    from ferrocim.calibration.card import resolve_card
    from ferrocim.cards import card_spec
    from ferrocim.reports import formatting as fmt

    c = resolve_card(card_spec(card, "CARD"))
    if as_json:
        click.echo(json.dumps(c.to_dict(), indent=2))
        return
    w = "—" if c.symmetry_point is None else f"{c.symmetry_point:.3f}"
    rows = [
        ("card", c.name),
        ("description", c.description),
        ("LTP A, alpha, beta", ", ".join(f"{v:.4g}" for v in c.ltp.as_tuple())),
        ("LTD A, alpha, beta", ", ".join(f"{v:.4g}" for v in c.ltd.as_tuple())),
        (
            "conductance window",
            f"{fmt.quantity(c.g_min_s, 'conductance')} – {fmt.quantity(c.g_max_s, 'conductance')}",
        ),
        ("symmetry point W*", w),
        ("pulse width", fmt.quantity(c.pulse.width_s, "time")),
        (
            "rsd c2c LTP / LTD",
            f"{c.variability.rsd_c2c_ltp:.3g} / {c.variability.rsd_c2c_ltd:.3g}",
        ),
    ]
    if c.fit:
        r2w = c.fit.get("r2_w") or {}
        rows.append(
            ("R² trajectory LTP / LTD", f"{fmt.r2(r2w.get('ltp'))} / {fmt.r2(r2w.get('ltd'))}")
        )
    for label, value in rows:
        click.echo(f"{label:24} {value}")
    if c.fit:  # a calibrated card: its fit as lmfit-style text
        click.echo("")
        click.echo(c.fit_report())
    click.echo("(--json prints the whole card)")


@devices.command("export")
@click.argument("card")
@click.option(
    "--to", "target", type=click.Choice(["aihwkit"]), required=True, help="simulator format"
)
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False), help="FILE.json (+ FILE.py)"
)
@click.option("--nodes", default=63, type=int, help="table nodes over [w_min, w_max], 2-63")
@click.option("--w-max", default=1.0, type=float, help="weight bound b (tile weight units)")
@click.option(
    "--reference",
    type=click.Choice(["mid", "symmetry"]),
    default="mid",
    help="weight 0 at W = 0.5 (mid) or at the card's symmetry point",
)
@click.option(
    "--asymmetry",
    type=click.Choice(["tables", "up_down"]),
    default="tables",
    help="up/down asymmetry in the tables (dw_min = up step at the middle node) "
    "or in aihwkit's up_down",
)
@click.option("--no-dtod", is_flag=True, help="leave the card's device-to-device spread out")
@friendly
def devices_export(
    card: str,
    target: str,
    out: str,
    nodes: int,
    w_max: float,
    reference: str,
    asymmetry: str,
    no_dtod: bool,
) -> None:
    """Write CARD (preset, calibrated card name or card JSON) for another simulator: for
    aihwkit a PiecewiseStepDevice in FILE.json and FILE.py, a snippet that builds the
    rpu_config."""
    from ferrocim.cards import card_spec
    from ferrocim.crossbar.aihwkit_export import export_aihwkit

    json_path, snippet = export_aihwkit(
        card_spec(card, "CARD"),
        out,
        n_nodes=nodes,
        w_max=w_max,
        reference=reference,
        asymmetry=asymmetry,
        dtod=not no_dtod,
    )
    dev = json.loads(json_path.read_text(encoding="utf-8"))["device"]
    click.echo(
        f"{target}: PiecewiseStepDevice, {nodes} nodes over [{dev['w_min']:.4g}, "
        f"{dev['w_max']:.4g}], dw_min {dev['dw_min']:.4g}, dw_min_std {dev['dw_min_std']:.3g}"
    )
    click.echo(f"device parameters: {json_path}")
    click.echo(f"rpu_config snippet: {snippet}")


# ---------------------------------------------------------------------------------------
# calibrate  (ferrocim.calibration)
# ---------------------------------------------------------------------------------------
def _pm(x: float, err: float | None) -> str:
    """``x ± err`` to three decimals (``x`` alone without an error)."""
    return f"{x:.3f}" if err is None else f"{x:.3f}±{err:.3f}"


#: Warnings of a calibration printed on stderr (all of them go to log.txt).
MAX_WARNINGS_SHOWN = 30


def _read_words(card: Any) -> str:
    """The card's read noise in its chosen form: '0.003±0.000 (additive, of the window)',
    '0.013±0.001 of G (proportional)' or both."""
    v = card.variability
    form = (card.fit.get("noise") or {}).get("read_noise_form", "additive")
    add = _pm(v.read_noise_rsd, v.read_noise_stderr)
    prop = _pm(v.read_noise_g_rsd, v.read_noise_g_stderr)
    if form == "proportional":
        return f"{prop} of G (proportional)"
    if form == "both":
        return f"{add} of the window + {prop} of G"
    return f"{add} of the window (additive)"


def _r2dw(card: Any) -> str:
    """'0.380/-0.046': the card's R² on the step (dW) metric, LTP/LTD."""
    r2 = card.fit.get("r2_dw") or {}
    return "/".join("–" if r2.get(k) is None else f"{r2[k]:.3f}" for k in ("ltp", "ltd"))


def _window_words(window: dict[str, Any]) -> str:
    """'fitted (extrapolated)', 'sweep (measured range)' … for the one-line card summary."""
    return f"{window.get('normalisation', '?')} ({window.get('status', '?')})"


@main.command("calibrate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder: cards/, sweeps.csv, plots/, calibration.html, log.txt.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "b1500", "b2912b", "csv"]),
    default="auto",
    show_default=True,
    help="Input format (auto: from the content).",
)
@click.option(
    "--ltp-polarity",
    type=click.Choice(["auto", "positive", "negative"]),
    default="auto",
    show_default=True,
    help="Write polarity that potentiates.",
)
@click.option(
    "--normalise",
    type=click.Choice(["auto", "fitted", "sweep", "global"]),
    default="auto",
    show_default=True,
    help="Conductance window: fitted with the kernels (one window for LTP and LTD), "
    "min-max of each sweep's reads (sweep) or of all reads (global); auto: the fitted "
    "window where the data identify it and it fits at least as well as min-max per sweep "
    "(the card and report say which and why).",
)
@click.option(
    "--method",
    type=click.Choice(["difference", "trajectory", "paper"]),
    default="trajectory",
    show_default=True,
    help="Fit whose parameters go into the cards (all are reported).",
)
@click.option(
    "--columns",
    default=None,
    help="CSV column mapping, e.g. 'amplitude=V,resistance=R,sweep=cycle'.",
)
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CSV column mapping as a TOML file.",
)
@click.option("--pulse-width", type=float, default=None, help="Pulse width (s) for CSV input.")
@click.option("--read-voltage", type=float, default=None, help="Read voltage (V) for CSV input.")
@click.option(
    "--read-column",
    type=click.Choice(["R_low", "R_high"]),
    default="R_low",
    show_default=True,
    help="B1500 resistance column used as the read.",
)
@click.option(
    "--g-min", type=float, default=None, help="Known Gmin (S): the window is given, not fitted."
)
@click.option(
    "--g-max", type=float, default=None, help="Known Gmax (S): the window is given, not fitted."
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the symmetry-point error sampling.",
)
@click.option("--no-plots", is_flag=True, help="Skip the PNG figures.")
@click.pass_context
@friendly
def calibrate_cmd(
    ctx: click.Context,
    paths: tuple[str, ...],
    out_dir: str,
    fmt: str,
    columns: str | None,
    mapping: str | None,
    pulse_width: float | None,
    read_voltage: float | None,
    g_min: float | None,
    g_max: float | None,
    no_plots: bool,
    **kw: Any,
) -> None:
    """Fit device cards to pulse-train measurements in PATHS (files or folders).

    Exit status 1 when any file or device failed (the others are still written).
    """
    from ferrocim.calibration import CalibrationOptions, calibrate
    from ferrocim.calibration.readers import ColumnMapping
    from ferrocim.checks import InputError

    if columns and mapping:
        raise InputError("give either --columns or --mapping, not both")
    colmap = None
    if columns:
        colmap = ColumnMapping.from_string(
            columns, pulse_width_s=pulse_width, read_voltage_v=read_voltage
        )
    elif mapping:
        colmap = ColumnMapping.from_toml(mapping)
    opts = CalibrationOptions(
        format=fmt, mapping=colmap, g_min_s=g_min, g_max_s=g_max, plots=not no_plots, **kw
    )
    from pathlib import Path

    from ferrocim.atomic import remove_temporaries
    from ferrocim.io_errors import check_writable, output_errors
    from ferrocim.locks import writer_lock
    from ferrocim.reports.calibration import write_calibration_report

    check_writable(out_dir, "--out")  # before the fits, not after
    with (
        writer_lock(out_dir, "ferrocim calibrate", inside=True),
        output_errors(out_dir, f"writing the calibration into {out_dir}"),
    ):
        for sub in ("", "cards", "plots"):  # of a calibration that was stopped
            remove_temporaries(Path(out_dir) / sub, recursive=False)
        res = calibrate(list(paths), out_dir, opts)
        res.report_path = write_calibration_report(res, res.out_dir, plots=opts.plots)
    for d in res.duts:
        c = d.card
        v = c.variability
        click.echo(
            f"{d.name:22} LTP {c.ltp.a:.3g}, {c.ltp.alpha:.3g}, {c.ltp.beta:.3g}  "
            f"LTD {c.ltd.a:.3g}, {c.ltd.alpha:.3g}, {c.ltd.beta:.3g}  "
            f"R² {c.fit['r2_ltp']:.3f}/{c.fit['r2_ltd']:.3f} (dW {_r2dw(c)})  "
            f"read noise {_read_words(c)}  "
            f"c2c {_pm(v.rsd_c2c_ltp, v.rsd_c2c_stderr)}  "
            f"window {_window_words(c.fit.get('window') or {})}  -> {d.card_path}"
        )
    if (rec := res.recommended()) is not None:  # among all cards in --out (merge by device)
        click.echo(f"recommended card: {rec[0]} ({rec[1]}; why: see the report)")
    if res.skipped:
        click.echo(f"skipped {len(res.skipped)} file(s) (see {res.out_dir / 'log.txt'})")
    if res.warnings:
        # on the terminal, not only in log.txt: each names its file and line
        for w in res.warnings[:MAX_WARNINGS_SHOWN]:
            click.echo(f"warning: {w}", err=True)
        more = len(res.warnings) - MAX_WARNINGS_SHOWN
        tail = f", {more} more not shown" if more > 0 else ""
        click.echo(f"{len(res.warnings)} warning(s){tail} (all in {res.out_dir / 'log.txt'})")
    click.echo(f"report: {res.report_path}")
    if res.failures:
        for src, msg in res.failures:
            click.echo(f"FAILED {src}: {msg}", err=True)
        ctx.exit(1)


# ---------------------------------------------------------------------------------------
# data  (ferrocim.snn.data)
# ---------------------------------------------------------------------------------------
@main.group()
def data() -> None:
    """EEG data: synthetic motor imagery and the EEGMMIDB loader."""


@data.command("synth")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="folder")
@click.option(
    "--subjects",
    "n_subjects",
    type=click.IntRange(min=1),
    default=None,
    help="how many [default: 10, as `train` generates]",
)
@click.option("--seed", default=0, show_default=True, help="random seed")
@friendly
def data_synth(out: str, n_subjects: int | None, seed: int) -> None:
    """Write synthetic motor-imagery EEG in the PhysioNet EEGMMIDB EDF layout.

    `train float --data OUT` trains on it (prepared once into OUT.h5); with the default
    --subjects and --seed these are the data `train` generates by itself.
    """
    from ferrocim.pipelines.config import DataConfig
    from ferrocim.pipelines.data import folder_cache_path
    from ferrocim.snn.data import synthesize_edf

    if n_subjects is None:
        n_subjects = DataConfig().n_subjects
    root = synthesize_edf(out, n_subjects, seed=seed, progress=True)
    click.echo(f"wrote {n_subjects} subjects (runs 1-14) to {root}")
    click.echo(
        f"next: ferrocim train float --data {root} (prepares it once into "
        f"{folder_cache_path(root)}), or `ferrocim data prepare --root {root} --out FILE.h5` "
        "for other preprocessing"
    )


@data.command("stats")
@click.argument("caches", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--seed", default=0, show_default=True, help="seed of the cross-validation splits")
@friendly
def data_stats(caches: tuple[str, ...], seed: int) -> None:
    """What prepared caches hold, side by side: band power shares, 1/f slope, lag-1
    autocorrelation, mu peak, rms (µV), class effect sizes and where a linear reader finds
    the class information (below / above 4 Hz). Compare a synthetic cache with a real one."""
    from ferrocim.snn.data.signal_stats import cache_statistics, format_comparison

    columns = {c: cache_statistics(c, seed=seed) for c in caches}
    click.echo(format_comparison(columns))


@data.command("prepare")
@click.option("--root", required=True, type=click.Path(), help="EEGMMIDB (or synthetic) root")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="FILE.h5")
@click.option("--subjects", default=None, help="comma-separated subject numbers, e.g. 1,2,3")
@click.option(
    "--l-freq",
    default=0.1,
    show_default=True,
    help="high-pass edge, Hz, applied before normalisation (4: no slow or ocular content)",
)
@click.option(
    "--h-freq", default=79.0, show_default=True, help="low-pass edge, Hz (4: slow content only)"
)
@click.option("--force", is_flag=True, help="rebuild even if the cache is current")
@click.option(
    "--normalization",
    type=click.Choice(["global", "per_run"]),
    default="global",
    show_default=True,
    help="z-score with one mean/s.d. per channel over all subjects (published) or per run",
)
@click.option(
    "--stats-runs",
    default="1-14",
    show_default=True,
    help="runs giving the global statistics: 1-14 (published) or a list such as 4,8,12",
)
@click.option(
    "--stats-from",
    "stats_from",
    default=None,
    metavar="RUN_OR_CACHE",
    help="z-score with the per-channel mean/s.d. recorded in a run (RUN/data.json) or a "
    "prepared file, e.g. a training population's, instead of the subjects' own",
)
@friendly
def data_prepare(
    root: str,
    out: str,
    subjects: str | None,
    l_freq: float,
    h_freq: float,
    force: bool,
    normalization: str,
    stats_runs: str,
    stats_from: str | None,
) -> None:
    """Band-pass, z-score and cut cue windows into an HDF5 cache (reused while current).

    The cache records the per-channel mean/s.d. it was z-scored with; --stats-from
    normalises new subjects with another population's (a run's or a cache's).
    """
    from ferrocim.checks import InputError
    from ferrocim.snn.data import load_prepared, prepare_eegmmidb

    chosen = None
    if subjects:
        try:
            chosen = [int(s) for s in subjects.replace(" ", "").split(",") if s]
        except ValueError:
            raise InputError(f"--subjects: expected numbers like 1,2,3, got {subjects!r}") from None
    try:
        runs = (
            list(range(1, 15))
            if stats_runs.strip() == "1-14"
            else [int(r) for r in stats_runs.replace(" ", "").split(",") if r]
        )
    except ValueError:
        raise InputError(
            f"--stats-runs: expected 1-14 or numbers like 4,8,12, got {stats_runs!r}"
        ) from None
    stats = None
    if stats_from is not None:
        from ferrocim.pipelines.runs import population_stats

        stats = population_stats(stats_from)
    from pathlib import Path

    from ferrocim.atomic import remove_temporaries
    from ferrocim.io_errors import check_writable, output_errors
    from ferrocim.locks import writer_lock

    check_writable(Path(out).parent, "the folder of --out")  # before the filtering
    with writer_lock(out, "ferrocim data prepare"), output_errors(out, f"preparing {out}"):
        remove_temporaries(Path(out).parent, Path(out).name)  # of a prepare that was stopped
        path = prepare_eegmmidb(
            root,
            out,
            subjects=chosen,
            stats=stats,
            l_freq=l_freq,
            h_freq=h_freq,
            progress=True,
            force=force,
            normalization=normalization,  # type: ignore[arg-type]
            stats_runs=runs,
        )
    ds = load_prepared(path)
    n_left = int((ds.y == 0).sum())
    click.echo(
        f"{path}: {len(ds)} trials ({n_left} left, {len(ds) - n_left} right) "
        f"from {len(ds.subjects)} subjects"
    )
    click.echo(f"  z-scored {ds.meta['params']['zscore']}")


# ---------------------------------------------------------------------------------------
# train / retune / sstl / evaluate / report / demo  (ferrocim.pipelines, ferrocim.reports)
# ---------------------------------------------------------------------------------------
#: CLI flag → dotted config field (ferrocim.pipelines.config describes the spine). Every
#: paper knob is a flag; every field, flag or not, is reachable with --set FIELD=VALUE.
#: Which flags a command has is :data:`_RUN_KNOBS`.
_KNOBS: dict[str, tuple[str, Any, str]] = {
    "card": (
        "array.card",
        str,
        "device card: preset (dut1..dut5), a calibrated card's name (`devices list`) or "
        "card JSON path",
    ),
    "eps": ("array.programming.eps", float, "pulse threshold as a fraction of 2·w_max"),
    "thr_asym": ("array.programming.thr_asym", float, "LTD threshold multiplier"),
    "a_scale": ("array.programming.a_scale", float, "multiplies both kernel amplitudes"),
    "a_asym": ("array.programming.a_asym", float, "multiplies the LTD kernel amplitude"),
    "rsd_c2c": (
        "array.programming.rsd_c2c",
        float,
        "cycle-to-cycle rel. s.d.",
    ),
    "x": ("transfer.x", float, "programming noise on transfer: s.d. = mean|w| / x"),
    "q": ("transfer.q", int, "quantise to q+1 levels on transfer (2,4,8,16,32)"),
    "lr": ("train.lr", float, "learning rate"),
    "epochs": ("train.epochs", int, "training epochs"),
    "batch_size": ("train.batch_size", int, "mini-batch size"),
    "dropout": ("network.dropout", float, "per-sequence dropout of tc1, r1, fc1 (paper 0.3)"),
    "width": ("network.width", float, "channel multiplier (1 = the paper's network)"),
    "precision": (
        "network.precision",
        click.Choice(["fp32", "bf16"]),
        "synapse products in float32 (the paper's) or bfloat16 autocast (faster on "
        "AVX-512 BF16 CPUs and GPUs; states, weights and the pulse rule stay float32)",
    ),
    "fold": ("data.fold", int, "cross-validation fold"),
    "seed": ("seed", int, "run seed"),
    "subjects": ("data.n_subjects", int, "synthetic subjects (generated data only)"),
    "device": ("device", click.Choice(["cpu", "cuda"]), "compute device"),
    "threads": (
        "threads",
        click.IntRange(min=1),
        "torch CPU threads (default: physical cores; FERROCIM_THREADS=auto: idle ones)",
    ),
    "name": ("name", str, "run name (folder under --out-dir)"),
    "out_dir": ("out_dir", str, "where run folders go"),
}

_ARRAY_KNOBS = ("card", "eps", "thr_asym", "a_scale", "a_asym", "rsd_c2c")
_TRAIN_KNOBS = ("lr", "epochs", "batch_size")
_COMMON_KNOBS = ("seed", "device", "precision", "threads", "name", "out_dir")

#: The flags of each run command: only what the command uses. Re-tuning takes the width
#: and the data from its float run; SSTL also from its base run, and trains with its own
#: schedule (--sstl-lr, --sstl-epochs); on-device training from scratch transfers nothing.
_RUN_KNOBS: dict[str, tuple[str, ...]] = {
    "float": (*_TRAIN_KNOBS, "dropout", "width", "fold", "subjects", *_COMMON_KNOBS),
    "device": (
        *_ARRAY_KNOBS,
        *_TRAIN_KNOBS,
        "dropout",
        "width",
        "fold",
        "subjects",
        *_COMMON_KNOBS,
    ),
    "retune": (*_ARRAY_KNOBS, "x", "q", *_TRAIN_KNOBS, "dropout", *_COMMON_KNOBS),
    "sstl": (*_ARRAY_KNOBS, "x", "q", "dropout", *_COMMON_KNOBS),
}

_BASE_DEFAULT = "the base run's"
#: ``(command, flag key)`` → what the help shows as the default where it is not the
#: configuration's (values a run built on another run takes from that run).
_HELP_DEFAULTS: dict[tuple[str, str], str] = {
    **{(k, "rsd_c2c"): "the card's" for k in ("device", "retune")},
    ("retune", "dropout"): "the float run's",
    **{("sstl", k): f"{_BASE_DEFAULT}; from a float run: {{}}" for k in _ARRAY_KNOBS[1:-1]},
    ("sstl", "rsd_c2c"): f"{_BASE_DEFAULT}; from a float run: the card's",
    ("sstl", "card"): "dut2, for a float base run; a device or retune base run's own card",
    ("sstl", "x"): "none; for a float base run only (a device base run's tiles are loaded)",
    ("sstl", "q"): "none; for a float base run only (a device base run's tiles are loaded)",
    ("sstl", "dropout"): _BASE_DEFAULT,
}

_NO_ARRAY = "a float run has no array (train device, retune and sstl take it)"
_NO_TRANSFER = (
    "on-device training from scratch transfers no float weights (retune, and sstl from a "
    "float run, take it)"
)
_FROM_FLOAT_RUN = "re-tuning continues the float run's network on its data (--float-run)"
_FROM_BASE_RUN = (
    "SSTL continues the base run's network on its data (--base-run); other data: --data FILE.h5"
)
#: ``command`` → flags of other run commands it does not take, and why (the error says).
_NOT_HERE: dict[str, dict[str, str]] = {
    "float": {
        **{f"--{k.replace('_', '-')}": _NO_ARRAY for k in _ARRAY_KNOBS},
        "--x": _NO_ARRAY,
        "--q": _NO_ARRAY,
    },
    "device": {"--x": _NO_TRANSFER, "--q": _NO_TRANSFER},
    "retune": {
        "--width": _FROM_FLOAT_RUN,
        "--fold": _FROM_FLOAT_RUN,
        "--subjects": _FROM_FLOAT_RUN,
        "--data": _FROM_FLOAT_RUN,
    },
    "sstl": {
        "--lr": "SSTL has its own learning rate: --sstl-lr (sstl.lr, paper 6e-4)",
        "--epochs": "SSTL has its own epochs: --sstl-epochs (sstl.epochs, paper 5)",
        "--batch-size": "SSTL trains online: --set sstl.batch_size=N (paper 1)",
        "--width": _FROM_BASE_RUN,
        "--fold": _FROM_BASE_RUN,
        "--subjects": _FROM_BASE_RUN + " (the subjects to personalise: --sstl-subjects)",
    },
}


def _flag(key: str) -> str:
    return f"--{key.replace('_', '-')}"


def _knob_default(field: str) -> Any:
    """The configuration default of a dotted field (shown in ``--help``)."""
    from ferrocim.pipelines.config import RunConfig

    node: Any = RunConfig()
    for part in field.split("."):
        node = getattr(node, part)
    return node


class _KnobOption(click.Option):
    """A run flag whose ``[default: …]`` is read from the configuration when the help is
    shown (not when the command line is built: that would import torch for ``--version``)."""

    def __init__(self, *args: Any, field: str, default_text: str | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.field, self.default_text, self._help_done = field, default_text, False

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if not self._help_done:
            self._help_done = True
            default = _knob_default(self.field)
            text = self.default_text
            if text is not None and "{}" in text:
                text = text.format(default)
            if text is None and default is not None:
                text = str(default)
            if text is not None:
                self.help = f"{self.help} [default: {text}]"
        return super().get_help_record(ctx)


class _RunCommand(click.Command):
    """A run command that says why a flag of another run command does not apply to it
    (instead of click's "No such option … Did you mean …")."""

    def __init__(self, *args: Any, not_here: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.not_here = not_here or {}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            why = self.not_here.get(exc.option_name)
            if why is None:
                raise
            raise click.UsageError(
                f"{exc.option_name} does not apply to `{ctx.command_path}`: {why}", ctx
            ) from None


def _run_options(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of the run command ``kind``: its flags of :data:`_KNOBS`, then
    --data (not for retune), --set, --config, --run-dir and --resume."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        keys = [k for k in _KNOBS if k in _RUN_KNOBS[kind]]
        for key in reversed(keys):
            field, typ, help_ = _KNOBS[key]
            fn = click.option(
                _flag(key),
                key,
                cls=_KnobOption,
                field=field,
                default_text=_HELP_DEFAULTS.get((kind, key)),
                type=typ,
                default=None,
                help=help_,
                show_default=False,
            )(fn)
        if kind != "retune":
            fn = click.option(
                "--data",
                "data_source",
                default=None,
                help=(
                    "other data to personalise on: a prepared HDF5 file or an EDF folder "
                    "(default: the base run's)"
                    if kind == "sstl"
                    else "'synthetic' (default; generated under data.cache_dir), a prepared "
                    "HDF5 file (`ferrocim data prepare`) or an EDF folder (`ferrocim data "
                    "synth` or EEGMMIDB: prepared once into FOLDER.h5)"
                ),
            )(fn)
        fn = click.option(
            "--set", "sets", multiple=True, metavar="FIELD=VALUE", help="any config field"
        )(fn)
        fn = click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False),
            default=None,
            help="TOML configuration file",
        )(fn)
        fn = click.option(
            "--run-dir",
            default=None,
            type=click.Path(file_okay=False),
            help="run directory (default: OUT_DIR/NAME)",
        )(fn)
        fn = click.option(
            "--resume",
            is_flag=True,
            help="continue the run in --run-dir (or OUT_DIR/--name) from its last checkpoint",
        )(fn)
        return fn

    return decorate


def _data_path(src: str) -> str:
    """``--data`` as a prepared file: an EDF folder is prepared once into ``FOLDER.h5``
    (:func:`ferrocim.pipelines.data.prepare_folder`); a file is checked."""
    from pathlib import Path

    from ferrocim.pipelines.data import check_prepared_path, is_edf_folder, prepare_folder

    if Path(src).is_dir() and is_edf_folder(src):
        return str(prepare_folder(src))
    check_prepared_path(src)
    return src


def _subjects_not_here(n: int, data: str | None) -> str:
    return (
        f"--subjects {n} sets how many synthetic subjects are generated; with --data {data} "
        "(data.path) the subjects are those of the file (choose them when preparing it: "
        "`ferrocim data prepare --subjects 1,2,3`)"
    )


def _load_run_config(kind: str, kw: dict[str, Any], extra: dict[str, Any] | None = None):
    from ferrocim.calibration.card import resolve_card
    from ferrocim.cards import card_spec
    from ferrocim.pipelines.config import load_config, parse_set_options

    overrides: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, (field, _typ, _help) in _KNOBS.items():
        if kw.get(key) is not None:
            overrides[field] = kw[key]
            origins[field] = _flag(key)
    if kw.get("card") is not None:  # a calibrated card's name → the path of its file
        overrides["array.card"] = card_spec(kw["card"], "array.card (--card)")
    src = kw.get("data_source")
    if kw.get("subjects") is not None and src not in (None, "synthetic"):
        raise click.UsageError(_subjects_not_here(kw["subjects"], src))
    if src == "synthetic":  # given explicitly: overrides a config file's prepared source
        overrides["data.source"] = "synthetic"
    elif src is not None:
        overrides["data.source"] = "prepared"
        overrides["data.path"] = _data_path(src)
    overrides.update(extra or {})
    sets = parse_set_options(kw.get("sets", ()))
    overrides.update(sets)
    for key in sets:
        origins.pop(key, None)
    cfg = load_config(kw.get("config_path"), overrides, kind=kind, origins=origins)
    if kw.get("subjects") is not None and cfg.data.source == "prepared":
        raise click.UsageError(_subjects_not_here(kw["subjects"], cfg.data.path))
    card = getattr(cfg.array, "card", None)
    if isinstance(card, str):  # a wrong card is an error for every kind of run
        try:
            spec = card_spec(card, "array.card (--card)")
            resolve_card(spec)
        except FerrocimError as exc:
            msg = str(exc)
            if not msg.startswith("array.card"):
                msg = f"array.card (--card): {msg}"
            raise click.UsageError(msg) from None
        if spec != card:  # a name from a config file or --set
            cfg = load_config(
                kw.get("config_path"), {**overrides, "array.card": spec}, kind=kind, origins=origins
            )
    return cfg


def _run(pipeline: Callable[..., Any], cfg: Any, run_dir: str | None, resume: bool) -> Any:
    """Run ``pipeline`` (it holds the run's writer lock; a new run that fails before
    saving anything leaves no folder, one that fails later is marked ``failure.json``);
    the error of a marked run says how to retry it, Ctrl-C the exact command that
    continues it (exit status 130)."""
    from ferrocim.locks import LockedError
    from ferrocim.pipelines.runs import (
        FAILURE_RECORD,
        ResumeSettingsDiffer,
        retry_hint,
        run_path,
    )

    target = run_path(cfg, run_dir, resume=resume)
    command = f"{click.get_current_context().command_path} --resume --run-dir {target}"
    try:
        return pipeline(cfg, run_dir=target, resume=resume)
    except (LockedError, ResumeSettingsDiffer):
        raise
    except KeyboardInterrupt:
        _interrupted(target, command)
    except FerrocimError as exc:
        if (target / FAILURE_RECORD).is_file() and "exists already" not in str(exc):
            raise click.UsageError(f"{exc}\n{retry_hint(target, command)}") from None
        raise
    except BaseException:
        if (target / FAILURE_RECORD).is_file():
            click.echo(retry_hint(target, command), err=True)
        raise


def _interrupted(target: Any, command: str) -> None:
    """After Ctrl-C: where the run is kept and the exact command that continues it."""
    from ferrocim.pipelines.rundir import RunDir
    from ferrocim.pipelines.runs import resume_point

    if not RunDir(target).exists():
        click.echo(
            "\ninterrupted (Ctrl-C) before the run had saved anything (no folder is left); "
            "run the same command again to start it",
            err=True,
        )
    else:
        click.echo(
            f"\ninterrupted (Ctrl-C). The run is kept in {target}; it continues from "
            f"{resume_point(target)} with:\n  {command}",
            err=True,
        )
    raise click.exceptions.Exit(INTERRUPTED)


def _print_summary(run: Any) -> None:
    summary = run.read_summary().to_json()
    keys = (
        "test_acc",
        "transfer_test_acc",
        "acc_before",
        "acc_after",
        "gain",
        "programming_events",
        "pulses",
        "failed_devices",
        "wall_s",
    )
    parts = [
        f"{k}={summary[k]:.4g}" if isinstance(summary[k], float) else f"{k}={summary[k]}"
        for k in keys
        if k in summary
    ]
    click.echo(f"run: {run.path}\n  " + "  ".join(parts))
    from ferrocim.reports.headline import run_warnings

    for w in run_warnings(summary, run.read_config()):
        log.warning(w)


@main.group()
def train() -> None:
    """Float pretraining or on-device training of the EEG SNN."""


@train.command("float", cls=_RunCommand, not_here=_NOT_HERE["float"])
@_run_options("float")
@friendly
def train_float(resume: bool, run_dir: str | None, **kw: Any) -> None:
    """Adam pretraining of the float network; best model by validation accuracy.

    No array flags (--card, --eps, --q, ...): a float run has no array.
    """
    from ferrocim.pipelines.train import train as run_train

    cfg = _load_run_config("float", kw)
    _print_summary(_run(run_train, cfg, run_dir, resume))


@train.command("device", cls=_RunCommand, not_here=_NOT_HERE["device"])
@_run_options("device")
@friendly
def train_device(resume: bool, run_dir: str | None, **kw: Any) -> None:
    """On-device training from scratch with threshold-accumulated pulse updates."""
    from ferrocim.pipelines.train import train as run_train

    cfg = _load_run_config("device", kw)
    _print_summary(_run(run_train, cfg, run_dir, resume))


@main.command("retune", cls=_RunCommand, not_here=_NOT_HERE["retune"])
@click.option(
    "--float-run",
    default=None,
    type=click.Path(file_okay=False),
    help="run directory of the float model to transfer",
)
@click.option("--unfreeze", default=None, help="comma-separated layers to fine-tune (default all)")
@_run_options("retune")
@friendly
def retune_cmd(
    resume: bool, run_dir: str | None, float_run: str | None, unfreeze: str | None, **kw: Any
) -> None:
    """Transfer a float model onto tiles (--q, --x) and fine-tune it on device.

    The network width and the data are the float run's.
    """
    from ferrocim.pipelines.retune import retune

    extra: dict[str, Any] = {"retune.float_run": float_run}
    if unfreeze:
        extra["retune.unfreeze"] = [s.strip() for s in unfreeze.split(",") if s.strip()]
    cfg = _load_run_config("retune", kw, extra)
    _print_summary(_run(retune, cfg, run_dir, resume))


@main.command("sstl", cls=_RunCommand, not_here=_NOT_HERE["sstl"])
@click.option(
    "--base-run",
    default=None,
    type=click.Path(file_okay=False),
    help="run directory of the pooled model (float, device or retune)",
)
@click.option("--sstl-subjects", default=None, help="comma-separated test subjects (default all)")
@click.option("--sstl-lr", type=float, default=None, help="SSTL learning rate [default: 6e-4]")
@click.option("--sstl-epochs", type=int, default=None, help="SSTL epochs [default: 5]")
@click.option("--layers", default=None, help="layers retrained per subject (default fc1,fc2)")
@click.option(
    "--frozen-dropout",
    is_flag=True,
    default=None,
    help="keep dropout in frozen layers (published code; disables the prefix cache)",
)
@_run_options("sstl")
@friendly
def sstl_cmd(
    resume: bool,
    run_dir: str | None,
    base_run: str | None,
    sstl_subjects: str | None,
    sstl_lr: float | None,
    sstl_epochs: int | None,
    layers: str | None,
    frozen_dropout: bool | None,
    **kw: Any,
) -> None:
    """Subject-specific transfer learning of fc1+fc2 on device, online (batch 1).

    The network width, the data (unless --data) and, from a device or retune base run,
    the card and tiles are the base run's; the programming flags (--eps, ...) and
    --dropout default to the base run's values.
    """
    from ferrocim.pipelines.sstl import sstl

    extra: dict[str, Any] = {
        "sstl.base_run": base_run,
        "sstl.lr": sstl_lr,
        "sstl.epochs": sstl_epochs,
        "sstl.frozen_dropout": frozen_dropout,
    }
    if sstl_subjects:
        extra["sstl.subjects"] = _int_list(sstl_subjects, "--sstl-subjects")
    if layers:
        extra["sstl.layers"] = [s.strip() for s in layers.split(",") if s.strip()]
    cfg = _load_run_config("sstl", kw, extra)
    _print_summary(_run(sstl, cfg, run_dir, resume))


@main.command("evaluate")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None)
@click.option(
    "--data",
    "data_source",
    default=None,
    metavar="FILE.h5|FOLDER",
    help="evaluate on this prepared file or EDF folder (all its trials) instead of the run's "
    "own data; 'synthetic': the run's synthetic settings",
)
@click.option(
    "--subjects", default=None, help="comma-separated subjects (default: all in the split)"
)
@click.option(
    "--exclude-channels",
    default=None,
    help="channels zeroed after normalisation, e.g. F7,F8 or frontal-temporal "
    "(default: the run's data.exclude_channels)",
)
@click.option(
    "--q",
    "q",
    type=int,
    default=None,
    help="first round the device-mapped weights to q+1 levels in each layer's ±A "
    "(2, 4, 8, 16, 32; as on transfer, retune --q)",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16"]),
    default=None,
    help="synapse products in float32 or bfloat16 autocast (default: the run's)",
)
@friendly
def evaluate_cmd(
    run_dir: str,
    split: str,
    device: str | None,
    data_source: str | None,
    subjects: str | None,
    exclude_channels: str | None,
    q: int | None,
    precision: str | None,
) -> None:
    """Accuracy of a run's best model on its fold's test (or val/train) trials, or on
    other data (--data: every trial, or those of --subjects)."""
    from ferrocim.pipelines.config import load_config
    from ferrocim.pipelines.evaluate import evaluate_run
    from ferrocim.pipelines.rundir import RunDir

    data = None
    if data_source is not None:
        base = load_config(RunDir(run_dir).require().config).data.model_dump()
        if data_source == "synthetic":
            data = base | {"source": "synthetic", "path": None}
        else:
            data = base | {"source": "prepared", "path": _data_path(data_source)}
    from ferrocim.pipelines.config import DataConfig

    out = evaluate_run(
        run_dir,
        data=None if data is None else DataConfig.model_validate(data),
        device=device,
        split=split,
        subjects=_int_list(subjects, "--subjects"),
        exclude_channels=None
        if exclude_channels is None
        else [c.strip() for c in exclude_channels.split(",") if c.strip()],
        q=q,
        precision=precision,
    )
    where = "" if out["own_data"] else f" of {out['data']}"
    excl = f", {len(out['exclude_channels'])} channels excluded" if out["exclude_channels"] else ""
    if q is not None:
        excl += f", weights at {q + 1} levels"
    if out["precision"] != "fp32":
        excl += f", {out['precision']} products"
    click.echo(
        f"{out['split']} accuracy {out['acc']:.2f} % over {out['n']} trials{where} "
        f"(subjects {_ranges(out['subjects'])}{excl}; loss {out['loss']:.4f})"
    )


def _int_list(text: str | None, flag: str) -> list[int] | None:
    """``"1,2,3"`` → ``[1, 2, 3]`` (None stays None); an error names ``flag``."""
    from ferrocim.checks import InputError

    if text is None:
        return None
    try:
        return [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise InputError(f"{flag}: expected numbers like 1,2,3, got {text!r}") from None


def _ranges(values: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``1-3,7``."""
    out: list[str] = []
    for v in values:
        if out and v == int(out[-1].split("-")[-1]) + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{v}"
        else:
            out.append(str(v))
    return ",".join(out)


@main.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="HTML file (default: RUN/report.html, or report.html in the common parent)",
)
@friendly
def report_cmd(run_dirs: tuple[str, ...], out: str | None) -> None:
    """One HTML page (figures also as PNG and SVG) from run directories, or from a sweep
    directory."""
    from ferrocim.io_errors import output_errors
    from ferrocim.reports.run import build_report
    from ferrocim.reports.sweep import build_sweep_report, is_sweep_dir

    where = out or run_dirs[0]
    with output_errors(where, "writing the report"):
        if len(run_dirs) == 1 and is_sweep_dir(run_dirs[0]):
            click.echo(f"report: {build_sweep_report(run_dirs[0], out)}")
            return
        click.echo(f"report: {build_report(list(run_dirs), out)}")


@main.command("demo")
@click.option("--out", default="reports/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--width",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    help="network channel multiplier (default: the demo's size; 1 = the paper's network)",
)
@friendly
def demo_cmd(out: str, seed: int, device: str, width: float | None) -> None:
    """Calibrate → synthetic EEG → float → on-device → SSTL → report (a few minutes)."""
    from dataclasses import replace

    from ferrocim.pipelines.demo import DemoSize, run_demo

    size = DemoSize() if width is None else replace(DemoSize(), width=width)
    run_demo(out, size=size, seed=seed, device=device, echo=click.echo)


main.add_command(study_group)
main.add_command(sweep_cmd)


def _add_threads_option(group: click.Group) -> None:
    """``--threads N`` on every command that has no own (run commands map it to the config
    field ``threads``): torch's CPU threads, set before the command runs, as is
    :func:`ferrocim.allocator.keep_freed_memory` (imported when a command runs: the
    command line is built without torch, so that ``--version`` and ``--help`` are quick)."""
    for cmd in group.commands.values():
        if isinstance(cmd, click.Group):
            _add_threads_option(cmd)
            continue
        if any("--threads" in p.opts for p in cmd.params):
            continue  # its own --threads (run commands: the config field; sweep: per point)
        cmd.params.append(
            click.Option(
                ["--threads"],
                type=click.IntRange(min=1),
                default=None,
                help="torch CPU threads (default: physical cores, or OMP_NUM_THREADS; "
                "FERROCIM_THREADS=auto: the idle ones)",
            )
        )

        def run(*args: Any, _cb: Any = cmd.callback, threads: int | None = None, **kw: Any) -> Any:
            from ferrocim.allocator import keep_freed_memory
            from ferrocim.threads import configure_threads

            keep_freed_memory()
            configure_threads(threads)
            return _cb(*args, **kw)

        cmd.callback = wraps(cmd.callback)(run)


_add_threads_option(main)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``calibrate(paths, out_dir, options)``: files or folders → device cards and tables.

Files are grouped by device id and pulse width (the kernel depends on both); each group
becomes one card ``<out>/cards/<name>.json`` where ``name`` is the device id, suffixed with
the pulse width when the batch holds one device at several widths. Each device is analysed,
then the device-to-device spreads of devices at the same width are computed, then each card
is built once. A bad file or device is recorded in :attr:`CalibrationResult.failures` and
the rest still finish. :func:`calibrate` returns its :class:`CalibrationResult`; the caller
writes the report (``ferrocim.reports.calibration.write_calibration_report``).

Inputs holding no measurement (an empty folder, only notes and skipped files) are an
:class:`~ferrocim.checks.InputError` and nothing is written. An ``out`` that holds cards of
other devices from an earlier calibration is *merged by device*: those cards are kept
(:attr:`CalibrationResult.kept`), and ``sweeps.csv``, ``d2d.csv`` and the report are
regenerated from every card in ``out/cards`` (a card of the same name is replaced); the
result's :attr:`~CalibrationResult.merge_note` says so, and is among its warnings.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ferrocim.atomic import atomic_open, remove_temporaries, write_text
from ferrocim.calibration.card import DeviceCard
from ferrocim.calibration.device import (
    CalibrationOptions,
    DeviceSpreads,
    DutCalibration,
    analyse_device,
    build_card,
    width_tag,
)
from ferrocim.calibration.quality import fit_flags
from ferrocim.calibration.readers import (
    DiscoveredFile,
    NotPulseData,
    discover,
    read_measurement,
)
from ferrocim.calibration.sequence import PulseSequence
from ferrocim.calibration.variability import relative_spread
from ferrocim.checks import FerrocimError, InputError
from ferrocim.io_errors import OutputError, describe, expect_size
from ferrocim.locks import writer_lock
from ferrocim.names import inside, name_problem, safe_name

#: How many skip reasons an "inputs hold no measurement" error lists.
MAX_REASONS_SHOWN = 5


@dataclass(frozen=True)
class KeptCard:
    """A card of another device found in ``out/cards`` and kept (merge by device)."""

    name: str  # the file stem, as the tables name devices
    card: DeviceCard
    path: Path


@dataclass
class CalibrationResult:
    """What a calibration run produced and what went wrong."""

    out_dir: Path
    duts: list[DutCalibration] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file or device, message)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    warnings: list[str] = field(default_factory=list)
    d2d: pd.DataFrame = field(default_factory=pd.DataFrame)
    sweep_table_path: Path | None = None
    report_path: Path | None = None  # set by the caller that writes the report
    inputs: list[Path] = field(default_factory=list)  # the paths given (files or folders)
    kept: list[KeptCard] = field(default_factory=list)  # other devices' cards in out/cards
    merge_note: str | None = None  # what a merge into an earlier out did (None: no merge)

    @property
    def ok(self) -> bool:
        """True when no file or device failed."""
        return not self.failures

    @property
    def card_paths(self) -> list[Path]:
        """Paths of the cards this run wrote."""
        return [d.card_path for d in self.duts if d.card_path is not None]

    def cards(self) -> list[tuple[str, DeviceCard, Path | None]]:
        """Every card the tables and the report cover: (device name, card, card path) of
        this run's devices, then of the kept cards, in name order within each."""
        out: list[tuple[str, DeviceCard, Path | None]] = [
            (d.name, d.card, d.card_path) for d in self.duts if d.card is not None
        ]
        return out + [(k.name, k.card, k.path) for k in self.kept]

    def recommended(self) -> tuple[str, Path | None] | None:
        """The card to use among all cards covered (this run's and kept): highest mean
        trajectory R² of LTP and LTD, as :meth:`best` for this run's devices; None if none."""
        scored = [(card_score(c), n, p) for n, c, p in self.cards()]
        scored = [t for t in scored if np.isfinite(t[0])]
        if not scored:
            return None
        _, name, path = max(scored, key=lambda t: t[0])
        return name, path

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the input folder it was found in (the input's own name
        first when there are several inputs); a file given by name as it was given."""
        p = Path(path)
        for root in self.inputs:
            if root.is_dir():
                try:
                    rel = p.relative_to(root)
                except ValueError:
                    continue
                return (rel if len(self.inputs) == 1 else Path(root.name) / rel).as_posix()
        return p.as_posix()

    def fit_report(self) -> str:
        """The :meth:`DeviceCard.fit_report` of every card covered, one after another."""
        parts = [c.fit_report() for _, c, _ in self.cards()]
        return "\n\n".join(parts) if parts else f"(no device calibrated into {self.out_dir})"

    def best(self) -> DutCalibration:
        """The device whose card fits best (highest mean trajectory R² of LTP and LTD)."""
        if not self.duts:
            raise InputError(f"no device was calibrated into {self.out_dir}")
        return max(
            self.duts,
            key=lambda d: np.nanmean([d.fit("ltp").r2_w, d.fit("ltd").r2_w]),
        )


def card_score(card: DeviceCard) -> float:
    """Mean trajectory R² of LTP and LTD of a card (NaN when the card records none)."""
    r2 = (card.fit or {}).get("r2_w") or {}
    vals = [float(v) for v in (r2.get("ltp"), r2.get("ltd")) if v is not None]
    return float(np.nanmean(vals)) if vals else float("nan")


def _group_name(device: str, width: float | None, several: bool) -> str:
    return f"{device}_{width_tag(width)}" if several else device


def _device_file_name(device_id: str, seq: PulseSequence, renamed: dict[str, str]) -> str:
    """The device id as a safe card name (:func:`ferrocim.names.safe_name`); an id that
    had to change is warned about once, with the mapping (the id itself stays in the
    card's description and provenance)."""
    name = safe_name(device_id, fallback="device")
    if name != device_id and device_id not in renamed:
        renamed[device_id] = name
        warnings.warn(
            f"{seq.meta.source}: device id {device_id!r} is not a safe file name "
            f"({name_problem(device_id)}); its card and plots are named {name!r}",
            stacklevel=2,
        )
    return name


def sweep_table(duts: list[DutCalibration]) -> pd.DataFrame:
    """One row per device × sweep × kind × method with parameters and fit quality."""
    rows = []
    for d in duts:
        for kind in ("ltp", "ltd"):
            method = d.fit_record["method"]
            fits = [("paper", f) for f in d.paper[kind]]
            if method != "paper":
                fits += [(method, f) for f in d.per_sweep[kind]]
            for method, f in fits:
                row = {"dut": d.name, "kind": kind, "method": method, "sweep": f.sweep}
                row.update({k: v for k, v in f.summary().items() if k not in ("correl", "sweep")})
                seg = next(s for s in d.segments if s.kind == kind and s.sweep == f.sweep)
                row.update(
                    {
                        "source": Path(seg.source).name,
                        "first_line": seg.first_line,
                        "g_min_s": seg.g_min_s,
                        "g_max_s": seg.g_max_s,
                    }
                )
                rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class _Spreadable:
    """What a device-to-device spread needs of one device (from an analysis or a card)."""

    name: str
    width_s: float | None
    params: dict[str, dict[str, float]]  # kind → a, alpha, beta
    g_min_s: float
    g_max_s: float


def _of_dut(d: DutCalibration) -> _Spreadable:
    return _Spreadable(
        d.name,
        d.pulse_width_s,
        {k: dict(d.card_fits[k].params) for k in ("ltp", "ltd")},
        d.g_min_s,
        d.g_max_s,
    )


def _of_card(name: str, c: DeviceCard) -> _Spreadable:
    width = c.pulse.width_s if c.source("pulse.width_s").origin != "assumed" else None
    params = {
        k: {"a": getattr(c, k).a, "alpha": getattr(c, k).alpha, "beta": getattr(c, k).beta}
        for k in ("ltp", "ltd")
    }
    return _Spreadable(name, width, params, c.g_min_s, c.g_max_s)


def _spread_table(devices: list[_Spreadable]) -> pd.DataFrame:
    rows = []
    by_width: dict[str, list[_Spreadable]] = defaultdict(list)
    for d in devices:
        by_width[width_tag(d.width_s)].append(d)
    for tag, group in by_width.items():
        if len(group) < 2:
            continue
        row: dict[str, object] = {"pulse_width": tag, "n_devices": len(group)}
        for kind in ("ltp", "ltd"):
            for p in ("a", "alpha", "beta"):
                row[f"{p}_{kind}_dtod"] = relative_spread([d.params[kind][p] for d in group])
        row["g_min_dtod"] = relative_spread([d.g_min_s for d in group])
        row["g_max_dtod"] = relative_spread([d.g_max_s for d in group])
        row["devices"] = ", ".join(d.name for d in group)
        rows.append(row)
    return pd.DataFrame(rows)


def device_to_device(
    duts: list[DutCalibration], kept: list[KeptCard] | None = None
) -> pd.DataFrame:
    """Relative s.d. across devices measured at the same pulse width (needs ≥ 2 devices).

    Columns ``<param>_<kind>_dtod`` (LTP and LTD apart), ``g_min_dtod``, ``g_max_dtod``.
    ``kept``: cards of other devices (from an earlier calibration) counted too, from the
    parameters and window on the card.
    """
    devices = [_of_dut(d) for d in duts] + [_of_card(k.name, k.card) for k in kept or []]
    return _spread_table(devices)


def _spreads(row: pd.Series, duts: list[DutCalibration]) -> DeviceSpreads:
    """The d2d row of a width group as the typed spreads a card is built with."""
    names = str(row["devices"]).split(", ")
    values = {}
    for k, v in row.items():
        if str(k).endswith("_dtod"):
            try:
                x = float(v)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
            if np.isfinite(x):
                values[str(k)] = x
    files = [Path(s.meta.source).name for d in duts if d.name in names for s in d.files]
    return DeviceSpreads(values=values, devices=names, files=files)


def calibrate(
    paths: list[str | os.PathLike[str]] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: CalibrationOptions | None = None,
) -> CalibrationResult:
    """Calibrate every device found under ``paths``; write cards and tables; return the result.

    Outputs under ``out_dir``: ``cards/<dut>.json``, ``sweeps.csv`` (per-sweep parameters),
    ``d2d.csv`` (when ≥ 2 devices share a pulse width) and ``log.txt`` (warnings, skipped
    and failed inputs). The HTML report and plots are the caller's
    (``ferrocim.reports.calibration.write_calibration_report``).
    """
    from ferrocim.logs import progress

    options = options or CalibrationOptions()
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out = Path(out_dir)
    result = CalibrationResult(out_dir=out, inputs=[Path(p) for p in paths])
    rng = np.random.default_rng(options.seed)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = discover(list(paths), format=options.format, mapping=options.mapping)
        if not found:
            given = ", ".join(str(p) for p in paths)
            raise InputError(
                f"{given}: no measurement file found (calibrate reads B1500 and B2912B exports "
                "and CSV/TSV tables: files ending .csv, .tsv, .txt or .dat); nothing was "
                "written"
            )
        with writer_lock(out, "ferrocim calibrate", inside=True, reentrant=True):
            for sub in ("", "cards", "plots"):  # temporaries of a calibration that was stopped
                remove_temporaries(out / sub, recursive=False)
            seen = _calibrate_found(found, result, options, rng, progress)
            if not result.duts and not result.failures:
                raise InputError(_nothing_calibrated(result, options, seen))
            result.kept = _kept_cards(result)
            _write_outputs(result, options, caught)
    return result


def _nothing_calibrated(
    result: CalibrationResult, options: CalibrationOptions, seen: set[str]
) -> str:
    """The error of inputs that gave no device and no failure (all skipped or filtered);
    ``seen``: the device ids of the pulse files read (all filtered out by ``devices``)."""
    given = ", ".join(str(p) for p in result.inputs)
    if options.devices is not None and seen:
        wanted = ", ".join(repr(d) for d in options.devices)
        return (
            f"{given}: no usable pulse files of device {wanted} (the files hold device(s) "
            f"{', '.join(sorted(seen))}); nothing was written"
        )
    reasons = [f"{result.relative(p)}: {why}" for p, why in result.skipped[:MAX_REASONS_SHOWN]]
    more = len(result.skipped) - MAX_REASONS_SHOWN
    tail = f"\n  … and {more} more" if more > 0 else ""
    return (
        f"{given}: no pulse-train measurement among the {len(result.skipped)} file(s) found; "
        "nothing was written. Skipped:\n  " + "\n  ".join(reasons) + tail
    )


def _calibrate_found(
    found: list[DiscoveredFile],
    result: CalibrationResult,
    options: CalibrationOptions,
    rng: np.random.Generator,
    progress: Callable[..., Any],
) -> set[str]:
    """Read the discovered files, analyse each device, then build its card (in ``result``);
    the device ids of all pulse files read (before the ``devices`` filter)."""
    seqs: list[PulseSequence] = []
    for f in progress(found, desc="reading", unit="file", disable=not options.progress):
        if f.error:
            result.failures.append((str(f.path), f.error))
            continue
        if f.skip_reason:
            result.skipped.append((str(f.path), f.skip_reason))
            continue
        try:
            seqs.append(
                read_measurement(
                    f.path,
                    format=f.format or "auto",
                    mapping=options.mapping,
                    read_column=options.read_column,
                )
            )
        except NotPulseData as exc:
            result.skipped.append((str(f.path), str(exc)))
        except FerrocimError as exc:
            result.failures.append((str(f.path), str(exc)))
    groups: dict[tuple[str, float | None], list[PulseSequence]] = defaultdict(list)
    renamed: dict[str, str] = {}
    seen: set[str] = set()
    for s in seqs:
        dev = s.meta.device_id or Path(s.meta.source).stem
        seen.add(dev)
        if options.devices is not None and dev not in options.devices:
            continue
        dev = "pooled" if options.pool_devices else _device_file_name(dev, s, renamed)
        w = s.meta.pulse_width_s
        groups[(dev, None if w is None or not np.isfinite(w) else float(w))].append(s)
    n_widths: dict[str, int] = defaultdict(int)
    for dev, _ in groups:
        n_widths[dev] += 1
    for (dev, width), group in progress(
        sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0.0)),
        desc="calibrating",
        unit="device",
        disable=not options.progress,
    ):
        name = _group_name(dev, width, n_widths[dev] > 1)
        try:
            result.duts.append(analyse_device(group, name, options, rng=rng))
        except FerrocimError as exc:
            result.failures.append((name, str(exc)))
        except (ValueError, np.linalg.LinAlgError) as exc:
            result.failures.append((name, f"{name}: fit failed: {exc}"))
    result.d2d = device_to_device(result.duts)
    spreads: dict[str, DeviceSpreads] = {}
    for _, row in result.d2d.iterrows():
        sp = _spreads(row, result.duts)
        spreads.update({name: sp for name in sp.devices})
    for d in list(result.duts):
        try:
            d.card = build_card(d, options, spreads.get(d.name))
        except (FerrocimError, ValueError) as exc:
            result.failures.append((d.name, f"{d.name}: card not built: {exc}"))
            result.duts.remove(d)
    for d in result.duts:  # poor fits are warnings: on the terminal, in log.txt and report
        for flag in fit_flags(d.card):
            warnings.warn(flag, stacklevel=1)
    return seen


def _kept_cards(result: CalibrationResult) -> list[KeptCard]:
    """Cards of other devices in ``out/cards`` (merge by device); an unreadable one is
    warned about and left out of the tables and the report (its file is not touched)."""
    folder = result.out_dir / "cards"
    if not folder.is_dir():
        return []
    ours = {d.name for d in result.duts}
    kept = []
    for p in sorted(folder.glob("*.json")):
        if p.stem in ours:
            continue
        try:
            kept.append(KeptCard(p.stem, DeviceCard.load(p), p))
        except InputError as exc:
            warnings.warn(
                f"{p}: not a readable device card, left out of the tables and the report "
                f"({str(exc).splitlines()[0]})",
                stacklevel=1,
            )
    return kept


def _merge_note(result: CalibrationResult, replaced: list[str]) -> str | None:
    """What writing into an ``out`` with earlier cards did (None: nothing to say)."""
    out = result.out_dir
    parts = []
    if replaced:
        parts.append(f"replaced the card(s) {', '.join(replaced)} of an earlier calibration")
    if result.kept:
        names = ", ".join(k.name for k in result.kept)
        n = len(result.duts) + len(result.kept)
        parts.append(
            f"merged by device: kept the card(s) {names} of other devices from an earlier "
            f"calibration; sweeps.csv, d2d.csv and the report were regenerated from all {n} "
            f"cards in {out / 'cards'}. Each card keeps the device-to-device spreads of the "
            "run that made it; calibrate all files together to refresh them"
        )
    return f"{out}: " + "; ".join(parts) if parts else None


def _previous_rows(out: Path, kept: list[KeptCard]) -> tuple[pd.DataFrame, list[str]]:
    """The rows of an earlier ``sweeps.csv`` for the kept devices, and the kept devices
    it has none for."""
    names = [k.name for k in kept]
    path = out / "sweeps.csv"
    try:
        old = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError):
        old = pd.DataFrame()
    if old.empty or "dut" not in old.columns:
        return pd.DataFrame(), names
    old = old[old["dut"].astype(str).isin(names)]
    return old, [n for n in names if n not in set(old["dut"].astype(str))]


def _write_outputs(
    result: CalibrationResult, options: CalibrationOptions, caught: list | None = None
) -> None:
    """Cards, tables and log. An ``out`` that holds an earlier calibration is merged by
    device (module docstring): cards of other devices are kept, a card of the same name
    is replaced, and ``sweeps.csv``, ``d2d.csv`` and the report cover all cards present.
    ``caught``: the warnings recorded so far (they become ``result.warnings``)."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    ours = {f"{d.name}.json" for d in result.duts}
    earlier = sorted(p.name for p in (out / "cards").glob("*.json")) if out.is_dir() else []
    replaced = [n.removesuffix(".json") for n in earlier if n in ours]
    for d in list(result.duts):
        assert d.card is not None
        path = inside(out, "cards", f"{d.name}.json")
        try:
            d.card_path = d.card.save(path)
        except OSError as exc:
            msg = describe(exc, path, f"writing the card of {d.name}")
            if msg is not None:  # a full or read-only disk: no other card fares better
                raise OutputError(msg, exc.errno) from exc
            result.failures.append((d.name, f"{d.name}: card not written: {exc}"))
            result.duts.remove(d)
        except ValueError as exc:
            result.failures.append((d.name, f"{d.name}: card not written: {exc}"))
            result.duts.remove(d)
    table = sweep_table(result.duts)
    if result.kept:
        old, missing = _previous_rows(out, result.kept)
        if not old.empty:
            table = pd.concat([table, old], ignore_index=True)
            table = table.sort_values("dut", kind="stable", ignore_index=True)
        if missing:
            warnings.warn(
                f"{out / 'sweeps.csv'}: no per-sweep rows for the kept card(s) "
                f"{', '.join(missing)} (the earlier sweeps.csv does not hold them)",
                stacklevel=1,
            )
        result.d2d = device_to_device(result.duts, result.kept)
    with atomic_open(out / "sweeps.csv", "w", newline="") as fh:
        table.to_csv(fh, index=False)
    result.sweep_table_path = out / "sweeps.csv"
    if not result.d2d.empty:
        with atomic_open(out / "d2d.csv", "w", newline="") as fh:
            result.d2d.to_csv(fh, index=False)
    else:  # an earlier run's spreads do not describe the cards present
        (out / "d2d.csv").unlink(missing_ok=True)
    result.merge_note = _merge_note(result, replaced)
    result.warnings = [str(w.message) for w in caught or []]
    if result.merge_note:
        result.warnings.append(result.merge_note)
    log = ["# ferrocim calibration log", f"options: {options.to_dict()}", ""]
    log += [f"FAILED {src}: {msg}" for src, msg in result.failures]
    log += [f"skipped {src}: {why}" for src, why in result.skipped]
    log += [f"warning: {w}" for w in result.warnings]
    text = "\n".join(log) + "\n"
    with expect_size(len(text.encode("utf-8"))):
        write_text(out / "log.txt", text)


__all__ = ["CalibrationOptions", "CalibrationResult", "KeptCard", "calibrate", "card_score"]

"""``calibrate(paths, out_dir, options)``: files or folders → device cards and tables.

Files are grouped by device id and pulse width (the kernel depends on both); each group
becomes one card ``<out>/cards/<name>.json`` where ``name`` is the device id, suffixed with
the pulse width when the batch holds one device at several widths. Each device is analysed,
then the device-to-device spreads of devices at the same width are computed, then each card
is built once. A bad file or device is recorded in :attr:`CalibrationResult.failures` and
the rest still finish. :func:`calibrate` returns its :class:`CalibrationResult`; the caller
writes the report (``ferrocim.reports.calibration.write_calibration_report``).
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ferrocim.atomic import atomic_open, write_text
from ferrocim.calibration.device import (
    CalibrationOptions,
    DeviceSpreads,
    DutCalibration,
    analyse_device,
    build_card,
    width_tag,
)
from ferrocim.calibration.readers import NotPulseData, discover, read_measurement
from ferrocim.calibration.sequence import PulseSequence
from ferrocim.calibration.variability import relative_spread
from ferrocim.checks import FerrocimError, InputError
from ferrocim.names import inside, name_problem, safe_name


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

    @property
    def ok(self) -> bool:
        """True when no file or device failed."""
        return not self.failures

    @property
    def card_paths(self) -> list[Path]:
        return [d.card_path for d in self.duts if d.card_path is not None]

    def best(self) -> DutCalibration:
        """The device whose card fits best (highest mean trajectory R² of LTP and LTD)."""
        if not self.duts:
            raise InputError(f"no device was calibrated into {self.out_dir}")
        return max(
            self.duts,
            key=lambda d: np.nanmean([d.fit("ltp").r2_w, d.fit("ltd").r2_w]),
        )


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


def device_to_device(duts: list[DutCalibration]) -> pd.DataFrame:
    """Relative s.d. across devices measured at the same pulse width (needs ≥ 2 devices).

    Columns ``<param>_<kind>_dtod`` (LTP and LTD apart), ``g_min_dtod``, ``g_max_dtod``.
    """
    rows = []
    by_width: dict[str, list[DutCalibration]] = defaultdict(list)
    for d in duts:
        by_width[width_tag(d.pulse_width_s)].append(d)
    for tag, group in by_width.items():
        if len(group) < 2:
            continue
        row: dict[str, object] = {"pulse_width": tag, "n_devices": len(group)}
        for kind in ("ltp", "ltd"):
            for p in ("a", "alpha", "beta"):
                row[f"{p}_{kind}_dtod"] = relative_spread(
                    [d.card_fits[kind].params[p] for d in group]
                )
        row["g_min_dtod"] = relative_spread([d.g_min_s for d in group])
        row["g_max_dtod"] = relative_spread([d.g_max_s for d in group])
        row["devices"] = ", ".join(d.name for d in group)
        rows.append(row)
    return pd.DataFrame(rows)


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
    result = CalibrationResult(out_dir=out)
    rng = np.random.default_rng(options.seed)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = discover(list(paths), format=options.format, mapping=options.mapping)
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
        for s in seqs:
            dev = s.meta.device_id or Path(s.meta.source).stem
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
    result.warnings = [str(w.message) for w in caught]
    _write_outputs(result, options)
    return result


def _write_outputs(result: CalibrationResult, options: CalibrationOptions) -> None:
    """Cards, tables and log. An ``out`` that holds an earlier calibration is merged by
    device: cards of other devices are kept (and named in a warning), a card of the same
    name is replaced (warned), and a ``d2d.csv`` this run does not make is removed; the
    tables and the report cover this run's devices."""
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    ours = {f"{d.name}.json" for d in result.duts}
    earlier = sorted(p.name for p in (out / "cards").glob("*.json")) if out.is_dir() else []
    replaced = [n for n in earlier if n in ours]
    kept = [n for n in earlier if n not in ours]
    if replaced:
        result.warnings.append(
            f"{out}: replaced the card(s) {', '.join(replaced)} of an earlier calibration"
        )
    if kept:
        result.warnings.append(
            f"{out}: kept the card(s) {', '.join(kept)} of other devices from an earlier "
            "calibration; sweeps.csv, d2d.csv and the report cover this run's devices only"
        )
    for d in list(result.duts):
        assert d.card is not None
        try:
            d.card_path = d.card.save(inside(out, "cards", f"{d.name}.json"))
        except (ValueError, OSError) as exc:
            result.failures.append((d.name, f"{d.name}: card not written: {exc}"))
            result.duts.remove(d)
    table = sweep_table(result.duts)
    with atomic_open(out / "sweeps.csv", "w", newline="") as fh:
        table.to_csv(fh, index=False)
    result.sweep_table_path = out / "sweeps.csv"
    if not result.d2d.empty:
        with atomic_open(out / "d2d.csv", "w", newline="") as fh:
            result.d2d.to_csv(fh, index=False)
    else:  # an earlier run's spreads do not describe this run's devices
        (out / "d2d.csv").unlink(missing_ok=True)
    log = ["# ferrocim calibration log", f"options: {options.to_dict()}", ""]
    log += [f"FAILED {src}: {msg}" for src, msg in result.failures]
    log += [f"skipped {src}: {why}" for src, why in result.skipped]
    log += [f"warning: {w}" for w in result.warnings]
    write_text(out / "log.txt", "\n".join(log) + "\n")


__all__ = ["CalibrationOptions", "CalibrationResult", "calibrate"]

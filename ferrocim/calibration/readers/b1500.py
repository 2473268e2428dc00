"""Keysight B1500 (WGFMU) ``pulsedAmplitudeSweep_DCIV`` files.

Layout (tab-separated header, CSV below)::

    Setup title<TAB>pulsedAmplitudeSweep_DCIV
    test date<TAB>24.10.2024
    test time<TAB>13:18:15
    Device ID<TAB>_ID170ZR5000
    Count<TAB>0                       (per-repetition file; the aggregate has ``N<TAB>2``)
    ...
    Measurement parameters            (absent from the ``_N[...(ALL)]`` aggregate)
    groundWGFMU,pulseWGFMU,startVolage1,endVoltage1,...,pulseWidth,...,repetitions,...,
    SMU2,WGFMU1,0.700000,5.000000,...
    Measurement Data
    index, pulse amplitude (V), R_low (ohm), R_high (ohm)
        0,  0.700,113832984.246,130313534.364

Each row is one write pulse (amplitude in V) followed by two resistance reads (ohm).
A repetition ramps the positive amplitude up (``startVolage1 → endVoltage1``) and then
the negative one (``startVolage2 → endVoltage2``) by ``stepSize``. The ``_N[...(ALL)]``
file concatenates the repetitions of one run. ``IV_measR`` files in ``DCIV_*`` folders
hold DC I-V sweeps: :func:`read_b1500` raises :class:`NotPulseData` for them.
An aborted run ends with a row of ``-1.000`` resistances: that row is dropped with a
warning.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import warnings
from pathlib import Path

import numpy as np

from ferrocim.calibration.readers._common import (
    NotPulseData,
    positive_resistance,
    read_lines,
    to_float,
)
from ferrocim.calibration.sequence import MeasurementMeta, PulseSequence
from ferrocim.checks import InputError, check_option

FORMAT = "b1500"
PULSE_SETUP = "pulsedAmplitudeSweep_DCIV"
IV_SETUP = "IV_measR"
READ_COLUMNS = ("R_low", "R_high")
_ABORT_R = -1.0


def sniff(lines: list[str]) -> bool:
    """True when the first line is a B1500 ``Setup title`` header."""
    return bool(lines) and lines[0].split("\t")[0].strip().lower() == "setup title"


def _header(lines: list[str], source: str) -> tuple[dict[str, str], dict[str, str], int | None]:
    """(header key → value, parameter name → value, index of the data header line or None)."""
    head: dict[str, str] = {}
    params: dict[str, str] = {}
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if s == "Measurement parameters":
            if i + 2 >= len(lines):
                raise InputError(
                    f"{source}, line {i + 1}: file ends inside 'Measurement parameters' (truncated)"
                )
            names = [c.strip() for c in lines[i + 1].split(",")]
            values = [c.strip() for c in lines[i + 2].split(",")]
            if len([n for n in names if n]) != len([v for v in values if v]):
                raise InputError(
                    f"{source}, line {i + 3}: the parameter row has "
                    f"{len([v for v in values if v])} values for "
                    f"{len([n for n in names if n])} names (truncated?)"
                )
            params = {n: v for n, v in zip(names, values, strict=False) if n}
            i += 3
            continue
        if s == "Measurement Data":
            return head, params, i + 1
        if "\t" in lines[i]:
            k, _, v = lines[i].partition("\t")
            head[k.strip()] = v.strip()
        i += 1
    return head, params, None


def _split_device(raw: str | None) -> tuple[str | None, str | None]:
    """``'LBE247_ID160ZR15000'`` → (chip, device); ``'_ID170ZR5000'`` → (None, device)."""
    if not raw:
        return None, None
    chip, sep, dev = raw.partition("_")
    if sep and dev:
        return (chip or None), dev
    return None, raw


def _date(head: dict[str, str]) -> _dt.datetime | None:
    d, t = head.get("test date"), head.get("test time", "00:00:00")
    if not d:
        return None
    try:
        return _dt.datetime.strptime(f"{d} {t}", "%d.%m.%Y %H:%M:%S")
    except ValueError:
        return None


def _param(params: dict[str, str], key: str, source: str) -> float | None:
    if key not in params:
        return None
    try:
        return float(params[key])
    except ValueError:
        raise InputError(
            f"{source}: measurement parameter {key!r} must be a number, got {params[key]!r}"
        ) from None


def _sibling_params(path: Path, device: str | None) -> tuple[dict[str, str], str | None]:
    """Parameter row of a per-repetition file next to an aggregate file (same device)."""
    for sib in sorted(path.parent.glob("*.csv")):
        if sib == path:
            continue
        try:
            lines = read_lines(sib)
        except InputError:
            continue
        if not sniff(lines):
            continue
        head, params, _ = _header(lines, str(sib))
        if params and head.get("Device ID") == device and "Count" in head:
            return params, sib.name
    return {}, None


def read_b1500(path: str | os.PathLike[str], *, read_column: str = "R_low") -> PulseSequence:
    """Read one B1500 pulsed-amplitude-sweep file into a :class:`PulseSequence`.

    ``read_column`` picks which of the two resistance reads (``R_low`` or ``R_high``)
    becomes the conductance ``1 / R`` (S).
    """
    check_option("read_column", read_column, READ_COLUMNS)
    p = Path(path)
    source = str(p)
    lines = read_lines(p)
    if not sniff(lines):
        raise InputError(f"{source}, line 1: not a B1500 file (no 'Setup title' header)")
    head, params, data_at = _header(lines, source)
    title = head.get("Setup title", "")
    if title.startswith(IV_SETUP):
        raise NotPulseData(f"{source}: DC I-V sweep ({title}), not a pulse train; skipped")
    if not title.startswith(PULSE_SETUP):
        raise InputError(
            f"{source}, line 1: setup {title!r} is not supported (expected {PULSE_SETUP!r} "
            f"or {IV_SETUP!r})"
        )
    if data_at is None:
        raise InputError(f"{source}: no 'Measurement Data' section (file truncated?)")
    if data_at >= len(lines):
        raise InputError(f"{source}, line {data_at}: file ends before the data table header")
    cols = [c.strip() for c in lines[data_at].split(",")]
    expected = ["index", "pulse amplitude (V)", "R_low (ohm)", "R_high (ohm)"]
    if cols[:4] != expected:
        raise InputError(
            f"{source}, line {data_at + 1}: data columns {cols!r}, expected {expected!r}"
        )
    r_col = 2 if read_column == "R_low" else 3
    chip, device = _split_device(head.get("Device ID"))
    aggregate = "N" in head and "Count" not in head
    extra: dict[str, str] = {k: v for k, v in head.items()}
    if aggregate and not params:
        params, sib = _sibling_params(p, head.get("Device ID"))
        if sib:
            extra["parameters_from"] = sib
    extra.update({f"param.{k}": v for k, v in params.items()})
    extra["read_column"] = read_column

    amp: list[float] = []
    res: list[float] = []
    line_no: list[int] = []
    rows = [(k + 1, lines[k]) for k in range(data_at + 1, len(lines)) if lines[k].strip()]
    for j, (ln, text) in enumerate(rows):
        cells = text.split(",")
        last = j == len(rows) - 1
        if len(cells) < 4 or any(not c.strip() for c in cells[:4]):
            if last:
                warnings.warn(
                    f"{source}, line {ln}: incomplete last row {text.strip()!r} (file "
                    "truncated mid-row); the row is dropped",
                    stacklevel=2,
                )
                break
            raise InputError(
                f"{source}, line {ln}: expected 4 comma-separated fields, got {len(cells)}"
            )
        a = to_float(cells[1], source=source, line=ln, field="pulse amplitude (V)")
        r = to_float(cells[r_col], source=source, line=ln, field=f"{read_column} (ohm)")
        if r == _ABORT_R and last:
            warnings.warn(
                f"{source}, line {ln}: resistance -1 marks an aborted measurement; the row "
                "is dropped",
                stacklevel=2,
            )
            break
        positive_resistance(r, source=source, line=ln, field=f"{read_column} (ohm)")
        amp.append(a)
        res.append(r)
        line_no.append(ln)
    if not amp:
        raise InputError(f"{source}: the data table has no rows (measurement aborted?)")

    width = _param(params, "pulseWidth", source)
    count = head.get("Count")
    meta = MeasurementMeta(
        source=source,
        parser=FORMAT,
        instrument="Keysight B1500 (WGFMU)",
        device_id=device,
        chip=chip,
        date=_date(head),
        pulse_width_s=width,
        amplitude_start_pos_v=_param(params, "startVolage1", source),
        amplitude_end_pos_v=_param(params, "endVoltage1", source),
        amplitude_start_neg_v=_param(params, "startVolage2", source),
        amplitude_end_neg_v=_param(params, "endVoltage2", source),
        step_v=_param(params, "stepSize", source),
        read_voltage_v=None,
        repetitions=int(float(params["repetitions"])) if "repetitions" in params else None,
        count=int(count) if count and re.fullmatch(r"-?\d+", count) else None,
        extra=extra,
    )
    n = len(amp)
    label = meta.count if meta.count is not None else -1
    return PulseSequence(
        amplitude_v=np.asarray(amp, dtype=float),
        width_s=np.full(n, np.nan if width is None else width),
        conductance_s=1.0 / np.asarray(res, dtype=float),
        sweep=np.full(n, label, dtype=np.int64),
        line=np.asarray(line_no, dtype=np.int64),
        meta=meta,
    )


def is_aggregate(path: str | os.PathLike[str]) -> bool:
    """True for a ``_N[...(ALL)]`` aggregate file (decided from its header, not its name)."""
    try:
        lines = read_lines(path)
    except InputError:
        return False
    if not sniff(lines):
        return False
    head, _, _ = _header(lines, str(path))
    return "N" in head and "Count" not in head

"""Keysight B2912B pulse-train exports.

Layout: ``key:<TAB>value`` header lines (``Instrument_IDN``, ``Chip``, ``Device``,
``Area``, ``Vwrite_step_V``, ``Vmax_pos_V``, ``Vmax_neg_V``, ``pulse_duration_s``,
``Cycles_measured`` …), a blank line, then a tab-separated table::

    cycle  V_write  R_neg_ohm  R_pos_ohm  I_neg_A  I_pos_A  J_neg_A_per_m2  J_pos_A_per_m2
    Vread_min_V  Vread_max_V

Each row is one write pulse ``V_write`` (V) followed by reads at a negative and a positive
read voltage; the conductance is ``1 / R_pos_ohm`` (S), read at ``Vread_max_V``. Each cycle
sweeps 0 → +Vmax, then −step → Vmax_neg.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import re
import warnings
from pathlib import Path

import numpy as np

from ferrocim.calibration.readers._common import (
    positive_resistance,
    read_lines,
    short_row,
    to_float,
)
from ferrocim.calibration.sequence import MeasurementMeta, PulseSequence
from ferrocim.checks import InputError

FORMAT = "b2912b"
COLUMNS = (
    "cycle",
    "V_write",
    "R_neg_ohm",
    "R_pos_ohm",
    "I_neg_A",
    "I_pos_A",
    "J_neg_A_per_m2",
    "J_pos_A_per_m2",
    "Vread_min_V",
    "Vread_max_V",
)
_KEY = re.compile(r"^\s*([A-Za-z][\w .()/-]*?)\s*:\t\s*(.*?)\s*$")


def sniff(lines: list[str]) -> bool:
    """True when an ``Instrument_IDN:`` header or the B2912B table header is present."""
    for s in lines[:60]:
        if s.lstrip().startswith("Instrument_IDN:"):
            return True
        cells = [c.strip() for c in s.split("\t")]
        if "V_write" in cells and "R_pos_ohm" in cells:
            return True
    return False


def _num(head: dict[str, str], key: str, source: str) -> float | None:
    if not head.get(key, "").strip():
        return None
    try:
        return float(head[key])
    except ValueError:
        raise InputError(f"{source}: header {key!r} must be a number, got {head[key]!r}") from None


def read_b2912b(path: str | os.PathLike[str]) -> PulseSequence:
    """Read one B2912B export into a :class:`PulseSequence` (G = 1/R_pos_ohm)."""
    p = Path(path)
    source = str(p)
    lines = read_lines(p)
    head: dict[str, str] = {}
    table_at = None
    for i, s in enumerate(lines):
        if not s.strip():
            continue
        m = _KEY.match(s)
        if m:
            head[m.group(1)] = m.group(2)
            continue
        table_at = i
        break
    if table_at is None:
        raise InputError(f"{source}: no data table after the header (file truncated?)")
    cols = [c.strip() for c in lines[table_at].split("\t")]
    missing = [c for c in ("cycle", "V_write", "R_pos_ohm") if c not in cols]
    if missing:
        raise InputError(
            f"{source}, line {table_at + 1}: table header lacks column(s) "
            f"{', '.join(missing)}; got {', '.join(cols)}"
        )
    ic, iv, ir = cols.index("cycle"), cols.index("V_write"), cols.index("R_pos_ohm")
    ivr = cols.index("Vread_max_V") if "Vread_max_V" in cols else None
    rows = [(k + 1, lines[k]) for k in range(table_at + 1, len(lines)) if lines[k].strip()]
    cyc: list[int] = []
    amp: list[float] = []
    res: list[float] = []
    vread: list[float] = []
    line_no: list[int] = []
    for j, (ln, text) in enumerate(rows):
        cells = text.split("\t")
        if len(cells) < len(cols) or any(not c.strip() for c in cells[: len(cols)]):
            short_row(
                source=source,
                line=ln,
                is_last=j == len(rows) - 1,
                expected=len(cols),
                got=len(cells),
                what="tab-separated fields",
            )
            break
        c = to_float(cells[ic], source=source, line=ln, field="cycle")
        a = to_float(cells[iv], source=source, line=ln, field="V_write")
        r = to_float(cells[ir], source=source, line=ln, field="R_pos_ohm")
        positive_resistance(r, source=source, line=ln, field="R_pos_ohm")
        if ivr is not None:
            vread.append(to_float(cells[ivr], source=source, line=ln, field="Vread_max_V"))
        cyc.append(int(c))
        amp.append(a)
        res.append(r)
        line_no.append(ln)
    if not amp:
        raise InputError(f"{source}: the data table has no rows")
    width = _num(head, "pulse_duration_s", source)
    date = None
    for key in ("Date", "Timestamp", "Start_time"):
        if key in head:
            try:
                date = _dt.datetime.fromisoformat(head[key])
            except ValueError:
                warnings.warn(f"{source}: header {key!r} is not an ISO date; ignored", stacklevel=2)
            break
    read_v = float(np.median(vread)) if vread else _num(head, "Vread_max_V", source)
    idn = head.get("Instrument_IDN")
    meta = MeasurementMeta(
        source=source,
        parser=FORMAT,
        instrument=idn or "Keysight B2912B",
        device_id=head.get("Device"),
        chip=head.get("Chip"),
        date=date,
        pulse_width_s=width,
        amplitude_start_pos_v=0.0,
        amplitude_end_pos_v=_num(head, "Vmax_pos_V", source),
        amplitude_start_neg_v=(
            -_num(head, "Vwrite_step_V", source) if "Vwrite_step_V" in head else None
        ),
        amplitude_end_neg_v=_num(head, "Vmax_neg_V", source),
        step_v=_num(head, "Vwrite_step_V", source),
        read_voltage_v=read_v,
        repetitions=None,
        extra=dict(head),
    )
    n = len(amp)
    amps = np.asarray(amp, dtype=float)
    cm = _num(head, "Cycles_measured", source)
    check_pattern(amps, np.asarray(cyc), np.asarray(line_no), meta, None if cm is None else int(cm))
    sweep = sweeps_from_amplitudes(amps)
    meta = dataclasses.replace(meta, repetitions=int(sweep[-1]) + 1)
    return PulseSequence(
        amplitude_v=amps,
        width_s=np.full(n, np.nan if width is None else width),
        conductance_s=1.0 / np.asarray(res, dtype=float),
        sweep=sweep,
        line=np.asarray(line_no, dtype=np.int64),
        meta=meta,
    )


def sweeps_from_amplitudes(amplitude_v: np.ndarray) -> np.ndarray:
    """Sweep index of each row: a new sweep starts where a negative run ends (V >= 0 again)."""
    neg = amplitude_v < 0
    start = np.zeros(len(amplitude_v), dtype=bool)
    start[1:] = neg[:-1] & ~neg[1:]
    return np.cumsum(start).astype(np.int64)


def expected_sweep(step_v: float, vmax_pos_v: float, vmax_neg_v: float) -> np.ndarray:
    """One sweep's amplitudes (V): 0, step, …, vmax_pos, then −step, …, vmax_neg."""
    n_pos = round(vmax_pos_v / step_v) + 1
    n_neg = round(-vmax_neg_v / step_v)
    return np.concatenate([step_v * np.arange(n_pos), -step_v * np.arange(1, n_neg + 1)])


def check_pattern(
    amplitude_v: np.ndarray,
    counter: np.ndarray,
    line: np.ndarray,
    meta: MeasurementMeta,
    cycles_measured: int | None,
) -> None:
    """Warn (naming the first offending line) where the rows break the header's sweep pattern.

    Checked: the ``cycle`` counter runs 1, 2, 3, …; ``V_write`` repeats the sweep
    0 → +Vmax_pos → Vmax_neg in ``Vwrite_step_V`` steps; ``Cycles_measured`` equals the row
    count. Each check needs its header keys; sweeps are taken from the sign pattern either way.
    """
    src = meta.source
    run = np.arange(counter[0], counter[0] + len(counter))
    if (counter != run).any():
        i = int(np.argmax(counter != run))
        warnings.warn(
            f"{src}, line {int(line[i])}: 'cycle' is {int(counter[i])}, expected the running "
            f"pulse counter {int(run[i])}; sweeps are taken from the V_write pattern",
            stacklevel=3,
        )
    step, vpos, vneg = meta.step_v, meta.amplitude_end_pos_v, meta.amplitude_end_neg_v
    if step and vpos is not None and vneg is not None and step > 0 and vpos > 0 > vneg:
        one = expected_sweep(step, vpos, vneg)
        want = np.resize(one, len(amplitude_v))
        bad = np.abs(amplitude_v - want) > 1e-3 * step
        if bad.any():
            i = int(np.argmax(bad))
            warnings.warn(
                f"{src}, line {int(line[i])}: V_write {amplitude_v[i]:.6g} V breaks the "
                f"header's sweep pattern (0 → {vpos:g} V, then → {vneg:g} V in {step:g} V "
                f"steps, {len(one)} rows per sweep; expected {want[i]:.6g} V); sweeps are "
                "taken from the sign changes",
                stacklevel=3,
            )
        elif len(amplitude_v) % len(one):
            warnings.warn(
                f"{src}, line {int(line[-1])}: the last sweep is incomplete "
                f"({len(amplitude_v) % len(one)} of {len(one)} rows)",
                stacklevel=3,
            )
    if cycles_measured is not None and cycles_measured != len(amplitude_v):
        warnings.warn(
            f"{src}: header Cycles_measured is {cycles_measured} but the table has "
            f"{len(amplitude_v)} rows (truncated file?)",
            stacklevel=3,
        )

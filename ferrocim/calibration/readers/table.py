"""Any CSV/TSV pulse table, read through an explicit column mapping.

The mapping names the column of the write amplitude (V) and one conductance source:
a conductance column (S), a resistance column (ohm), or a current column (A) together with
the read voltage (V). Optional: a sweep/cycle column and a pulse-width column (s). It comes
from the command line (``--columns amplitude=V,resistance=R``) or a small TOML file::

    delimiter = ","              # optional; sniffed when absent
    [columns]
    amplitude = "V_pulse"
    resistance = "R_read"
    sweep = "cycle"
    [meta]
    device_id = "D7"
    pulse_width_s = 1e-7
    read_voltage_v = 0.2
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ferrocim.calibration.readers._common import (
    positive_resistance,
    read_lines,
    short_row,
    to_float,
)
from ferrocim.calibration.sequence import MeasurementMeta, PulseSequence
from ferrocim.checks import InputError, read_toml

FORMAT = "csv"
_COLUMN_KEYS = ("amplitude", "conductance", "resistance", "current", "sweep", "width")
_META_KEYS = ("device_id", "chip", "instrument", "pulse_width_s", "read_voltage_v")


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds what (names as in the file's header row); units in the names."""

    amplitude: str
    conductance: str | None = None
    resistance: str | None = None
    current: str | None = None
    sweep: str | None = None
    width: str | None = None
    delimiter: str | None = None
    device_id: str | None = None
    chip: str | None = None
    instrument: str | None = None
    pulse_width_s: float | None = None
    read_voltage_v: float | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("conductance", "resistance", "current") if getattr(self, k)]
        if len(given) != 1:
            raise InputError(
                "column mapping: name exactly one of 'conductance', 'resistance' or 'current'"
                f" (got {', '.join(given) or 'none'})"
            )
        if self.current and self.read_voltage_v is None:
            raise InputError("column mapping: a 'current' column needs 'read_voltage_v'")

    @classmethod
    def from_string(cls, spec: str, **meta: object) -> ColumnMapping:
        """Parse ``"amplitude=V,resistance=R,sweep=cycle"``."""
        cols: dict[str, str] = {}
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            key, sep, val = part.partition("=")
            key = key.strip()
            if not sep or not val.strip():
                raise InputError(f"--columns: expected key=column, got {part!r}")
            if key not in _COLUMN_KEYS:
                raise InputError(
                    f"--columns: unknown key {key!r}; allowed keys are {', '.join(_COLUMN_KEYS)}"
                )
            cols[key] = val.strip()
        if "amplitude" not in cols:
            raise InputError("--columns: the 'amplitude' column is required")
        return cls(**cols, **{k: v for k, v in meta.items() if v is not None})  # type: ignore[arg-type]

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> ColumnMapping:
        """Read a mapping file (see module docstring)."""
        p = Path(path)
        data = read_toml(p, "mapping file")
        cols = data.get("columns", {})
        meta = data.get("meta", {})
        unknown = [k for k in cols if k not in _COLUMN_KEYS] + [
            k for k in meta if k not in _META_KEYS
        ]
        unknown += [k for k in data if k not in ("columns", "meta", "delimiter")]
        if unknown:
            raise InputError(f"Mapping file {p}: unknown key(s) {', '.join(unknown)}")
        if "amplitude" not in cols:
            raise InputError(f"Mapping file {p}: [columns] must name 'amplitude'")
        kw = {**cols, **meta}
        if "delimiter" in data:
            kw["delimiter"] = data["delimiter"]
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kw.items() if k in names})


def read_table(path: str | os.PathLike[str], mapping: ColumnMapping) -> PulseSequence:
    """Read a CSV/TSV file with a header row into a :class:`PulseSequence`.

    Lines starting with ``#`` are comments. Missing columns, non-numeric cells and
    non-positive resistances/conductances raise :class:`InputError` naming file, line, field.
    """
    p = Path(path)
    source = str(p)
    lines = read_lines(p)
    numbered = [(i + 1, s) for i, s in enumerate(lines) if s.strip() and not s.startswith("#")]
    if not numbered:
        raise InputError(f"{source}: no header row")
    delim = mapping.delimiter
    if delim is None:
        try:
            delim = csv.Sniffer().sniff(numbered[0][1], delimiters=",;\t").delimiter
        except csv.Error:
            delim = ","
    parsed = list(csv.reader([s for _, s in numbered], delimiter=delim))
    header = [c.strip() for c in parsed[0]]
    wanted = {k: getattr(mapping, k) for k in _COLUMN_KEYS if getattr(mapping, k) is not None}
    missing = [f"{k}={v!r}" for k, v in wanted.items() if v not in header]
    if missing:
        raise InputError(
            f"{source}, line {numbered[0][0]}: the mapping names column(s) not in the file: "
            f"{', '.join(missing)}; the header has {', '.join(repr(h) for h in header)}"
        )
    idx = {k: header.index(v) for k, v in wanted.items()}
    out: dict[str, list[float]] = {k: [] for k in wanted}
    line_no: list[int] = []
    body = list(zip(numbered[1:], parsed[1:], strict=True))
    for j, ((ln, _), cells) in enumerate(body):
        if len(cells) < len(header):
            short_row(
                source=source,
                line=ln,
                is_last=j == len(body) - 1,
                expected=len(header),
                got=len(cells),
                what="fields",
            )
            break
        for k, i in idx.items():
            v = to_float(cells[i], source=source, line=ln, field=wanted[k])
            if k == "resistance":
                positive_resistance(v, source=source, line=ln, field=wanted[k])
            elif k in ("conductance", "current"):
                _positive(v, source=source, line=ln, field=wanted[k])
            out[k].append(v)
        line_no.append(ln)
    if not line_no:
        raise InputError(f"{source}: the table has no data rows")
    if mapping.conductance:
        g = np.asarray(out["conductance"])
    elif mapping.resistance:
        g = 1.0 / np.asarray(out["resistance"])
    else:
        g = np.asarray(out["current"]) / float(mapping.read_voltage_v)  # type: ignore[arg-type]
    n = len(line_no)
    if "width" in out:
        width = np.asarray(out["width"])
    else:
        width = np.full(n, np.nan if mapping.pulse_width_s is None else mapping.pulse_width_s)
    pw = mapping.pulse_width_s
    if pw is None and "width" in out and np.unique(width).size == 1:
        pw = float(width[0])
    amp = np.asarray(out["amplitude"])
    pos, neg = amp[amp > 0], amp[amp < 0]
    meta = MeasurementMeta(
        source=source,
        parser=FORMAT,
        instrument=mapping.instrument,
        device_id=mapping.device_id,
        chip=mapping.chip,
        pulse_width_s=pw,
        amplitude_start_pos_v=float(pos[0]) if pos.size else None,
        amplitude_end_pos_v=float(pos.max()) if pos.size else None,
        amplitude_start_neg_v=float(neg[0]) if neg.size else None,
        amplitude_end_neg_v=float(neg.min()) if neg.size else None,
        read_voltage_v=mapping.read_voltage_v,
        extra={"columns": ",".join(f"{k}={v}" for k, v in wanted.items())},
    )
    sweep = np.asarray(out["sweep"], dtype=np.int64) if "sweep" in out else np.full(n, -1, np.int64)
    return PulseSequence(
        amplitude_v=amp,
        width_s=width,
        conductance_s=g,
        sweep=sweep,
        line=np.asarray(line_no, dtype=np.int64),
        meta=meta,
    )


def _positive(v: float, *, source: str, line: int, field: str) -> float:
    if not np.isfinite(v) or v <= 0:
        raise InputError(
            f"{source}, line {line}, field {field!r}: must be a positive finite number, got {v!r}"
        )
    return v

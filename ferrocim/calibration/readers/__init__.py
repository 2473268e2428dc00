"""Measurement readers: detect a file's format from its content and read it.

Every reader returns the same :class:`~ferrocim.calibration.sequence.PulseSequence`.
Formats: ``b1500`` (Keysight B1500 WGFMU pulsed amplitude sweeps), ``b2912b`` (Keysight
B2912B exports), ``csv`` (any CSV/TSV with a :class:`ColumnMapping`).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from ferrocim.calibration.readers import b1500, b2912b, table
from ferrocim.calibration.readers._common import NotPulseData, read_lines
from ferrocim.calibration.readers.b1500 import read_b1500
from ferrocim.calibration.readers.b2912b import read_b2912b
from ferrocim.calibration.readers.table import ColumnMapping, read_table
from ferrocim.calibration.sequence import PulseSequence
from ferrocim.checks import InputError, check_option

FORMATS = ("auto", "b1500", "b2912b", "csv")
_SUFFIXES = {".csv", ".tsv", ".txt", ".dat"}

__all__ = [
    "FORMATS",
    "ColumnMapping",
    "DiscoveredFile",
    "NotPulseData",
    "detect_format",
    "discover",
    "plain_table_reason",
    "read_b1500",
    "read_b2912b",
    "read_measurement",
    "read_table",
    "suggest_columns",
]


def detect_format(path: str | os.PathLike[str]) -> str | None:
    """``'b1500'``, ``'b2912b'`` or ``None`` (unknown), judged from the file's content."""
    lines = read_lines(path)
    if b1500.sniff(lines):
        return b1500.FORMAT
    if b2912b.sniff(lines):
        return b2912b.FORMAT
    return None


def read_measurement(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    mapping: ColumnMapping | None = None,
    read_column: str = "R_low",
) -> PulseSequence:
    """Read one file into a :class:`PulseSequence`.

    ``format='auto'`` detects B1500 / B2912B from the content and falls back to the generic
    table reader when a ``mapping`` is given. ``read_column`` applies to B1500 files.
    """
    check_option("format", format, FORMATS)
    fmt = format
    if fmt == "auto":
        fmt = detect_format(path) or ("csv" if mapping is not None else "")
        if not fmt:
            raise InputError(
                f"{path}: format not recognised (neither a B1500 nor a B2912B export); for "
                "a generic CSV/TSV give a column mapping (--columns or --mapping)"
            )
    if fmt == "b1500":
        return read_b1500(path, read_column=read_column)
    if fmt == "b2912b":
        return read_b2912b(path)
    if mapping is None:
        raise InputError(f"{path}: format 'csv' needs a column mapping (--columns or --mapping)")
    return read_table(path, mapping)


def _table_rows(lines: list[str]) -> tuple[str | None, list[int]]:
    """The delimiter of the first non-comment lines and each line's field count (or None)."""
    body = [s for s in lines if s.strip() and not s.lstrip().startswith("#")][:50]
    if len(body) < 2:
        return None, []
    for delim in (",", "\t", ";"):
        counts = [len(s.split(delim)) for s in body]
        if counts[0] > 1:
            return delim, counts
    return None, []


def is_table(lines: list[str]) -> bool:
    """True when the first lines are one delimited table: a header and rows with the same
    number of fields (the last line may be cut short)."""
    delim, counts = _table_rows(lines)
    if delim is None:
        return False
    head = counts[0]
    return all(c == head for c in counts[1:-1]) and counts[-1] <= head


def _why_not_table(lines: list[str]) -> str:
    """Why :func:`is_table` said no, for the error message (first offending line)."""
    delim, counts = _table_rows(lines)
    if delim is None:
        return "no delimited header row"
    body = [i + 1 for i, s in enumerate(lines) if s.strip() and not s.lstrip().startswith("#")]
    for j, c in enumerate(counts[1:], start=1):
        if c != counts[0]:
            return f"line {body[j]} has {c} fields, the first line {counts[0]}"
    return "inconsistent rows"


#: Header names (lower case, letters and digits only) taken for each ``--columns`` key.
_ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "amplitude": (
        "v", "amplitude", "amp", "voltage", "vwrite", "vpulse", "writev", "pulsev",
        "writevoltage", "pulsevoltage", "pulseamplitude", "writeamplitude", "vapplied",
    ),
    "resistance": ("r", "resistance", "rread", "rlow", "rohm", "readresistance"),
    "conductance": ("g", "conductance", "gread", "gs", "readconductance"),
    "current": ("i", "current", "iread", "ia", "readcurrent"),
    "sweep": ("cycle", "sweep", "repetition", "rep", "count", "run"),
    "width": ("width", "pulsewidth", "pw", "widths", "tpulse"),
}  # fmt: skip


def _role_key(column: str) -> str:
    """``'V_write (V)'`` → ``'vwrite'``: the header name without units and punctuation."""
    base = column.split("(")[0].split("[")[0]
    return "".join(ch for ch in base.lower() if ch.isalnum())


def suggest_columns(header: list[str]) -> str | None:
    """The ``--columns`` value that reads a table with this header as a pulse train, e.g.
    ``'amplitude=V,resistance=R,sweep=cycle'``; None when no write-amplitude column and no
    read column (resistance, conductance or current) is recognised by name."""
    found: dict[str, str] = {}
    for col in header:
        key = _role_key(col)
        for role, names in _ROLE_NAMES.items():
            if key in names and role not in found:
                found[role] = col.strip()
                break
    read = next((r for r in ("resistance", "conductance", "current") if r in found), None)
    if "amplitude" not in found or read is None:
        return None
    keys = ["amplitude", read] + [k for k in ("sweep", "width") if k in found]
    return ",".join(f"{k}={found[k]}" for k in keys)


def plain_table_reason(path: str | os.PathLike[str], lines: list[str]) -> str:
    """The skip reason of a plain table found in a folder, with the exact flags that read
    it as a CSV measurement (when its header names the columns), else the flags to fill in."""
    delim, _ = _table_rows(lines)
    body = [s for s in lines if s.strip() and not s.lstrip().startswith("#")]
    header = [c.strip() for c in body[0].split(delim or ",")] if body else []
    cols = ", ".join(header[:12]) + (", …" if len(header) > 12 else "")
    spec = suggest_columns(header)
    path = shlex.quote(str(path))
    if spec is None:
        return (
            f"skipped: not a recognised measurement (a plain table with columns {cols}; no "
            "write-amplitude and read column recognised by name). If it is a pulse train, "
            f"calibrate it on its own: ferrocim calibrate {path} --format csv --columns "
            "'amplitude=COLUMN,resistance=COLUMN' (or conductance=/current= with "
            "--read-voltage) --pulse-width SECONDS --out DIR"
        )
    extra = "" if "width=" in spec else " --pulse-width SECONDS"
    if "current=" in spec:
        extra += " --read-voltage VOLTS"
    return (
        f"skipped: not a recognised measurement (a plain table with columns {cols}). To read "
        f"it as a pulse train, calibrate it on its own: ferrocim calibrate {path} --format "
        f"csv --columns '{spec}'{extra} --out DIR"
    )


@dataclass(frozen=True)
class DiscoveredFile:
    """A file found under the input paths, with the format it will be read as or why not."""

    path: Path
    format: str | None
    skip_reason: str | None = None
    error: str | None = None


def discover(
    paths: list[str | os.PathLike[str]],
    *,
    format: str = "auto",
    mapping: ColumnMapping | None = None,
) -> list[DiscoveredFile]:
    """Expand files and folders (recursively) into the files to read, in sorted order.

    Inside folders, a file with a measurement extension (.csv, .tsv, .txt, .dat) whose
    format is not recognised is skipped (with the reason) when it is a clean delimited table
    (e.g. a CSV measurement that needs a column mapping, or a table of notes), and is an
    error (the batch fails, the other files still give their cards) when it is not: a
    damaged or truncated header, or bytes that are no table at all. DC I-V files are
    skipped, and a B1500 ``_N[...(ALL)]`` aggregate is skipped when its per-repetition
    files are also present (it repeats their rows). Files named explicitly are always read
    (and fail loudly when unreadable).
    """
    check_option("format", format, FORMATS)
    found: list[tuple[Path, bool]] = []  # (path, named explicitly)
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found += [
                (f, False)
                for f in sorted(p.rglob("*"))
                if f.is_file() and f.suffix.lower() in _SUFFIXES
            ]
        elif p.exists():
            found.append((p, True))
        else:
            raise InputError(f"Input path {p} does not exist")
    out: list[DiscoveredFile] = []
    per_count_dirs: set[tuple[Path, str]] = set()
    aggregates: list[tuple[int, Path]] = []
    for f, explicit in found:
        try:
            lines = read_lines(f)
        except InputError as exc:
            # an empty or unreadable file is an error to report (named or found)
            out.append(DiscoveredFile(f, None, error=str(exc)))
            continue
        fmt = format
        if format == "auto":
            if b1500.sniff(lines):
                fmt = b1500.FORMAT
            elif b2912b.sniff(lines):
                fmt = b2912b.FORMAT
            elif mapping is not None:
                fmt = table.FORMAT
            elif explicit:
                fmt = "auto"  # let read_measurement raise the clear message
            elif is_table(lines):
                out.append(DiscoveredFile(f, None, plain_table_reason(f, lines)))
                continue
            else:
                out.append(
                    DiscoveredFile(
                        f,
                        None,
                        error=f"{f}: cannot be parsed: neither a B1500 nor a B2912B export "
                        f"nor a delimited table ({_why_not_table(lines)}); damaged or "
                        "truncated header?",
                    )
                )
                continue
        if fmt == b1500.FORMAT:
            head, _, _ = b1500._header(lines, str(f))
            title = head.get("Setup title", "")
            if title.startswith(b1500.IV_SETUP):
                out.append(DiscoveredFile(f, fmt, "skipped: DC I-V sweep, not a pulse train"))
                continue
            if "N" in head and "Count" not in head and not explicit:
                aggregates.append((len(out), f))
            elif "Count" in head:
                per_count_dirs.add((f.parent, head.get("Device ID", "")))
            # the aggregate's decision needs all siblings: keep its slot, decide below
            out.append(DiscoveredFile(f, fmt, None))
            continue
        out.append(DiscoveredFile(f, fmt, None))
    for i, f in aggregates:
        head, _, _ = b1500._header(read_lines(f), str(f))
        if (f.parent, head.get("Device ID", "")) in per_count_dirs:
            out[i] = DiscoveredFile(
                f, b1500.FORMAT, "skipped: aggregate of the per-repetition files beside it"
            )
    return out

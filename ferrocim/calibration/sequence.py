"""The one internal data model every parser produces: an ordered pulse sequence.

file → parser → :class:`PulseSequence` → :func:`split_half_cycles` → :class:`HalfCycle`
(one monotonic-amplitude ramp of one polarity) → fits.

Units: amplitudes in volts (V), widths in seconds (s), conductances in siemens (S).
The conductance of pulse ``i`` is the one *read after* that pulse.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferrocim.checks import InputError


@dataclass(frozen=True)
class MeasurementMeta:
    """Typed metadata of one measurement file (``None`` where the file does not say).

    Voltages in V, times in s. ``amplitude_*`` describe the programmed ramps:
    ``start_pos → end_pos`` for the positive half, ``start_neg → end_neg`` for the negative.
    """

    source: str
    parser: str
    instrument: str | None = None
    device_id: str | None = None
    chip: str | None = None
    date: _dt.datetime | None = None
    pulse_width_s: float | None = None
    amplitude_start_pos_v: float | None = None
    amplitude_end_pos_v: float | None = None
    amplitude_start_neg_v: float | None = None
    amplitude_end_neg_v: float | None = None
    step_v: float | None = None
    read_voltage_v: float | None = None
    repetitions: int | None = None
    count: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary (date as ISO-8601)."""
        d = dataclasses.asdict(self)
        d["date"] = self.date.isoformat() if self.date else None
        return d


@dataclass(frozen=True)
class PulseSequence:
    """Ordered write pulses of one file, each followed by a conductance read.

    Attributes
    ----------
    amplitude_v
        Write amplitude of each pulse (V, signed).
    width_s
        Write pulse width of each pulse (s); NaN where unknown.
    conductance_s
        Conductance read after each pulse (S), > 0.
    sweep
        Sweep (cycle) label recorded by the instrument, or -1 where the file has none.
    line
        1-based line of each pulse in the source file (for messages).
    meta
        The file's metadata.
    """

    amplitude_v: np.ndarray
    width_s: np.ndarray
    conductance_s: np.ndarray
    sweep: np.ndarray
    line: np.ndarray
    meta: MeasurementMeta

    def __post_init__(self) -> None:
        n = len(self.amplitude_v)
        for name in ("width_s", "conductance_s", "sweep", "line"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"PulseSequence.{name} has {len(getattr(self, name))} values, expected {n}"
                )
        bad = ~(np.isfinite(self.conductance_s) & (self.conductance_s > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"{self.meta.source}, line {int(self.line[i])}: conductance must be a positive "
                f"finite number, got {self.conductance_s[i]!r}"
            )

    def __len__(self) -> int:
        return len(self.amplitude_v)

    @property
    def polarity(self) -> np.ndarray:
        """Sign of each write amplitude (+1, -1; 0 for a 0 V pulse)."""
        return np.sign(self.amplitude_v).astype(int)


@dataclass(frozen=True)
class HalfCycle:
    """One run of same-polarity pulses (a ramp), with the state before it where known.

    ``conductance_s[i]`` is read after pulse ``i``; ``g_before_s`` is the read just before
    the first pulse (the previous half's last read in the same file), or ``None``.
    """

    source: str
    sweep: int
    polarity: int
    amplitude_v: np.ndarray
    width_s: np.ndarray
    conductance_s: np.ndarray
    line: np.ndarray
    g_before_s: float | None
    meta: MeasurementMeta

    @property
    def n_pulses(self) -> int:
        return len(self.amplitude_v)

    def states_s(self) -> np.ndarray:
        """Conductance states in order: before the first pulse (if known), then each read."""
        if self.g_before_s is None:
            return self.conductance_s.copy()
        return np.concatenate([[self.g_before_s], self.conductance_s])

    def pulse_amplitudes_v(self) -> np.ndarray:
        """Amplitude of the pulse that led to each state transition of :meth:`states_s`."""
        return self.amplitude_v if self.g_before_s is not None else self.amplitude_v[1:]

    @property
    def net_change_s(self) -> float:
        s = self.states_s()
        return float(s[-1] - s[0])


def split_half_cycles(seq: PulseSequence) -> list[HalfCycle]:
    """Split a sequence into same-polarity runs and number them into sweeps.

    A 0 V pulse joins the run of the next non-zero pulse; at the start of a run it writes
    nothing, so its read becomes the run's state before the first pulse. A new sweep
    starts when the recorded sweep label changes or when a run repeats the polarity the
    current sweep began with, so ``+ - + -`` gives sweeps 0, 0, 1, 1. Every run but the
    file's first starts from the previous row's read (a new sweep label does not reset the
    device), so no pulse transition is lost at a sweep boundary.
    """
    if len(seq) == 0:
        return []
    pol = seq.polarity.copy()
    # 0 V pulses take the polarity of the next non-zero pulse (or the previous one at the end)
    nz = np.nonzero(pol)[0]
    if nz.size == 0:
        raise InputError(f"{seq.meta.source}: every write amplitude is 0 V; nothing to fit")
    for i in np.nonzero(pol == 0)[0]:
        after = nz[nz > i]
        pol[i] = pol[after[0]] if after.size else pol[nz[nz < i][-1]]
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(seq) + 1):
        if i == len(seq) or pol[i] != pol[start] or seq.sweep[i] != seq.sweep[start]:
            runs.append((start, i))
            start = i
    halves: list[HalfCycle] = []
    sweep_no = -1
    first_pol: int | None = None
    seen: set[int] = set()
    prev_label = None
    for a, b in runs:
        p = int(pol[a])
        label = int(seq.sweep[a])
        if label != prev_label or first_pol is None or p in seen:
            sweep_no += 1
            first_pol = p
            seen = set()
        seen.add(p)
        # the rows of one file are one measurement: the previous row's read is the state
        # before this run's first pulse even where the sweep label changes
        g_before = float(seq.conductance_s[a - 1]) if a > 0 else None
        # leading 0 V rows write nothing: their last read is the state before the ramp
        zeros = 0
        while a + zeros < b - 1 and seq.amplitude_v[a + zeros] == 0:
            zeros += 1
        if zeros:
            g_before = float(seq.conductance_s[a + zeros - 1])
            a += zeros
        halves.append(
            HalfCycle(
                source=seq.meta.source,
                sweep=sweep_no,
                polarity=p,
                amplitude_v=seq.amplitude_v[a:b],
                width_s=seq.width_s[a:b],
                conductance_s=seq.conductance_s[a:b],
                line=seq.line[a:b],
                g_before_s=g_before,
                meta=seq.meta,
            )
        )
        prev_label = label
    return halves


def infer_ltp_polarity(halves: list[HalfCycle], *, source: str = "<data>") -> int:
    """The write polarity (+1 or -1) whose pulses raise the conductance, from the data.

    Each half-cycle votes with the sign of its net conductance change, weighted by its size
    relative to its own level; the polarity whose halves potentiate wins. Raises when the
    data hold one polarity only or the vote is not clear (then set the polarity by hand).
    """
    pols = {h.polarity for h in halves}
    if pols != {+1, -1}:
        only = "positive" if pols == {+1} else "negative"
        raise InputError(
            f"{source}: the pulses have one polarity only ({only}); LTP and LTD need both "
            "write polarities"
        )
    score = {+1: 0.0, -1: 0.0}
    for h in halves:
        s = h.states_s()
        score[h.polarity] += float(np.log(s[-1] / s[0]))
    # LTP polarity: positive net log-change; the other polarity must show the opposite sign
    if score[+1] > 0 > score[-1]:
        return +1
    if score[-1] > 0 > score[+1]:
        return -1
    raise InputError(
        f"{source}: cannot tell which polarity potentiates (net log-conductance change "
        f"{score[+1]:+.3g} for positive and {score[-1]:+.3g} for negative pulses); "
        "set --ltp-polarity positive or negative"
    )

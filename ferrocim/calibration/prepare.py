"""From parsed sequences to fit-ready, normalised segments.

Steps, each stated when it drops data (``warnings.warn`` naming file and line):

1. breakdown: a read below ``r_short_ohm`` means the junction shorted; that read and all
   later pulses of the file are dropped;
2. half-cycles with a conductance window (max/min) below ``min_window_ratio`` do not switch
   and are dropped, as are those with fewer than ``min_steps`` pulse transitions;
3. the LTP polarity is inferred from the data (or forced);
4. states are normalised ``W = (G - Gmin) / (Gmax - Gmin)`` per sweep (min/max of that
   sweep's reads), globally (min/max of all kept reads, or the user's Gmin/Gmax in S) or by
   a window fitted with the kernels (one window per sweep, from
   :mod:`~ferrocim.calibration.window`).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from ferrocim.calibration.fitting import MIN_STEPS, Segment
from ferrocim.calibration.sequence import (
    HalfCycle,
    PulseSequence,
    infer_ltp_polarity,
    split_half_cycles,
)
from ferrocim.checks import InputError, check_option

#: How ``build_segments`` sets each sweep's window: min-max per sweep, min-max over all
#: sweeps (or the user's window), or fitted windows handed in.
NORMALISATIONS = ("sweep", "global", "fitted")


@dataclass(frozen=True)
class QualityOptions:
    """Thresholds of the data-quality gate."""

    r_short_ohm: float = 1e5
    min_window_ratio: float = 1.2
    min_steps: int = MIN_STEPS


def drop_breakdown(seq: PulseSequence, r_short_ohm: float) -> PulseSequence | None:
    """The sequence up to (not including) the first read below ``r_short_ohm`` (ohm)."""
    shorted = seq.conductance_s > 1.0 / r_short_ohm
    if not shorted.any():
        return seq
    i = int(np.argmax(shorted))
    warnings.warn(
        f"{seq.meta.source}, line {int(seq.line[i])}: resistance "
        f"{1.0 / seq.conductance_s[i]:.4g} ohm is below {r_short_ohm:g} ohm (device broke "
        "down); this and all later pulses of the file are dropped",
        stacklevel=2,
    )
    if i == 0:
        return None
    return dataclasses.replace(
        seq,
        amplitude_v=seq.amplitude_v[:i],
        width_s=seq.width_s[:i],
        conductance_s=seq.conductance_s[:i],
        sweep=seq.sweep[:i],
        line=seq.line[:i],
    )


def usable_halves(seq: PulseSequence, quality: QualityOptions) -> list[HalfCycle]:
    """Half-cycles of ``seq`` that pass the quality gate (see module docstring)."""
    kept_seq = drop_breakdown(seq, quality.r_short_ohm)
    if kept_seq is None:
        return []
    out = []
    for h in split_half_cycles(kept_seq):
        s = h.states_s()
        where = f"{h.source}, lines {int(h.line[0])}-{int(h.line[-1])}"
        if len(s) - 1 < quality.min_steps:
            warnings.warn(
                f"{where}: only {len(s) - 1} pulse transitions (need {quality.min_steps}); "
                "half-cycle dropped",
                stacklevel=2,
            )
            continue
        ratio = float(s.max() / s.min())
        if ratio < quality.min_window_ratio:
            warnings.warn(
                f"{where}: conductance window {ratio:.3f} is below {quality.min_window_ratio}"
                " (no switching); half-cycle dropped",
                stacklevel=2,
            )
            continue
        out.append(h)
    return out


def resolve_polarity(halves: list[HalfCycle], ltp_polarity: str, *, source: str) -> int:
    """+1 or -1: forced by ``ltp_polarity`` ('positive'/'negative') or inferred ('auto')."""
    check_option("ltp_polarity", ltp_polarity, ("auto", "positive", "negative"))
    if ltp_polarity == "positive":
        return +1
    if ltp_polarity == "negative":
        return -1
    return infer_ltp_polarity(halves, source=source)


def build_segments(
    halves: list[tuple[int, HalfCycle]],
    ltp_pol: int,
    *,
    normalise: str = "sweep",
    g_min_s: float | None = None,
    g_max_s: float | None = None,
    windows: dict[int, tuple[float, float]] | None = None,
) -> tuple[list[Segment], float, float]:
    """Normalised segments from (global sweep index, half-cycle) pairs.

    ``normalise='fitted'`` takes each sweep's (Gmin, Gmax) in S from ``windows`` (sweep →
    window). Returns the segments and the global (Gmin, Gmax) in S (from the data or as
    given).
    """
    check_option("normalise", normalise, NORMALISATIONS)
    if normalise == "fitted" and windows is None:
        raise ValueError("normalise='fitted' needs the fitted windows of the sweeps")
    if not halves:
        raise InputError("no usable half-cycles to normalise")
    allg = np.concatenate([h.states_s() for _, h in halves])
    gmin = float(allg.min()) if g_min_s is None else float(g_min_s)
    gmax = float(allg.max()) if g_max_s is None else float(g_max_s)
    if not (0 < gmin < gmax):
        raise InputError(f"Gmin ({gmin} S) must be positive and below Gmax ({gmax} S)")
    per_sweep: dict[int, tuple[float, float]] = {}
    for sw in {s for s, _ in halves}:
        g = np.concatenate([h.states_s() for s, h in halves if s == sw])
        per_sweep[sw] = (float(g.min()), float(g.max()))
    segs = []
    for sw, h in halves:
        if normalise == "fitted":
            assert windows is not None
            lo, hi = windows[sw]
        else:
            lo, hi = per_sweep[sw] if normalise == "sweep" else (gmin, gmax)
        g = h.states_s()
        segs.append(
            Segment(
                kind="ltp" if h.polarity == ltp_pol else "ltd",
                sweep=sw,
                source=h.source,
                w=(g - lo) / (hi - lo),
                v=h.pulse_amplitudes_v(),
                g_min_s=lo,
                g_max_s=hi,
                first_line=int(h.line[0]),
            )
        )
    return segs, gmin, gmax

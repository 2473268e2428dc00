"""An independent generator of measurement files from a *known* Beta-kernel device.

Written for the parameter-recovery tests without importing anything from ``ferrocim``: its
conventions (start state, saturation, read-noise form, what a 0 V row does) are its own
parameters, so a test that passes does not pass because the generator and the fitter share
a convention. It writes the three formats a user brings:

- Keysight B2912B exports (``key:<TAB>value`` header, a blank line, a tab-separated table
  ``cycle V_write R_neg_ohm R_pos_ohm …``; sweeps 0 → +Vmax then −step → Vmax_neg);
- a plain CSV (``cycle,V,R`` or any column names);
- Keysight B1500 WGFMU ``pulsedAmplitudeSweep_DCIV`` repetition files (tab header, a
  ``Measurement parameters`` CSV row, ``Measurement Data`` with ``index, pulse amplitude
  (V), R_low (ohm), R_high (ohm)``), one file per repetition.

The device: true normalised state ``u = (G - g_min) / (g_max - g_min)`` of the *true*
window; one pulse changes it by ``a_eff · u^(alpha-1) · (1-u)^(beta-1)`` (up for a
potentiating pulse, down for a depressing one), ``a_eff = a · (1 + c2c · N(0, 1))`` and, if
``v_th`` is set, times ``((|V| - v_th) / (v_ref - v_th))^p`` (0 below threshold). The state
saturates at ``clip`` (default the window itself, [0, 1]). Every read is the true G plus
Gaussian noise of s.d. ``read_additive · (g_max - g_min)`` and ``read_proportional · G``
(either, both or neither). A 0 V row writes nothing and is read like any other row.
Units: conductances in S, resistances in ohm, voltages in V, times in s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TrueKernel:
    """One polarity's true step: ``a · u^(alpha-1) · (1-u)^(beta-1)`` (fraction of the window).

    ``v_th`` (V) switches on an amplitude dependence ``((|V| - v_th)/(v_ref - v_th))^p``;
    ``None`` means every pulse steps the same whatever its amplitude.
    """

    a: float
    alpha: float
    beta: float
    v_th: float | None = None
    v_ref: float = 1.0
    p: float = 1.0

    def step(self, u: float, v: float) -> float:
        """Step magnitude at true state ``u`` for a pulse of ``v`` volts (without c2c)."""
        uu = min(max(u, 1e-300), 1.0 - 1e-16)  # the kernel's own domain: the open window
        amp = self.a
        if self.v_th is not None:
            drive = max(abs(v) - self.v_th, 0.0) / (self.v_ref - self.v_th)
            amp *= drive**self.p
        return amp * uu ** (self.alpha - 1.0) * (1.0 - uu) ** (self.beta - 1.0)

    def dg(self, g: np.ndarray, g_min: float, g_max: float) -> np.ndarray:
        """Conductance step (S) of one identical pulse at conductance ``g`` (S)."""
        u = (np.asarray(g, float) - g_min) / (g_max - g_min)
        u = np.clip(u, 1e-300, 1.0 - 1e-16)
        return (g_max - g_min) * self.a * u ** (self.alpha - 1.0) * (1.0 - u) ** (self.beta - 1.0)


@dataclass(frozen=True)
class TrueDevice:
    """A device with known kernels, window, start, saturation and noise (module docstring).

    ``window_drift``: relative change of ``g_max - g_min`` per sweep (g_min fixed), for
    devices whose window drifts; 0 keeps one window.
    """

    ltp: TrueKernel
    ltd: TrueKernel
    g_min_s: float = 5e-9
    g_max_s: float = 70e-9
    u_start: float = 0.5
    clip: tuple[float, float] | None = (0.0, 1.0)
    c2c: float = 0.0
    read_additive: float = 0.0
    read_proportional: float = 0.0
    ltp_polarity: int = -1
    window_drift: float = 0.0


@dataclass
class Simulated:
    """What the generator did, row by row, and where it wrote it."""

    amplitude_v: np.ndarray
    sweep: np.ndarray  # sweep (repetition) of each row
    u_true: np.ndarray  # true state after each row
    g_true_s: np.ndarray  # true conductance after each row
    g_read_s: np.ndarray  # the noisy read after each row (what the file holds)
    g_window_s: np.ndarray  # (g_min, g_max) of each row's sweep (rows, 2)
    kind: np.ndarray  # 'ltp', 'ltd' or '0' (0 V) per row
    paths: list[Path] = field(default_factory=list)

    def states_before(self, kind: str) -> np.ndarray:
        """True conductance (S) before each pulse of ``kind`` (the visited range)."""
        before = np.concatenate([[np.nan], self.g_true_s[:-1]])
        out = before[self.kind == kind]
        return out[np.isfinite(out)]


def simulate(
    device: TrueDevice, amplitude_v: np.ndarray, sweep: np.ndarray, seed: int = 0
) -> Simulated:
    """Run ``device`` through the rows (amplitudes in V, sweep index per row)."""
    rng = np.random.default_rng(seed)
    n = len(amplitude_v)
    u = device.u_start
    u_true, g_true, g_read, kinds = np.empty(n), np.empty(n), np.empty(n), []
    win = np.empty((n, 2))
    for i, (v, s) in enumerate(zip(amplitude_v, sweep, strict=True)):
        width = (device.g_max_s - device.g_min_s) * (1.0 + device.window_drift * s)
        g0, g1 = device.g_min_s, device.g_min_s + width
        if v == 0:
            kinds.append("0")
        else:
            potentiate = np.sign(v) == device.ltp_polarity
            k = device.ltp if potentiate else device.ltd
            step = k.step(u, v) * (1.0 + device.c2c * rng.standard_normal())
            u = u + step if potentiate else u - step
            kinds.append("ltp" if potentiate else "ltd")
        if device.clip is not None:
            u = min(max(u, device.clip[0]), device.clip[1])
        if not 0.0 <= u <= 1.0:
            raise ValueError(f"row {i}: the state left the window (u = {u}); set clip")
        g = g0 + u * (g1 - g0)
        sd = np.hypot(device.read_additive * (g1 - g0), device.read_proportional * g)
        u_true[i], g_true[i], win[i] = u, g, (g0, g1)
        g_read[i] = g + sd * rng.standard_normal()
        if g_read[i] <= 0:
            raise ValueError(f"row {i}: a noisy read fell to {g_read[i]} S; lower the noise")
    return Simulated(
        amplitude_v=np.asarray(amplitude_v, float),
        sweep=np.asarray(sweep),
        u_true=u_true,
        g_true_s=g_true,
        g_read_s=g_read,
        g_window_s=win,
        kind=np.array(kinds),
    )


# ---- row patterns -------------------------------------------------------------------
def b2912b_rows(sweeps: int, step: float, vmax_pos: float, vmax_neg: float) -> np.ndarray:
    """One sweep 0, step, …, vmax_pos, −step, …, vmax_neg repeated ``sweeps`` times."""
    n_pos = round(vmax_pos / step) + 1
    n_neg = round(-vmax_neg / step)
    one = [i * step for i in range(n_pos)] + [-(i + 1) * step for i in range(n_neg)]
    return np.array(one * sweeps, dtype=float)


def b1500_rows(start_pos: float, end_pos: float, start_neg: float, end_neg: float, step: float):
    """One repetition: start_pos → end_pos, then start_neg → end_neg, in ``step`` V."""
    n_pos = int(np.floor((end_pos - start_pos) / step + 1e-9)) + 1
    n_neg = int(np.floor((start_neg - end_neg) / step + 1e-9)) + 1
    pos = np.round(start_pos + step * np.arange(n_pos), 3)
    neg = np.round(start_neg - step * np.arange(n_neg), 3)
    return np.concatenate([pos, neg])


# ---- writers ------------------------------------------------------------------------
def write_b2912b(
    path: Path,
    device: TrueDevice,
    *,
    sweeps: int = 10,
    step: float = 0.05,
    vmax_pos: float = 1.0,
    vmax_neg: float = -1.25,
    seed: int = 0,
    device_name: str = "SYN1",
) -> Simulated:
    """A B2912B export (running ``cycle`` counter, ``Cycles_measured`` = rows; G = 1/R_pos)."""
    amps = b2912b_rows(sweeps, step, vmax_pos, vmax_neg)
    per = len(amps) // sweeps
    sim = simulate(device, amps, np.repeat(np.arange(sweeps), per), seed)
    head = [
        "Export_timestamp:\t2025-01-02T03:04:05",
        "Instrument_IDN:\tKeysight Technologies,B2912B,MY00000001,5.0.2331.95",
        "Chip:\tGEN-01",
        f"Device:\t{device_name}",
        "Area:\t1000.0",
        f"Vwrite_step_V:\t{step}",
        f"Vmax_pos_V:\t{vmax_pos:g}",
        f"Vmax_neg_V:\t{vmax_neg:g}",
        "Vread_min_V:\t",
        "Vread_max_V:\t",
        "pulse_duration_s:\t1e-05",
        f"Cycles_measured:\t{len(amps)}",
        "",
        "cycle\tV_write\tR_neg_ohm\tR_pos_ohm\tI_neg_A\tI_pos_A\tJ_neg_A_per_m2\tJ_pos_A_per_m2"
        "\tVread_min_V\tVread_max_V",
    ]
    rows = []
    for i, (v, g) in enumerate(zip(amps, sim.g_read_s, strict=True)):
        r_pos = 1.0 / g
        r_neg = 1.3 * r_pos
        rows.append(
            f"{i + 1}\t{v:.10g}\t{r_neg:.12g}\t{r_pos:.12g}\t{0.1 / r_neg:.8g}\t{0.1 / r_pos:.8g}"
            f"\t{0.1 / r_neg / 1e-9:.8g}\t{0.1 / r_pos / 1e-9:.8g}\t-0.1\t0.1"
        )
    path.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    sim.paths = [path]
    return sim


def write_csv(
    path: Path,
    device: TrueDevice,
    *,
    sweeps: int = 10,
    n_ltp: int = 25,
    n_ltd: int = 20,
    v_ltp: float = -1.0,
    v_ltd: float = 1.0,
    zero_rows: int = 0,
    ltd_first: bool = True,
    columns: tuple[str, str, str] = ("cycle", "V", "R"),
    seed: int = 0,
) -> Simulated:
    """A plain CSV: sweep column, write amplitude (V), resistance read (ohm).

    Each sweep is ``zero_rows`` 0 V rows, then ``n_ltd`` depressing and ``n_ltp``
    potentiating pulses of fixed amplitude (or LTP first with ``ltd_first=False``).
    """
    ltd = [v_ltd] * n_ltd
    ltp = [v_ltp] * n_ltp
    one = [0.0] * zero_rows + (ltd + ltp if ltd_first else ltp + ltd)
    amps = np.array(one * sweeps, dtype=float)
    sim = simulate(device, amps, np.repeat(np.arange(sweeps), len(one)), seed)
    c_sw, c_v, c_r = columns
    lines = [f"{c_sw},{c_v},{c_r}"]
    lines += [
        f"{s},{v:.6g},{1.0 / g:.12g}" for s, v, g in zip(sim.sweep, amps, sim.g_read_s, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sim.paths = [path]
    return sim


def write_b1500(
    folder: Path,
    device: TrueDevice,
    *,
    repetitions: int = 2,
    start_pos: float = 0.7,
    end_pos: float = 5.0,
    start_neg: float = -0.6,
    end_neg: float = -3.6,
    step: float = 0.042,
    pulse_width_s: float = 2e-8,
    device_id: str = "_IDSYN100",
    seed: int = 0,
) -> Simulated:
    """B1500 WGFMU repetition files (one per repetition, ``Count`` k) of one continuous run.

    Both reads of a row are written: ``R_low`` = 1/G (the read the fitter uses by default)
    and ``R_high`` = 1.15 R_low.
    """
    one = b1500_rows(start_pos, end_pos, start_neg, end_neg, step)
    amps = np.tile(one, repetitions)
    sim = simulate(device, amps, np.repeat(np.arange(repetitions), len(one)), seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = (
        "groundWGFMU,pulseWGFMU,startVolage1,endVoltage1,startVolage2,endVoltage2,stepSize,"
        "riseTime,fallTime,pulseWidth,pulseDelay,VpreCond1,VpreCond2,riseTimePrecond,"
        "fallTimePrecon,pulseWidthPreCond,bothSides,repetitions,preConEveryLoop,"
        "groundVoltageDuringPu,"
    )
    values = (
        f"SMU2,WGFMU1,{start_pos:.6f},{end_pos:.6f},{start_neg:.6f},{end_neg:.6f},{step:.6f},"
        f"0.000000020,0.000000020,{pulse_width_s:.9f},0.001000000,0.000000,0.000000,"
        f"0.000100000,0.000100000,0.005000000,0,{repetitions},0,0.000000,"
    )
    for rep in range(repetitions):
        lines = [
            "Setup title\tpulsedAmplitudeSweep_DCIV",
            "test date\t02.01.2025",
            f"test time\t10:{rep:02d}:00",
            f"Device ID\t{device_id}",
            f"Count\t{rep}",
            "Measurement parameters",
            names,
            values,
            "Measurement Data",
            "index, pulse amplitude (V), R_low (ohm), R_high (ohm)",
        ]
        sel = np.nonzero(sim.sweep == rep)[0]
        for j, i in enumerate(sel):
            r = 1.0 / sim.g_read_s[i]
            lines.append(f"{j:5d},{amps[i]:7.3f},{r:.6f},{1.15 * r:.6f}")
        p = folder / f"pulsedAmplitudeSweep_DCIV[{device_id}({rep})]2025010210{rep:02d}00.csv"
        p.write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))
        sim.paths.append(p)
    return sim


# ---- what a card says about the device --------------------------------------------------
def card_dg(card: dict, kind: str, g: np.ndarray) -> np.ndarray:
    """The conductance step (S) a card predicts at conductance ``g`` (S): its kernel in its
    own window, ``(Gmax-Gmin) · a · W^(alpha-1) (1-W)^(beta-1)``, ``W = (g-Gmin)/(Gmax-Gmin)``."""
    k = card[kind]
    g0, g1 = card["g_min_s"], card["g_max_s"]
    w = (np.asarray(g, float) - g0) / (g1 - g0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (g1 - g0) * k["a"] * w ** (k["alpha"] - 1.0) * (1.0 - w) ** (k["beta"] - 1.0)


def curve_error(
    card: dict,
    device: TrueDevice,
    sim: Simulated,
    kind: str,
    *,
    u_range: tuple[float, float] = (0.05, 0.95),
    visited: tuple[float, float] = (0.0, 100.0),
) -> float:
    """Largest relative error of the card's dG(G) against the true one over the conductances
    the device visited before ``kind`` pulses: between the ``visited`` percentiles of those
    states, restricted to true states in ``u_range``."""
    g = sim.states_before(kind)
    lo = device.g_min_s + u_range[0] * (device.g_max_s - device.g_min_s)
    hi = device.g_min_s + u_range[1] * (device.g_max_s - device.g_min_s)
    p_lo, p_hi = np.percentile(g, visited)
    g_lo, g_hi = max(p_lo, lo), min(p_hi, hi)
    grid = np.linspace(g_lo, g_hi, 201)
    true = getattr(device, kind).dg(grid, device.g_min_s, device.g_max_s)
    got = card_dg(card, kind, grid)
    err = np.abs(got / true - 1.0)
    return float(np.max(np.where(np.isfinite(err), err, np.inf)))

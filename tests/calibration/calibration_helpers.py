"""Helpers for the calibration tests: synthetic Beta-kernel sequences and a B2912B writer.

A module of its own (not conftest) so that tests import it by a unique name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferrocim.calibration.kernel import beta_step

BUNDLED_170 = "lbe247-2024-10-24/_ID170ZR5000/pulsedAmplitudeSweep_DCIV_20241024131813"
FILE_170_0 = "pulsedAmplitudeSweep_DCIV[_ID170ZR5000(0)]20241024131815.csv"
FILE_170_ALL = "pulsedAmplitudeSweep_DCIV_N[_ID170ZR5000(ALL)]20241024131813.csv"


def synth_states(
    ltp: tuple[float, float, float],
    ltd: tuple[float, float, float],
    *,
    n_ltp: int,
    n_ltd: int,
    sweeps: int,
    rng: np.random.Generator,
    read_noise: float = 0.0,
    c2c: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(polarity per pulse, W read after each pulse, sweep index) for LTP then LTD ramps.

    Potentiation uses negative pulses (as in the real files). ``c2c``: relative s.d. of A per
    pulse; ``read_noise``: s.d. of each read in units of the window. The state saturates at
    the window's edges, 0 and 1, and each step is the kernel at the state itself (not at the
    crossbar's programming interval [0.01, 0.99], which the fitter no longer assumes).
    """
    pol, w_read, sw = [], [], []
    w = 0.02
    for s in range(sweeps):
        for params, n, direction in ((ltp, n_ltp, +1), (ltd, n_ltd, -1)):
            for _ in range(n):
                a = params[0] * (1.0 + c2c * rng.standard_normal())
                step = beta_step(np.clip(w, 1e-12, 1 - 1e-12), a, *params[1:])
                w = float(np.clip(w + direction * step, 0.0, 1.0))
                pol.append(-1 if direction > 0 else +1)
                w_read.append(w + read_noise * rng.standard_normal())
                sw.append(s)
    return np.array(pol), np.array(w_read), np.array(sw)


def write_b2912b(
    path: Path,
    *,
    ltp: tuple[float, float, float] = (0.2, 1.8, 2.6),
    ltd: tuple[float, float, float] = (0.12, 2.2, 1.8),
    g_min: float = 1e-8,
    g_max: float = 1e-7,
    sweeps: int = 3,
    step: float = 0.05,
    vmax_pos: float = 1.0,
    vmax_neg: float = -1.25,
    read_noise: float = 0.002,
    seed: int = 0,
) -> Path:
    """A B2912B export in the layout of the paper's file (NASA-FTJ-04 device 05-29).

    ``cycle`` is a running pulse counter and ``Cycles_measured`` the row count; each sweep
    is 0 → ``vmax_pos`` then −step → ``vmax_neg`` (46 rows for the defaults). Every non-zero
    pulse moves the state by the identical-pulse kernel: positive pulses depress (``ltd``),
    negative ones potentiate (``ltp``); the state saturates at the window [0, 1] (it was held
    in the crossbar's programming interval [0.01, 0.99] before issue 23). ``read_noise``:
    relative s.d. of each read of G.
    """
    rng = np.random.default_rng(seed)
    n_pos = round(vmax_pos / step) + 1
    n_neg = round(-vmax_neg / step)
    amps = [i * step for i in range(n_pos)] + [-(i + 1) * step for i in range(n_neg)]
    n_rows = sweeps * len(amps)
    header = [
        "Export_timestamp:\t2025-11-13T19:55:46",
        "Instrument_IDN:\tKeysight Technologies,B2912B,MY00000000,5.0.2331.95",
        "Chip:\tHZO-SL-07",
        "Device:\tD4",
        "Area:\t8300.0",
        "Data_path:\tC:\\Data\\SMU",
        "Device_area_m2:\t8300.0",
        f"Vwrite_step_V:\t{step}",
        f"Vmax_pos_V:\t{vmax_pos:g}",
        f"Vmax_neg_V:\t{vmax_neg:g}",
        "Vread_min_V:\t",
        "Vread_max_V:\t",
        "Read_points:\t20",
        "read_tail_avg_points:\t10",
        "pulse_duration_s:\t0.0005",
        "idle_between_ops_s:\t1",
        "nplc:\t20",
        "settle_s:\t0.25",
        "four_wire:\tFalse",
        "current_limit_A:\t0.0008",
        f"Cycles_measured:\t{n_rows}",
        "",
        "cycle\tV_write\tR_neg_ohm\tR_pos_ohm\tI_neg_A\tI_pos_A\tJ_neg_A_per_m2\tJ_pos_A_per_m2"
        "\tVread_min_V\tVread_max_V",
    ]
    rows = []
    w = 0.95
    for _ in range(sweeps):
        for v in amps:
            # the state saturates at the window's edges; the kernel is taken at the state
            if v > 0:
                w = max(w - float(beta_step(min(max(w, 1e-12), 1 - 1e-12), *ltd)), 0.0)
            elif v < 0:
                w = min(w + float(beta_step(min(max(w, 1e-12), 1 - 1e-12), *ltp)), 1.0)
            g = (g_min + w * (g_max - g_min)) * (1 + read_noise * rng.standard_normal())
            r_pos = 1.0 / g
            r_neg = 0.7 * r_pos
            rows.append(
                f"{len(rows) + 1}\t{v!r}\t{r_neg!r}\t{r_pos!r}\t{0.08 / r_neg!r}\t{0.1 / r_pos!r}"
                f"\t{0.08 / r_neg / 8300!r}\t{0.1 / r_pos / 8300!r}\t-0.08\t0.1"
            )
    path.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    return path

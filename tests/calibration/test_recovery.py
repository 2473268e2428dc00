"""Parameter recovery: files written from a known device by the independent generator
(``device_generator``, which imports nothing from ferrocim) give that device back.

Targets (issue 23): noiseless → kernel curve error < 0.5 %, trajectory R² > 0.9999 in every
format, c2c < 0.01, read noise < 0.001, the identical-pulse Beta kernel preferred by AIC;
1 % c2c with 0.3 % read noise → curve error ≤ 3 %; non-saturating sweeps with an unknown
window → the dG(G) curve over the visited range within 3 % and the window marked
extrapolated; c2c 0 → ≤ 0.05 and 0.20 → [0.15, 0.25] under additive and under
proportional read noise over 5 seeds each.

The curve error compares conductance steps dG(G) (S per pulse) at the conductances the
device visited, so it does not depend on how the fitter normalises: the card's kernel is
taken in the card's own window, as the crossbar takes it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from device_generator import (
    TrueDevice,
    TrueKernel,
    curve_error,
    write_b1500,
    write_b2912b,
    write_csv,
)

from ferrocim.calibration import CalibrationOptions, calibrate
from ferrocim.calibration.readers import ColumnMapping

#: The issue's device (LTP 0.30/1.5/1.8, LTD 0.45/2.0/1.5, window 5-70 nS) but with LTP
#: beta 2.2: with beta < 2 the LTP step overshoots the top edge (step > 1 - W once
#: 1 - W < 0.0024), the state sits exactly at W = 1 where the LTD kernel is 0, and how fast it
#: escapes is set by how close to 1 the generator evaluates the kernel (a floating-point
#: convention, not a device property). Its B2912B sweeps (20 LTD + 25 LTP pulses) saturate
#: at both ends (W from 2e-6 to 0.98).
SATURATING = TrueDevice(ltp=TrueKernel(0.30, 1.5, 2.2), ltd=TrueKernel(0.45, 2.0, 1.5), u_start=0.9)
#: A slower device for the long B1500 ramps (103 depressing, 72 potentiating pulses).
B1500_DEVICE = TrueDevice(
    ltp=TrueKernel(0.12, 1.6, 2.2), ltd=TrueKernel(0.08, 2.1, 1.5), u_start=0.8,
    g_min_s=4e-9, g_max_s=12e-9,
)  # fmt: skip
#: Swings between W 0.11 and 0.89 (30 LTP then 25 LTD pulses per sweep): never saturates.
SWINGING = TrueDevice(
    ltp=TrueKernel(0.10, 1.6, 2.0), ltd=TrueKernel(0.12, 2.0, 1.6), u_start=0.1, clip=None
)
CSV_MAPPING = "amplitude=V,resistance=R,sweep=cycle"


def _calibrate(paths: list[Path], out: Path, *, csv: bool = False, **opts) -> dict:
    mapping = ColumnMapping.from_string(CSV_MAPPING, pulse_width_s=1e-6) if csv else None
    res = calibrate(
        paths,
        out,
        CalibrationOptions(progress=False, plots=False, mapping=mapping, **opts),
    )
    assert res.ok and len(res.duts) == 1, res.failures
    return json.loads(res.duts[0].card_path.read_text())


def _write(fmt: str, tmp_path: Path, device: TrueDevice, seed: int = 0, sweeps: int = 4, **kw):
    if fmt == "b2912b":
        sim = write_b2912b(tmp_path / "dev.txt", device, sweeps=sweeps, seed=seed, **kw)
    elif fmt == "csv":
        sim = write_csv(tmp_path / "dev.csv", device, sweeps=sweeps, zero_rows=1, seed=seed, **kw)
    else:
        sim = write_b1500(tmp_path / "run", device, repetitions=2, seed=seed, **kw)
    return sim, _calibrate(sim.paths, tmp_path / "out", csv=fmt == "csv")


def _read_noise(card: dict) -> float:
    v = card["variability"]
    return max(v["read_noise_rsd"], v.get("read_noise_g_rsd", 0.0))


@pytest.mark.parametrize("fmt", ["b2912b", "csv", "b1500"])
def test_noiseless_device_comes_back(fmt, tmp_path):
    """No noise at all: the kernels, a perfect trajectory, no c2c, no read noise, and the
    identical-pulse kernel preferred to the amplitude-aware one (the data have no amplitude
    dependence)."""
    device = B1500_DEVICE if fmt == "b1500" else SATURATING
    sim, card = _write(fmt, tmp_path, device)
    for kind in ("ltp", "ltd"):
        assert curve_error(card, device, sim, kind) < 0.005, kind
        assert card["fit"]["r2_w"][kind] > 0.9999, kind
        comp = card["fit"]["model_comparison"][kind]
        assert not comp["amplitude_aware_beats_identical_pulse"], (kind, comp["models"])
    var = card["variability"]
    assert var["rsd_c2c_ltp"] < 0.01 and var["rsd_c2c_ltd"] < 0.01
    assert _read_noise(card) < 0.001


def test_c2c_and_read_noise_b2912b(tmp_path):
    """1 % cycle-to-cycle and 0.3 % read noise (of the window), 10 sweeps: curve error ≤ 3 %."""
    device = dataclasses.replace(SATURATING, c2c=0.01, read_additive=0.003)
    sim, card = _write("b2912b", tmp_path, device, seed=3, sweeps=10)
    for kind in ("ltp", "ltd"):
        assert curve_error(card, device, sim, kind) <= 0.03, kind


def test_non_saturating_sweeps_window_extrapolated(tmp_path):
    """Sweeps between W 0.11 and 0.89, read noise 0.3 % of the window, unknown window: the
    dG(G) curve within 3 % over the conductances the device visits (5th-95th percentile of
    the states before each pulse: at the turning points the curve is an extrapolation of the
    kernel's shape, measured 2-5 % off over four seeds), and the card says the window is
    extrapolated."""
    device = dataclasses.replace(SWINGING, read_additive=0.003)
    sim, card = _write(
        "csv", tmp_path, device, seed=1, sweeps=10, n_ltp=30, n_ltd=25, ltd_first=False
    )
    for kind in ("ltp", "ltd"):
        err = curve_error(card, device, sim, kind, u_range=(0.0, 1.0), visited=(5, 95))
        assert err <= 0.03, kind
    window = card["fit"]["window"]
    assert window["status"] == "extrapolated"
    assert "extrapolated" in card["provenance"]["fields"]["g_max_s"]["note"]


#: Read noise of one read: 1 % of the window, or 2 % of G (the same s.d. at mid-window of the
#: swinging device, 37 nS). With 2 % of the window additive the c2c estimate comes out low
#: (0.20 → 0.13-0.21, mean 0.17 over five seeds; measured), a limit of what 550 steps of
#: 3 % of the window can say under that much read noise.
NOISE_FORMS = {"additive": {"read_additive": 0.01}, "proportional": {"read_proportional": 0.02}}


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("c2c", [0.0, 0.2])
@pytest.mark.parametrize("form", list(NOISE_FORMS))
@pytest.mark.parametrize("case", ["saturating-b2912b", "swinging-csv-window-given"])
def test_c2c_under_read_noise_over_seeds(case, form, c2c, seed, tmp_path):
    """c2c 0 → ≤ 0.05, c2c 0.20 → [0.15, 0.25], five seeds of each, under additive and under
    proportional read noise, with the read-noise form told apart: the saturating B2912B
    device with its window fitted, and the swinging CSV device with its window given (its
    fitted window is extrapolated, and that uncertainty would enter the c2c figure)."""
    if case == "saturating-b2912b":
        device = dataclasses.replace(SATURATING, c2c=c2c, **NOISE_FORMS[form])
        sim, card = _write("b2912b", tmp_path, device, seed=seed, sweeps=10)
    else:
        device = dataclasses.replace(SWINGING, c2c=c2c, **NOISE_FORMS[form])
        sim = write_csv(
            tmp_path / "dev.csv", device, sweeps=10, n_ltp=30, n_ltd=25, ltd_first=False,
            zero_rows=1, seed=seed,
        )  # fmt: skip
        card = _calibrate(
            sim.paths, tmp_path / "out", csv=True, g_min_s=device.g_min_s, g_max_s=device.g_max_s
        )
    noise = card["fit"]["noise"]
    got = card["variability"]["rsd_c2c_ltp"]
    if c2c == 0:
        assert got <= 0.05, noise
    else:
        assert 0.15 <= got <= 0.25, noise
    assert noise["read_noise_form"] == form, noise["candidates"]


def test_generator_imports_nothing_from_the_fitter():
    text = (Path(__file__).parent / "device_generator.py").read_text()
    assert "ferrocim" not in text.split('"""', 2)[2]  # the docstring may name the project


def test_every_transition_of_a_sweep_is_kept(tmp_path):
    """Where the sweep label changes, the previous row's read is still the state before the
    next pulse: 10 sweeps of 20 + 25 pulses give 200 LTD and 250 LTP transitions."""
    from ferrocim.calibration.readers import read_measurement
    from ferrocim.calibration.sequence import split_half_cycles

    sim = write_csv(tmp_path / "d.csv", SATURATING, sweeps=10, zero_rows=0)
    seq = read_measurement(
        sim.paths[0], format="csv", mapping=ColumnMapping.from_string(CSV_MAPPING)
    )
    halves = split_half_cycles(seq)
    n = {p: sum(len(h.pulse_amplitudes_v()) for h in halves if h.polarity == p) for p in (-1, 1)}
    # the very first pulse of the file has no read before it
    assert n == {-1: 250, 1: 199}

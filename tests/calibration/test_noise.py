"""Read noise vs cycle-to-cycle noise: the state-space model on synthetic devices.

Synthetic devices as the issue states them: 10 sweeps × 50 LTP + 50 LTD pulses of the dut2
Beta kernel, 2 % read noise (s.d. of one read, fraction of the window), cycle-to-cycle 0 or
0.2 (relative s.d. of A per pulse). Targets: c2c 0 → ≤ 0.06; c2c 0.2 → [0.15, 0.25]; read
noise within [0.012, 0.03].
"""

import numpy as np
import pytest
from calibration_helpers import synth_states

from ferrocim.calibration.device import CalibrationOptions, calibrate_device
from ferrocim.calibration.fitting import KINDS
from ferrocim.calibration.noise import estimate_noise, kalman_nll
from ferrocim.calibration.prepare import build_segments
from ferrocim.calibration.sequence import MeasurementMeta, PulseSequence, split_half_cycles
from ferrocim.calibration.variability import rsd_c2c

DUT2 = ((0.2611, 1.6429, 1.9873), (0.5969, 2.4585, 1.6885))
KERNELS = dict(zip(KINDS, DUT2, strict=True))
G_MIN, G_MAX = 1e-8, 1e-7


def _sequence(c2c: float, seed: int) -> PulseSequence:
    rng = np.random.default_rng(seed)
    pol, w, sw = synth_states(
        *DUT2, n_ltp=50, n_ltd=50, sweeps=10, rng=rng, read_noise=0.02, c2c=c2c
    )
    n = len(w)
    return PulseSequence(
        amplitude_v=pol * 1.0,
        width_s=np.full(n, 2e-8),
        conductance_s=G_MIN + w * (G_MAX - G_MIN),
        sweep=sw,
        line=np.arange(n) + 2,
        meta=MeasurementMeta(source=f"synthetic-{seed}", parser="test", device_id="SYN"),
    )


def _segments(c2c: float, seed: int):
    halves = [(h.sweep, h) for h in split_half_cycles(_sequence(c2c, seed))]
    segs, *_ = build_segments(halves, -1, normalise="global", g_min_s=G_MIN, g_max_s=G_MAX)
    return segs


@pytest.mark.parametrize(("c2c", "low", "high"), [(0.0, 0.0, 0.06), (0.2, 0.15, 0.25)])
def test_state_space_separates_read_noise_from_c2c(c2c, low, high):
    """Known kernel, exact window: both figures on target with 1-sigma errors that cover
    the spread. The single-step residual figure cards carried before mixes the two
    (≈ 1 for both devices)."""
    segs = _segments(c2c, seed=0)
    est = estimate_noise(segs, KERNELS, shared_c2c=True)
    assert low <= est.c2c["ltp"] == est.c2c["ltd"] <= high
    assert 0.012 <= est.read_noise <= 0.03
    assert est.read_noise == pytest.approx(0.02, abs=3 * est.read_noise_stderr)
    assert 0 < est.c2c_stderr["ltp"] < 0.05 and 0 < est.read_noise_stderr < 0.002
    params = {"a": DUT2[0][0], "alpha": DUT2[0][1], "beta": DUT2[0][2]}
    old = rsd_c2c([s for s in segs if s.kind == "ltp"], params)
    assert old > 0.5  # read noise lands in the one-step figure


def test_likelihood_prefers_the_true_noises():
    """The negative log-likelihood at the true (r, c) is below that at swapped roles."""
    segs = _segments(0.2, seed=1)
    true = kalman_nll(segs, KERNELS, 0.02, {"ltp": 0.2, "ltd": 0.2})
    assert true < kalman_nll(segs, KERNELS, 0.02, {"ltp": 0.0, "ltd": 0.0}) - 20
    assert true < kalman_nll(segs, KERNELS, 0.03, {"ltp": 0.0, "ltd": 0.0}) - 20
    assert true < kalman_nll(segs, KERNELS, 0.005, {"ltp": 0.6, "ltd": 0.6}) - 20


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_calibrated_cards_meet_the_noise_targets(seed):
    """End to end with default options (per-sweep normalisation, fitted kernels): the card's
    read noise and c2c figures on target for three seeds of both devices (~15 s each)."""
    for c2c, low, high in ((0.0, 0.0, 0.06), (0.2, 0.15, 0.25)):
        dut = calibrate_device(
            [_sequence(c2c, seed)],
            "SYN",
            CalibrationOptions(progress=False, plots=False),
            rng=np.random.default_rng(0),
        )
        var = dut.card.variability
        assert low <= var.rsd_c2c_ltp == var.rsd_c2c_ltd <= high, (c2c, var)
        assert 0.012 <= var.read_noise_rsd <= 0.03
        assert var.rsd_c2c_stderr is not None and var.read_noise_stderr is not None
        assert dut.card.source("variability.rsd_c2c_ltp").origin == "measured"

import math

import numpy as np
import pytest
import torch

from ferrocim.calibration.kernel import (
    beta_step,
    symmetry_point,
    symmetry_residual,
    trajectory,
)

DUT2 = ((0.2611, 1.6429, 1.9873), (0.5969, 2.4585, 1.6885))


def test_beta_step_hand_value():
    # 0.2611 * 0.3**0.6429 * 0.7**0.9873
    expected = 0.2611 * math.exp(0.6429 * math.log(0.3) + 0.9873 * math.log(0.7))
    assert beta_step(0.3, *DUT2[0]) == pytest.approx(expected, rel=1e-12)


def test_beta_step_numpy_and_torch_agree():
    w = np.linspace(0.01, 0.99, 50)
    ref = beta_step(w, *DUT2[1])
    got = beta_step(torch.tensor(w, dtype=torch.float64), *DUT2[1]).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_dut2_symmetry_point():
    ws = symmetry_point(*DUT2)
    assert ws == pytest.approx(0.3158, abs=5e-4)
    assert abs(symmetry_residual(ws, *DUT2)) < 1e-9
    # LTP and LTD steps are equal there
    assert beta_step(ws, *DUT2[0]) == pytest.approx(beta_step(ws, *DUT2[1]), rel=1e-8)


def test_symmetry_point_nan_when_never_equal():
    assert math.isnan(symmetry_point((0.5, 1.0, 1.0), (0.1, 1.0, 1.0)))


def test_trajectory_monotone_and_bounded():
    up = trajectory(0.01, 40, *DUT2[0], direction=+1)
    down = trajectory(0.99, 40, *DUT2[1], direction=-1)
    assert up.shape == (41,) and np.all(np.diff(up) >= 0) and up.max() <= 1.0
    assert np.all(np.diff(down) <= 0) and down.min() >= 0.0
    assert up[1] == pytest.approx(0.01 + beta_step(0.01, *DUT2[0]))
    with pytest.raises(ValueError, match="direction"):
        trajectory(0.5, 3, *DUT2[0], direction=0)

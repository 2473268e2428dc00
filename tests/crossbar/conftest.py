"""Fixtures of the crossbar tests."""

from __future__ import annotations

import pytest

from ferrocim.calibration.card import Variability, preset


@pytest.fixture(scope="session")
def noisy_card():
    """dut2 with device-to-device and cycle-to-cycle spread (for generator-dependent tests)."""
    return preset("dut2").model_copy(
        update={
            "variability": Variability(
                rsd_c2c_ltp=0.1,
                rsd_c2c_ltd=0.15,
                a_ltp_dtod=0.1,
                a_ltd_dtod=0.1,
                alpha_ltp_dtod=0.05,
                alpha_ltd_dtod=0.05,
                beta_ltp_dtod=0.05,
                beta_ltd_dtod=0.05,
                g_min_dtod=0.05,
                g_max_dtod=0.05,
            )
        }
    )

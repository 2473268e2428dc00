import numpy as np
import pytest

from ferrocim.reports.array_state import endurance_table, tile_arrays


def _layer(life: float) -> dict:
    ltp = np.array([[2, 0, 1], [0, 0, 4]])
    ltd = np.array([[1, 0, 0], [0, 0, 4]])
    return {
        "ltp_pulses": ltp,
        "ltd_pulses": ltd,
        "lifetime": np.full((2, 3), life),
        "failed": np.array([[0, 0, 0], [0, 0, 1]], dtype=bool),
        "tile_rows": 2,
        "tile_cols": 1,
    }


def test_endurance_table_hand_values():
    t = endurance_table({"fc": _layer(100.0)}, runs_done=2).iloc[0]
    assert t["total_pulses"] == 12 and t["max_pulses_per_device"] == 8
    assert t["max_used_fraction"] == pytest.approx(0.08)
    # worst device: 8 pulses over 2 runs → 4 per run, 92 left → 23 runs
    assert t["projected_runs_to_first_failure"] == pytest.approx(23.0)
    assert t["failed_devices"] == 1 and t["lifetime_source"] == "drawn per device"


def test_endurance_table_uses_card_median_when_wear_is_off():
    t = endurance_table({"fc": _layer(np.inf)}, nominal_lifetime=1e3).iloc[0]
    assert t["lifetime_source"] == "card median (wear off)"
    assert t["projected_runs_to_first_failure"] == pytest.approx((1e3 - 8) / 8)
    t = endurance_table({"fc": _layer(np.inf)}).iloc[0]
    assert t["max_used_fraction"] == 0.0 and np.isinf(t["projected_runs_to_first_failure"])


def test_tile_arrays_cut_rows_as_inputs():
    tiles = tile_arrays(_layer(1.0), "pulses")  # (outputs=2, fan_in=3) → 2×2 tiles grid
    assert [name for name, _ in tiles] == ["tile 0", "tile 1", "tile 2", "tile 3"]
    np.testing.assert_array_equal(tiles[0][1], [[3], [0]])  # inputs 0-1, output 0
    np.testing.assert_array_equal(tiles[3][1], [[8]])  # input 2, output 1

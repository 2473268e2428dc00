"""``devices export --to aihwkit``: the PiecewiseStepDevice tables against the Beta kernel
computed here by hand, bounds, dw_min, c2c/d2d, the snippet and the command (no aihwkit)."""

from __future__ import annotations

import json
import math
import runpy

import numpy as np
import pytest
from click.testing import CliRunner

from ferrocim.calibration.card import Variability, preset
from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.crossbar.aihwkit_export import export_aihwkit, piecewise_step_device

# dut2 (DESIGN.md): LTP a, alpha, beta and LTD a, alpha, beta
LTP = (0.2611, 1.6429, 1.9873)
LTD = (0.5969, 2.4585, 1.6885)


def kernel(w: float, a: float, alpha: float, beta: float) -> float:
    """The Beta kernel at ``w`` clipped to [0.01, 0.99] (the programming rule), by hand."""
    w = min(max(w, 0.01), 0.99)
    return a * w ** (alpha - 1.0) * (1.0 - w) ** (beta - 1.0)


def bisect_symmetry(ltp: tuple[float, ...], ltd: tuple[float, ...]) -> float:
    """W* in (0, 1) where the two kernels are equal, by bisection of their log ratio."""

    def r(w: float) -> float:
        return math.log(kernel(w, *ltp) / kernel(w, *ltd))

    lo, hi = 0.02, 0.98
    assert r(lo) * r(hi) < 0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if r(lo) * r(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def aihwkit_step(dev: dict, w: float, up: bool) -> float:
    """One noiseless pulse of aihwkit 1.1.0's PiecewiseStepDevice (``update_once`` in
    rpu_piecewisestep_device.cpp and the scales of rpu_pulsed_device.cpp, no spread),
    written out here: the signed weight change at weight ``w``."""
    ud, dw = dev["up_down"], dev["dw_min"]
    scale_up = (1.0 + (ud if ud < 0 else 0.0)) * dw
    scale_down = (1.0 - (ud if ud > 0 else 0.0)) * dw
    v_up, v_down = dev["piecewise_up"], dev["piecewise_down"]
    n_sections = len(v_up) - 1
    lo, hi = dev["w_min"], dev["w_max"]
    w_scaled = max((w - lo) / (hi - lo) * n_sections, 0.0)
    i = min(math.floor(w_scaled), n_sections - 1)
    t = min(w_scaled - i, 1.0)
    if up:
        return scale_up * ((1 - t) * v_up[i] + t * v_up[i + 1])
    return -scale_down * ((1 - t) * v_down[i] + t * v_down[i + 1])


def test_tables_are_the_kernel_at_the_nodes_relative_to_the_middle_up_step():
    b = 0.125
    spec = piecewise_step_device(preset("dut2"), n_nodes=5, w_max=b)
    dev = spec["device"]
    # nodes at W = 0, 1/4, 1/2, 3/4, 1 over [w_min, w_max] = [-b, b]
    assert dev["w_min"] == -b and dev["w_max"] == b
    # dw_min: one LTP pulse at the middle node, 2 b a_p 0.5^(alpha_p + beta_p - 2)
    dw = 2 * b * 0.2611 * 0.5 ** (1.6429 + 1.9873 - 2)
    assert dev["dw_min"] == pytest.approx(dw, rel=1e-12)
    assert dev["dw_min"] == pytest.approx(0.0210867, rel=1e-5)  # worked out on paper
    for k, w in enumerate((0.0, 0.25, 0.5, 0.75, 1.0)):
        assert dev["piecewise_up"][k] * dw == pytest.approx(2 * b * kernel(w, *LTP), rel=1e-12)
        assert dev["piecewise_down"][k] * dw == pytest.approx(2 * b * kernel(w, *LTD), rel=1e-12)
    assert dev["piecewise_up"][2] == 1.0
    assert dev["up_down"] == 0.0
    # the edge nodes use the kernel at the clipped state 0.01 / 0.99, not at 0 / 1
    assert dev["piecewise_up"][0] > 0 and dev["piecewise_down"][-1] > 0
    # aihwkit's granularity (dw_min * piecewise_up[n // 2]) is the exported dw_min
    assert spec["mapping"]["granularity"] == pytest.approx(dw)
    # ferrocim's rules.dw_min: the mean of the two steps at the reference level
    mean = 2 * b * 0.5 * (kernel(0.5, *LTP) + kernel(0.5, *LTD))
    assert spec["mapping"]["ferrocim_dw_min"] == pytest.approx(mean, rel=1e-12)


def test_aihwkit_steps_follow_the_kernel_at_and_between_the_nodes():
    card = preset("dut2")
    b = 1.0
    dev = piecewise_step_device(card, n_nodes=33, w_max=b)["device"]
    for w_state in (0.0, 0.25, 0.5, 0.8125, 1.0):  # on nodes: exact
        w = 2 * b * (w_state - 0.5)
        assert aihwkit_step(dev, w, True) == pytest.approx(2 * b * kernel(w_state, *LTP))
        assert aihwkit_step(dev, w, False) == pytest.approx(-2 * b * kernel(w_state, *LTD))
    # between nodes: linear interpolation, within 1 % of the kernel away from the edges
    for w_state in np.linspace(0.1, 0.9, 17) + 0.5 / 32:
        w = 2 * b * (w_state - 0.5)
        assert aihwkit_step(dev, w, True) == pytest.approx(2 * b * kernel(w_state, *LTP), rel=1e-2)
        assert aihwkit_step(dev, w, False) == pytest.approx(
            -2 * b * kernel(w_state, *LTD), rel=1e-2
        )


def test_up_down_form_gives_the_same_absolute_steps():
    card = preset("dut2")
    tables = piecewise_step_device(card, n_nodes=9)["device"]
    split = piecewise_step_device(card, n_nodes=9, asymmetry="up_down")["device"]
    c_up, c_down = 2 * kernel(0.5, *LTP), 2 * kernel(0.5, *LTD)  # b = 1
    assert split["dw_min"] == pytest.approx(max(c_up, c_down))
    assert split["up_down"] == pytest.approx((c_up - c_down) / max(c_up, c_down))
    assert split["piecewise_up"][4] == split["piecewise_down"][4] == 1.0
    for w in np.linspace(-1, 1, 21):
        for up in (True, False):
            assert aihwkit_step(split, w, up) == pytest.approx(aihwkit_step(tables, w, up))


def test_symmetry_reference_shifts_the_bounds_and_keeps_the_window():
    card = preset("dut2")
    w_star = bisect_symmetry(LTP, LTD)
    assert card.symmetry_point == pytest.approx(w_star, abs=1e-9)
    b = 0.0625
    spec = piecewise_step_device(card, n_nodes=9, w_max=b, reference="symmetry")
    dev = spec["device"]
    assert dev["w_min"] == pytest.approx(-2 * b * w_star)
    assert dev["w_max"] == pytest.approx(2 * b * (1 - w_star))
    assert dev["w_max"] - dev["w_min"] == pytest.approx(2 * b)
    # weight 0 sits at W*, where the up and down steps are equal
    assert aihwkit_step(dev, 0.0, True) == pytest.approx(-aihwkit_step(dev, 0.0, False), rel=2e-2)
    mid = piecewise_step_device(card, n_nodes=9, w_max=b)["device"]
    assert dev["piecewise_up"] == mid["piecewise_up"]  # the tables do not move


def test_c2c_and_d2d_spread():
    var = Variability(rsd_c2c_ltp=0.1, rsd_c2c_ltd=0.2, a_ltp_dtod=0.06, a_ltd_dtod=0.08)
    card = preset("dut2").model_copy(update={"variability": var})
    spec = piecewise_step_device(card)
    dev = spec["device"]
    assert dev["dw_min_std"] == pytest.approx(0.15)
    s = math.sqrt((0.06**2 + 0.08**2) / 4)
    assert dev["dw_min_dtod"] == pytest.approx(s) and dev["up_down_dtod"] == pytest.approx(s)
    # aihwkit: scale_up = (g + r) dw_min, scale_down = (g - r) dw_min; relative s.d. of each
    # is sqrt(2) s = the RMS of the card's two spreads
    assert math.sqrt(2) * s == pytest.approx(math.sqrt((0.06**2 + 0.08**2) / 2))
    assert "rsd_c2c_ltp != rsd_c2c_ltd" in spec["mapping"]["not_mapped"]
    off = piecewise_step_device(card, dtod=False)["device"]
    assert off["dw_min_dtod"] == off["up_down_dtod"] == 0.0
    # aihwkit's non-zero defaults are all overridden
    for k in ("w_min_dtod", "w_max_dtod", "reset_std", "write_noise_std", "lifetime"):
        assert dev[k] == 0.0
    # the presets carry no spread
    clean = piecewise_step_device(preset("dut3"))["device"]
    assert clean["dw_min_std"] == clean["dw_min_dtod"] == 0.0


def test_bad_input_is_named():
    card = preset("dut2")
    with pytest.raises(InputError, match="'nodes' must be an integer from 2 to 63"):
        piecewise_step_device(card, n_nodes=64)
    with pytest.raises(InputError, match="'w_max'"):
        piecewise_step_device(card, w_max=0.0)
    with pytest.raises(InputError, match="'asymmetry'"):
        piecewise_step_device(card, asymmetry="both")
    lopsided = card.model_copy(
        update={
            "ltp": card.ltp.model_copy(update={"a": 0.5, "alpha": 2.0, "beta": 2.0}),
            "ltd": card.ltd.model_copy(update={"a": 0.1, "alpha": 2.0, "beta": 2.0}),
            "symmetry_point": None,
        }
    ).revalidated()
    assert lopsided.symmetry_point is None
    with pytest.raises(InputError, match="symmetry_point"):
        piecewise_step_device(lopsided, reference="symmetry")


def test_export_writes_json_and_a_snippet_that_rescales(tmp_path):
    path, snippet = export_aihwkit("dut2", tmp_path / "out" / "dut2-20ns.json", n_nodes=9)
    spec = json.loads(path.read_text())
    assert spec["format"] == "ferrocim.aihwkit/1" and spec["device_class"] == "PiecewiseStepDevice"
    assert spec["rpu_config"]["update"]["desired_bl"] == 31
    assert snippet == path.with_suffix(".py")
    ns = runpy.run_path(str(snippet))  # imports nothing from aihwkit until rpu_config()
    assert ns["SPEC"] == path
    kw = ns["device_kwargs"](spec, w_max=0.125)
    assert kw["dw_min"] == pytest.approx(spec["device"]["dw_min"] * 0.125)
    assert (kw["w_min"], kw["w_max"]) == (-0.125, 0.125)
    assert kw["piecewise_up"] == spec["device"]["piecewise_up"]
    w_star = spec["mapping"]["w_star"]
    kw = ns["device_kwargs"](spec, w_max=0.125, reference="symmetry")
    assert kw["w_min"] == pytest.approx(-0.25 * w_star)
    direct = piecewise_step_device(preset("dut2"), n_nodes=9, w_max=0.125, reference="symmetry")
    for k, v in direct["device"].items():
        assert kw[k] == (pytest.approx(v) if isinstance(v, float) else v), k
    with pytest.raises(InputError, match=r"\.json"):
        export_aihwkit("dut2", tmp_path / "dut2.py")
    with pytest.raises(InputError, match="cannot write"):  # a file where a folder should be
        export_aihwkit("dut2", path / "x.json")


def test_cli_export(tmp_path):
    out = tmp_path / "dut3.json"
    r = CliRunner().invoke(
        main, ["devices", "export", "dut3", "--to", "aihwkit", "--out", str(out), "--nodes", "9"]
    )
    assert r.exit_code == 0, r.output
    assert "PiecewiseStepDevice, 9 nodes over [-1, 1]" in r.output
    dev = json.loads(out.read_text())["device"]
    assert len(dev["piecewise_up"]) == len(dev["piecewise_down"]) == 9
    assert (tmp_path / "dut3.py").is_file()
    # a broken card names the file and the field
    bad = tmp_path / "bad.json"
    data = preset("dut2").to_dict()
    data["ltp"]["alpha"] = -1
    bad.write_text(json.dumps(data))
    r = CliRunner().invoke(
        main, ["devices", "export", str(bad), "--to", "aihwkit", "--out", str(tmp_path / "b.json")]
    )
    assert r.exit_code == 2
    assert "bad.json" in r.output and "ltp.alpha" in r.output
    assert not (tmp_path / "b.json").exists()


def _bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "vs_aihwkit.py"
    spec = importlib.util.spec_from_file_location("vs_aihwkit", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_imports_without_aihwkit_and_joins_results(tmp_path, capsys):
    bench = _bench()  # imports neither aihwkit nor torch at module level
    rows = [
        {"simulator": s, "bounds": "b", "width_s": w, "rule": r, "seed": k,
         "final_acc": acc + 0.01 * k, "acc_per_epoch": "[]"}
        for s, acc in (("ferrocim", 0.5), ("aihwkit", 0.6))
        for w in (2e-8, 2e-4) for r in ("plain", "mixed") for k in (0, 1)
    ]  # fmt: skip
    for s in ("ferrocim", "aihwkit"):
        bench.write_rows(tmp_path / f"{s}.csv", [r for r in rows if r["simulator"] == s])
    table = bench.compare([str(tmp_path / "ferrocim.csv"), str(tmp_path / "aihwkit.csv")])
    head = "| width | mixed ferrocim / aihwkit | plain ferrocim / aihwkit |"
    assert table.splitlines()[0] == head
    assert "| 20 ns | 50.5 / 60.5 | 50.5 / 60.5 |" in table
    assert "| 200 µs |" in table
    if not bench.has("aihwkit"):
        with pytest.raises(SystemExit, match=r"pip install torch==2\.10\.0 torchvision==0\.25\.0"):
            bench.main(["--side", "aihwkit", "--out", str(tmp_path)])

"""B2912B files in the paper's layout end to end; fits on a bound; assumed pulse widths."""

import dataclasses
import json

import numpy as np
import pytest
from calibration_helpers import synth_states, write_b2912b
from click.testing import CliRunner

from ferrocim.calibration import device
from ferrocim.calibration.device import CalibrationOptions, calibrate_device
from ferrocim.calibration.fitting import RETRY_STARTS, at_bound
from ferrocim.calibration.kernel import beta_step
from ferrocim.calibration.sequence import MeasurementMeta, PulseSequence
from ferrocim.cli import main

# saturating kernels: each ramp ends within 2 % of the window's edges. (Before issue 23 they
# were (0.25, 1.6, 1.4) / (0.3, 1.4, 1.7) in a generator holding W in [0.01, 0.99]; with the
# state saturating at the window, beta_LTP < 2 or alpha_LTD < 2 make a step overshoot onto the
# edge, where the opposite kernel is 0 and the escape is a floating-point convention.)
LTP, LTD = (0.25, 1.6, 2.2), (0.3, 2.2, 1.7)


@pytest.mark.slow
def test_b2912b_layout_recovers_kernel_and_batch_reports_junk(tmp_path):
    """10 sweeps of 46 rows (running counter): the card's kernels within 5 % of the true
    curves on W in [0.1, 0.9] (measured with the fitted window: 1.6 % LTP, 1.0 % LTD; with
    the old convention-sharing generator 4.8 % / 2.4 %); a junk file beside it fails
    with exit status 1 while the good file still gives its card (~20 s)."""
    src = tmp_path / "in"
    src.mkdir()
    write_b2912b(src / "d4.txt", ltp=LTP, ltd=LTD, sweeps=10, seed=1)
    junk = "Instrument_IDN:\tKeysight\n\ncycle\tV_write\tR_pos_ohm\n1\t0.0\tnan\n"
    (src / "junk.txt").write_text(junk)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["calibrate", str(src), "--out", str(out), "--no-plots"])
    assert res.exit_code == 1 and "FAILED" in res.output and "junk.txt, line 4" in res.output
    card = json.loads((out / "cards" / "D4.json").read_text())
    assert card["fit"]["n_sweeps"] == 10 and card["pulse"]["ltp_polarity"] == -1
    assert card["pulse"]["width_s"] == 5e-4
    w = np.linspace(0.1, 0.9, 81)
    for kind, true in (("ltp", LTP), ("ltd", LTD)):
        k = card[kind]
        got = beta_step(w, k["a"], k["alpha"], k["beta"])
        err = np.max(np.abs(got / beta_step(w, *true) - 1))
        assert err < 0.05, kind


def _small_sequence(width: float | None) -> PulseSequence:
    pol, w, sw = synth_states(
        (0.2611, 1.6429, 1.9873),
        (0.5969, 2.4585, 1.6885),
        n_ltp=20,
        n_ltd=20,
        sweeps=2,
        rng=np.random.default_rng(0),
        read_noise=0.005,
    )
    n = len(w)
    return PulseSequence(
        amplitude_v=pol * 1.0,
        width_s=np.full(n, np.nan),
        conductance_s=1e-8 + w * 9e-8,
        sweep=sw,
        line=np.arange(n) + 2,
        meta=MeasurementMeta(source="small.csv", parser="test", pulse_width_s=width),
    )


def test_fit_on_bound_is_retried_flagged_and_warned(monkeypatch):
    """A trajectory fit ending at alpha = 10 is retried from the other starts; still on the
    bound, the card keeps it flagged, with a warning naming the device."""
    real = device.fit_method
    retried = []

    def on_bound(segments, kind, method, **kw):
        fit = real(segments, kind, method, **kw)
        if kind == "ltd" and method == "trajectory":
            fit = dataclasses.replace(fit, params={**fit.params, "alpha": 10.0})
        return fit

    def no_better(segments, kind, fit):
        retried.append(kind)
        return fit

    monkeypatch.setattr(device, "fit_method", on_bound)
    monkeypatch.setattr(device, "refit_off_bound", no_better)
    with pytest.warns(
        UserWarning, match=r"SMALL: the LTD trajectory fit ends on a parameter bound \(alpha = 10\)"
    ):
        dut = calibrate_device(
            [_small_sequence(2e-8)], "SMALL", CalibrationOptions(), rng=np.random.default_rng(0)
        )
    assert retried == ["ltd"] and len(RETRY_STARTS) >= 3
    assert dut.card.ltd.at_bound == ["alpha"] and dut.card.ltp.at_bound == []
    assert dut.card.fit["at_bound"]["ltd"] == ["alpha"]
    assert "ends on a bound (alpha)" in dut.card.source("ltd").note
    assert at_bound(dut.card_fits["ltd"]) == ["alpha"]


def test_missing_pulse_width_warns_and_is_assumed():
    with pytest.warns(UserWarning, match="NOW: the files give no single pulse width"):
        dut = calibrate_device(
            [_small_sequence(None)], "NOW", CalibrationOptions(), rng=np.random.default_rng(0)
        )
    src = dut.card.source("pulse.width_s")
    assert dut.card.pulse.width_s == 2e-8 and src.origin == "assumed"
    assert src.reference.startswith("20 ns")


def test_at_bound_uses_each_models_bounds():
    from ferrocim.calibration.fitting import KernelFit

    def fit(model, method, **params):
        return KernelFit(
            kind="ltp", method=method, model=model, params=params,
            stderr={k: 0.1 for k in params}, correl={}, covar_names=(), covar=None,
            n_points=20, n_varied=len(params), r2=0.9, r2_dw=0.9, r2_w=0.9, rmse_w=0.01,
            redchi=1e-4, aic=-100.0, bic=-90.0, success=True, errorbars=True, message="",
        )  # fmt: skip

    assert at_bound(fit("beta", "trajectory", a=10.0, alpha=2.0, beta=0.1)) == ["a", "beta"]
    assert at_bound(fit("beta", "trajectory", a=1.0, alpha=2.0, beta=2.0)) == []
    assert at_bound(fit("beta", "paper", a=1.0, alpha=2.0, beta=2.0)) == ["a"]
    amp = fit("amplitude_beta", "difference", a=0.2, alpha=2.0, beta=2.0, v_th=2e-8, p=6.0)
    assert at_bound(amp) == ["v_th", "p"]

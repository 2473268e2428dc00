"""Pulse programming, counters, endurance, energy, resume (state_dict and HDF5), CUDA."""

from __future__ import annotations

import h5py
import pytest
import torch
from torch import nn

from ferrocim.calibration.kernel import beta_step
from ferrocim.checks import InputError
from ferrocim.crossbar import (
    AnalogConfig,
    AnalogLinear,
    EnduranceConfig,
    ProgrammingConfig,
    PulseOptimizer,
    convert,
    energy_ledger,
    load_tiles_hdf5,
    save_tiles_hdf5,
)

DUT2_LTP = (0.2611, 1.6429, 1.9873)
DUT2_LTD = (0.5969, 2.4585, 1.6885)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _hand_layer(**prog) -> AnalogLinear:
    # fan_in 4 -> w_max 0.5, 2A = 1; eps 0.25 -> thr_ltp 0.25
    cfg = AnalogConfig(programming=ProgrammingConfig(eps=0.25, **prog), d2d=False)
    m = AnalogLinear(4, 1, bias=False, config=cfg, generator=_gen())
    m.set_weights(torch.zeros(1, 4))
    return m


def test_hand_worked_pulse_and_crossing_counts():
    m = _hand_layer(thr_asym=2.0)  # thr_ltd 0.5
    seq = [
        # deltas per weight                      expected (ltp pulses, ltd, ltp cross, ltd cross)
        ([0.125, 0.625, -0.375, 0.0], (1, 0, 2, 0)),
        ([0.125, 0.0, -0.25, -1.5], (1, 2, 1, 4)),
        ([0.0, 0.125, 0.0, 0.0], (1, 0, 1, 0)),
        ([0.0, 0.125, 0.0, 0.0], (0, 0, 0, 0)),
    ]
    for deltas, exp in seq:
        s = m.program_delta(torch.tensor([deltas]))
        assert (s.ltp_pulses, s.ltd_pulses, s.ltp_crossings, s.ltd_crossings) == exp
    # weight 0: one LTP pulse in step 2; weight 1: pulses in steps 1 and 3;
    # weight 2: one LTD pulse in step 2; weight 3: one LTD pulse (3 crossings) in step 2
    assert m.accumulator[0].tolist() == [0.0, 0.125, -0.125, 0.0]
    assert m.ltp_pulses[0].tolist() == [1, 2, 0, 0]
    assert m.ltd_pulses[0].tolist() == [0, 0, 1, 1]
    assert m.crossings.tolist() == [4, 4]
    w1 = 0.5 + beta_step(0.5, *DUT2_LTP)
    w_state = [w1, w1 + beta_step(w1, *DUT2_LTP)]
    w_state += [0.5 - beta_step(0.5, *DUT2_LTD)] * 2
    assert m.conductance[0].tolist() == pytest.approx(w_state, rel=1e-6)
    # .weight = (W - 0.5) * 2A with 2A = 1
    assert m.weight[0].tolist() == pytest.approx([w - 0.5 for w in w_state], abs=1e-7)


def test_max_pulses_none_fires_every_crossing():
    m = _hand_layer(max_pulses_per_step=None)
    s = m.program_delta(torch.tensor([[0.75, 0.0, 0.0, 0.0]]))
    assert (s.ltp_pulses, s.ltp_crossings) == (3, 3)
    w = 0.5
    for _ in range(3):
        w = w + beta_step(w, *DUT2_LTP)
    assert m.conductance[0, 0].item() == pytest.approx(w, rel=1e-6)


def test_pulse_optimizer_sgd_counts_and_float_bias():
    m = _hand_layer()
    m.bias = nn.Parameter(torch.zeros(1))
    opt = PulseOptimizer(torch.optim.SGD(m.parameters(), lr=1.0), m)
    m.weight.grad = -torch.tensor([[0.25, 0.125, -0.25, 0.0]])  # delta = -lr * grad
    m.bias.grad = torch.tensor([0.5])
    s = opt.step()
    assert s.ltp_pulses == {"": 1} and s.ltd_pulses == {"": 1}
    assert s.total()["pulses"] == 2 and s.total()["crossings"] == 2
    assert m.bias.item() == -0.5  # periphery stays float
    assert m.weight[0, 1].item() == 0.0  # below threshold: programmed weight unchanged
    assert m.accumulator[0, 1].item() == 0.125
    opt.zero_grad()
    assert m.weight.grad is None


def test_frozen_layers_are_not_programmed():
    model = convert(nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 2)), generator=_gen())
    model[0].weight.requires_grad_(False)
    opt = PulseOptimizer(torch.optim.SGD(model.parameters(), lr=0.5), model)
    before = model[0].conductance.clone()
    model(torch.randn(4, 6, generator=_gen(1))).sum().backward()
    stats = opt.step()
    assert set(stats.ltp_pulses) == {"1"}
    assert torch.equal(model[0].conductance, before)


def _train(model, opt, x, y, steps):
    stats = []
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        stats.append(opt.step())
    return stats


def test_bounds_never_crossed_and_counters_equal_pulses(noisy_card):
    cfg = AnalogConfig(card=noisy_card, programming=ProgrammingConfig(eps=0.01))
    m = AnalogLinear(32, 10, config=cfg, generator=_gen(1))
    x = torch.randn(64, 32, generator=_gen(2))
    y = torch.randint(0, 10, (64,), generator=_gen(3))
    opt = PulseOptimizer(torch.optim.Adam(m.parameters(), lr=0.05), m)
    stats = _train(m, opt, x, y, 60)
    assert m.conductance.min() >= 0.0 and m.conductance.max() <= 1.0
    assert m.weight.abs().max() <= m.w_max
    n_ltp = sum(s.ltp_pulses[""] for s in stats)
    n_ltd = sum(s.ltd_pulses[""] for s in stats)
    assert n_ltp > 100 and n_ltd > 100
    assert int(m.ltp_pulses.sum()) == n_ltp and int(m.ltd_pulses.sum()) == n_ltd
    assert int(m.crossings[0]) == sum(s.ltp_crossings[""] for s in stats)
    # the programmed weight is always the device read-out
    p = m.device_params
    read = (p[6] + p[7] * m.conductance - m.reference) * (2 * m.w_max)
    assert torch.allclose(m.weight, read.clamp(-m.w_max, m.w_max), atol=1e-6)
    # energy = counts x per-event energy (20 ns pulses: 3 pJ each)
    led = energy_ledger(m).set_index(["phase", "kind"])
    assert led.loc[("train", "write_ltp"), "count"] == n_ltp
    assert led.loc[("train", "write_ltp"), "energy_j"] == pytest.approx(n_ltp * 3e-12)
    assert led.loc[("train", "write_ltd"), "energy_j"] == pytest.approx(n_ltd * 3e-12)
    tiles = m.tile_counters()
    assert int(tiles["ltp_pulses"].sum()) == n_ltp
    assert tiles["write_energy_j"].sum() == pytest.approx((n_ltp + n_ltd) * 3e-12)


def test_endurance_failures_stay_stuck():
    cfg = AnalogConfig(
        d2d=False,
        programming=ProgrammingConfig(eps=0.01),
        endurance=EnduranceConfig(enabled=True, lifetime_scale=1e-9),  # median 10 pulses
    )
    m = AnalogLinear(16, 16, bias=False, config=cfg, generator=_gen(4))
    signs = torch.where(torch.rand(16, 16, generator=_gen(5)) > 0.5, 1.0, -1.0)
    failed_seen = 0
    for step in range(60):
        before = m.conductance.clone()
        was_failed = m.failed.clone()
        s = m.program_delta(signs * (0.03 if step % 2 else -0.03) * m.w_max)
        assert torch.equal(m.conductance[was_failed], before[was_failed])
        assert s.failed_devices == int(m.failed.sum())
        failed_seen = s.failed_devices
    total = (m.ltp_pulses + m.ltd_pulses).double()
    assert torch.equal(m.failed, total >= m.lifetime)
    assert 0 < failed_seen < 256
    # wear also shrinks the window of the devices still working
    assert m.conductance.max() <= 1.0 and m.conductance.min() >= 0.0


def _model(seed, card, bias=True):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(12, 16, bias=bias), nn.Tanh(), nn.Linear(16, 3, bias=bias))
    cfg = AnalogConfig(card=card, programming=ProgrammingConfig(eps=0.02))
    return convert(model, cfg, generator=_gen(seed))


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}


def test_state_dict_resume_is_bit_exact(tmp_path, noisy_card):
    x = torch.randn(32, 12, generator=_gen(7))
    y = torch.randint(0, 3, (32,), generator=_gen(8))
    ref = _model(0, noisy_card)
    ref_opt = PulseOptimizer(torch.optim.Adam(ref.parameters(), lr=0.02), ref)
    _train(ref, ref_opt, x, y, 16)

    a = _model(0, noisy_card)
    a_opt = PulseOptimizer(torch.optim.Adam(a.parameters(), lr=0.02), a)
    _train(a, a_opt, x, y, 8)
    torch.save({"model": a.state_dict(), "opt": a_opt.state_dict()}, tmp_path / "ck.pt")
    ck = torch.load(tmp_path / "ck.pt", weights_only=True)
    b = _model(99, noisy_card)  # other seed: everything must come from the checkpoint
    b.load_state_dict(ck["model"])
    b_opt = PulseOptimizer(torch.optim.Adam(b.parameters(), lr=0.02), b)
    b_opt.load_state_dict(ck["opt"])
    _train(b, b_opt, x, y, 8)
    sa, sb = _state(ref), _state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert energy_ledger(ref).equals(energy_ledger(b))


def test_hdf5_resume_is_bit_exact_and_bad_files(tmp_path, noisy_card):
    x = torch.randn(32, 12, generator=_gen(7))
    y = torch.randint(0, 3, (32,), generator=_gen(8))
    ref = _model(0, noisy_card, bias=False)
    _train(ref, PulseOptimizer(torch.optim.SGD(ref.parameters(), lr=0.1), ref), x, y, 12)
    a = _model(0, noisy_card, bias=False)
    _train(a, PulseOptimizer(torch.optim.SGD(a.parameters(), lr=0.1), a), x, y, 6)
    path = save_tiles_hdf5(a, tmp_path / "tiles.h5", attrs={"epoch": 3})
    b = _model(42, noisy_card, bias=False)
    assert load_tiles_hdf5(b, path)["epoch"] == 3
    _train(b, PulseOptimizer(torch.optim.SGD(b.parameters(), lr=0.1), b), x, y, 6)
    sa, sb = _state(ref), _state(b)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k

    bad = tmp_path / "bad.h5"
    bad.write_bytes(path.read_bytes())
    with h5py.File(bad, "a") as f:
        del f["2"]["accumulator"]
    with pytest.raises(InputError, match=r"layer '2': dataset 'accumulator' missing"):
        load_tiles_hdf5(_model(1, noisy_card, bias=False), bad)
    with pytest.raises(InputError, match="Cannot read tile file"):
        load_tiles_hdf5(b, tmp_path / "nope.h5")
    small = nn.Sequential(nn.Linear(12, 8, bias=False), nn.Tanh(), nn.Linear(8, 3, bias=False))
    small = convert(small, AnalogConfig(), generator=_gen())
    with pytest.raises(InputError, match=r"shape \(16, 12\) does not match"):
        load_tiles_hdf5(small, path)


@pytest.mark.cuda
def test_cpu_and_cuda_agree(noisy_card):
    x = torch.randn(32, 12, generator=_gen(7))
    y = torch.randint(0, 3, (32,), generator=_gen(8))
    cpu = _model(0, noisy_card)
    gpu = _model(0, noisy_card).cuda()
    _train(cpu, PulseOptimizer(torch.optim.Adam(cpu.parameters(), lr=0.02), cpu), x, y, 10)
    _train(
        gpu,
        PulseOptimizer(torch.optim.Adam(gpu.parameters(), lr=0.02), gpu),
        x.cuda(),
        y.cuda(),
        10,
    )
    for (k, a), b in zip(_state(cpu).items(), _state(gpu).values(), strict=True):
        if a.is_floating_point():
            assert torch.allclose(a, b.cpu(), atol=1e-5), k
    # pulse counts may differ only where an accumulator sits on a threshold
    assert (cpu[0].pulse_counts - gpu[0].pulse_counts.cpu()).abs().sum() <= 4

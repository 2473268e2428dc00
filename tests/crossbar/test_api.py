"""The aihwkit-like Python API: convert() copies, rpu_config= alias, plain-optimizer warning."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from ferrocim.checks import InputError
from ferrocim.crossbar import (
    AnalogBypassWarning,
    AnalogConfig,
    AnalogConv2d,
    AnalogLinear,
    ProgrammingConfig,
    PulseOptimizer,
    analog_modules,
    convert,
)
from ferrocim.crossbar.guard import is_analog_weight


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _float_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))


def test_convert_returns_a_copy_and_leaves_the_model_alone() -> None:
    model = _float_model()
    before = copy.deepcopy(model.state_dict())
    out = convert(model, AnalogConfig(), generator=_gen())
    assert out is not model
    assert all(type(m) is nn.Linear for m in (model[0], model[2]))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert set(analog_modules(out)) == {"0", "2"}
    assert out[0].bias is not model[0].bias  # the copy owns its float parameters


def test_convert_inplace_and_copy_give_the_same_numbers() -> None:
    copied = convert(_float_model(), AnalogConfig(), generator=_gen(3))
    model = _float_model()
    same = convert(model, AnalogConfig(), inplace=True, generator=_gen(3))
    assert same is model and isinstance(model[0], AnalogLinear)
    for k, v in copied.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, same.state_dict()[k]), k
    # a bare layer: its twin either way
    lin = nn.Linear(3, 2)
    assert isinstance(convert(lin, inplace=True, generator=_gen()), AnalogLinear)
    assert type(lin) is nn.Linear


def test_rpu_config_is_the_aihwkit_spelling_of_config() -> None:
    cfg = AnalogConfig(programming=ProgrammingConfig(eps=0.2))
    out = convert(_float_model(), rpu_config=cfg, generator=_gen())
    assert out[0].analog_config is cfg
    assert AnalogLinear(3, 2, rpu_config=cfg, generator=_gen()).analog_config is cfg
    conv = AnalogConv2d(1, 2, 3, rpu_config=cfg, generator=_gen())
    assert conv.analog_config is cfg
    for make in (
        lambda: convert(_float_model(), cfg, rpu_config=cfg),
        lambda: AnalogLinear(3, 2, config=cfg, rpu_config=cfg),
        lambda: AnalogConv2d(1, 2, 3, config=cfg, rpu_config=cfg),
    ):
        with pytest.raises(InputError, match="config= or as rpu_config="):
            make()


def _step(opt: torch.optim.Optimizer | PulseOptimizer, model: nn.Module) -> None:
    opt.zero_grad()
    model(torch.ones(4, 6)).sum().backward()
    opt.step()


def test_plain_optimizer_on_analog_weights_warns_once_naming_pulse_optimizer() -> None:
    model = convert(_float_model(), generator=_gen())
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        _step(sgd, model)
        _step(sgd, model)
    bypass = [w for w in got if issubclass(w.category, AnalogBypassWarning)]
    assert len(bypass) == 1
    assert "PulseOptimizer" in str(bypass[0].message) and "SGD" in str(bypass[0].message)
    assert bypass[0].filename == __file__  # points at the user's step() call


def test_pulse_optimizer_and_float_models_are_not_warned() -> None:
    model = convert(_float_model(), generator=_gen())
    opt = PulseOptimizer(torch.optim.Adam(model.parameters(), lr=1e-2), model)
    flt = _float_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", AnalogBypassWarning)
        _step(opt, model)
        _step(torch.optim.SGD(flt.parameters(), lr=0.1), flt)


def test_copied_and_moved_layers_stay_watched() -> None:
    model = convert(_float_model(), generator=_gen())
    twin = copy.deepcopy(model).double().float()
    assert is_analog_weight(twin[0].weight) and is_analog_weight(twin[2].weight)
    with pytest.warns(AnalogBypassWarning):
        _step(torch.optim.Adam(twin.parameters()), twin)

"""Training rules on the crossbar for any torch model: pulsed SGD and mixed precision.

Three rules, named as the energy-convergence study names them:

``plain``
    SGD on device with stochastic pulse trains (:class:`PulsedSGD`), reference devices at
    mid-level (``AnalogConfig.reference="mid"``).
``symmetry``
    The same update, reference devices at a symmetry point W* (``reference="symmetry"``;
    the card's W* for all devices, or each device's own with
    ``AnalogConfig.symmetry_reference="device"``), so balanced up/down pulses drift
    towards zero weight.
``mixed``
    Mixed precision: a float accumulator per weight fed by plain SGD and transferred by
    threshold-crossing pulses (:class:`~ferrocim.crossbar.optimizer.PulseOptimizer`), the
    threshold set to the device granularity (:func:`granularity_eps`), every crossing
    fired.

All rules count pulses per device (``AnalogModule.pulse_counts``), per layer and polarity
(:class:`~ferrocim.crossbar.optimizer.StepStats`) and in the layers' energy ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ferrocim.calibration.card import DeviceCard
from ferrocim.calibration.kernel import beta_step
from ferrocim.checks import InputError, check_option, check_range
from ferrocim.crossbar.config import AnalogConfig, ProgrammingConfig
from ferrocim.crossbar.convert import analog_modules
from ferrocim.crossbar.layers import AnalogConv2d
from ferrocim.crossbar.module import AnalogModule
from ferrocim.crossbar.optimizer import PulseOptimizer, StepStats

Tensor = torch.Tensor

RULES: tuple[str, ...] = ("plain", "symmetry", "mixed")


def mean_step(card: DeviceCard, w_ref: float, programming: ProgrammingConfig) -> float:
    """Mean of the LTP and LTD kernel steps at ``w_ref`` (normalised-conductance units),
    with the programming's ``a_scale`` / ``a_asym``."""
    s_ltp = beta_step(w_ref, card.ltp.a * programming.a_scale, card.ltp.alpha, card.ltp.beta)
    a_ltd = card.ltd.a * programming.a_scale * programming.a_asym
    s_ltd = beta_step(w_ref, a_ltd, card.ltd.alpha, card.ltd.beta)
    return 0.5 * (float(s_ltp) + float(s_ltd))


def up_step(card: DeviceCard, w: float, programming: ProgrammingConfig) -> float:
    """The LTP kernel step at ``w`` (normalised-conductance units), with ``a_scale``."""
    return float(beta_step(w, card.ltp.a * programming.a_scale, card.ltp.alpha, card.ltp.beta))


def unit_step(card: DeviceCard, w_ref: float, programming: ProgrammingConfig) -> float:
    """``dw_min`` in units of the window ``2 w_max``, as ``programming.dw_min`` defines it:
    ``"mean_at_reference"`` :func:`mean_step` at ``w_ref`` (the reference level, i.e. zero
    weight); ``"up_at_mid"`` :func:`up_step` at W = 0.5 (aihwkit's PiecewiseStep, whose
    ``dw_min`` is the up step at the middle node of its tables)."""
    if programming.dw_min == "up_at_mid":
        return up_step(card, 0.5, programming)
    return mean_step(card, w_ref, programming)


def dw_min(module: AnalogModule) -> float:
    """Weight change of one nominal pulse (weight units): aihwkit's ``dw_min``,
    ``2 * w_max * reference_scale * unit_step``, where :func:`unit_step` follows
    ``ProgrammingConfig.dw_min`` (default: the mean of the LTP and LTD steps at the
    reference level; ``"up_at_mid"``: the LTP step at W = 0.5).

    The pulse-train rules fire ``lr |x d| / dw_min`` pulses per update, each moving the
    weight by the kernel's actual step, so the effective learning rate is
    ``lr * actual_step / dw_min``: a definition giving a smaller ``dw_min`` fires more
    pulses. At 200 µs of ID170ZR5000 (W* = 0.739) the up step at 0.5 is 0.0809, the mean
    step 0.0611 at 0.5 and 0.0348 at W*: against ``"up_at_mid"``, ``"mean_at_reference"``
    fires 1.3x the pulses with the mid reference and 2.3x with the symmetry reference."""
    cfg = module.analog_config
    step = unit_step(module.card, module.reference_level, cfg.programming)
    return 2.0 * module.w_max * cfg.reference_scale * step


def granularity_eps(
    card: DeviceCard, reference: str = "mid", programming: ProgrammingConfig | None = None
) -> float:
    """The ``ProgrammingConfig.eps`` whose threshold ``eps * 2 * w_max`` equals one nominal
    pulse (:func:`dw_min` with ``reference_scale = 1``; its definition from
    ``programming.dw_min``, amplitudes as published, ``a_scale = a_asym = 1``), for any
    layer."""
    check_option("reference", reference, ("mid", "symmetry"))
    w_ref = card.symmetry_point if reference == "symmetry" else 0.5
    if w_ref is None:
        raise InputError(f"card {card.name!r} has no symmetry point")
    definition = "mean_at_reference" if programming is None else programming.dw_min
    return unit_step(card, w_ref, ProgrammingConfig(dw_min=definition))


def rule_config(rule: str, base: AnalogConfig) -> AnalogConfig:
    """The array configuration a rule trains on: ``base`` with the rule's reference, and for
    ``mixed`` the granularity threshold with every crossing fired."""
    check_option("rule", rule, RULES)
    if rule == "symmetry":
        return base.replace(reference="symmetry")
    if rule == "plain":
        return base.replace(reference="mid")
    card = base.resolved_card()
    prog = ProgrammingConfig(
        **{
            **base.programming.__dict__,
            "eps": granularity_eps(card, base.reference, base.programming),
            "max_pulses_per_step": None,
        }
    )
    return base.replace(programming=prog)


def _rows(module: AnalogModule, x: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """Per-"sample" input and error rows of one call of ``module``: ``(S, fan_in)`` and
    ``(S, out)``. A convolution contributes one row per output position (im2col)."""
    if isinstance(module, AnalogConv2d):
        if module.groups != 1 or isinstance(module.padding, str):
            raise InputError("PulsedSGD supports AnalogConv2d with groups=1, numeric padding")
        if x.dim() == 3:
            x, d = x.unsqueeze(0), d.unsqueeze(0)
        cols = F.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)
        xr = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        dr = d.flatten(2).transpose(1, 2).reshape(-1, d.shape[1])
        return xr, dr
    return x.reshape(-1, x.shape[-1]), d.reshape(-1, d.shape[-1])


def pulse_train_counts(
    x: Tensor,
    d: Tensor,
    lr: float,
    dw: float,
    *,
    bl: int = 31,
    update_management: bool = True,
    bl_management: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Coincidences of stochastic pulse trains realising ``-lr * d^T x``, summed over the
    samples (see :func:`_trains` for the trains); ``(n_ltp, n_ltd)`` float tensors of
    integer counts shaped ``(n_out, n_in)``."""
    t = _trains(x, d, lr, dw, bl, update_management, bl_management, generator)
    n_out, n_in = d.shape[1], x.shape[1]
    if t is None:
        zeros = x.new_zeros(n_out, n_in)
        return zeros, zeros.clone()
    xp, xn, dp, dn = (v.reshape(-1, v.shape[-1]) for v in t)
    return dp.T @ xn + dn.T @ xp, dp.T @ xp + dn.T @ xn


def pulse_train_counts_per_sample(
    x: Tensor,
    d: Tensor,
    lr: float,
    dw: float,
    *,
    bl: int = 31,
    update_management: bool = True,
    bl_management: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """The same trains as :func:`pulse_train_counts` (the same draws from ``generator``),
    counted per sample: ``(n_ltp, n_ltd)`` shaped ``(S', n_out, n_in)`` for the ``S'``
    samples that fire (``BL_s > 0``), in their order. Summed over the first axis they are
    :func:`pulse_train_counts` exactly; per sample a device has one polarity only."""
    t = _trains(x, d, lr, dw, bl, update_management, bl_management, generator)
    n_out, n_in = d.shape[1], x.shape[1]
    if t is None:
        zeros = x.new_zeros(0, n_out, n_in)
        return zeros, zeros.clone()
    xp, xn, dp, dn = t
    dpt, dnt = dp.transpose(1, 2), dn.transpose(1, 2)
    return torch.bmm(dpt, xn) + torch.bmm(dnt, xp), torch.bmm(dpt, xp) + torch.bmm(dnt, xn)


def _trains(
    x: Tensor,
    d: Tensor,
    lr: float,
    dw: float,
    bl: int,
    update_management: bool,
    bl_management: bool,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor] | None:
    """Stochastic pulse trains realising ``-lr * d^T x`` (aihwkit style).

    ``x`` (S, n_in) and ``d`` (S, n_out) hold one row per sample; each sample's update
    ``-lr * d_s ⊗ x_s`` is realised on its own, as aihwkit's ``PulsedUpdate`` does inside a
    mini-batch. For sample ``s`` with ``mx = max|x_s|``, ``md = max|d_s|``:

    - pulse-train length ``BL_s = min(bl, ceil(lr * mx * md / dw))`` with ``bl_management``
      (else ``bl``); a sample with ``BL_s = 0`` fires nothing;
    - row ``i`` fires in each of the ``BL_s`` slots with probability
      ``p_x = min(1, C_x |x_si|)`` and column ``j`` with ``p_d = min(1, C_d |d_sj|)``, where
      ``C_x C_d = lr / (dw * BL_s)`` and, with ``update_management``,
      ``C_x = sqrt(lr md / (dw BL_s mx))``, ``C_d = sqrt(lr mx / (dw BL_s md))`` (both
      trains reach the same largest probability; else ``C_x = C_d``);
    - every slot in which row ``i`` and column ``j`` both fire is one kernel pulse on
      device ``(j, i)``, LTP when ``sign(x_si) * sign(d_sj) < 0`` (the update is positive),
      LTD otherwise.

    The expected weight change is then ``-lr * d_sj * x_si`` when every pulse moves the
    weight by ``dw`` (probabilities below 1). Returns the signed trains of the samples
    that fire, ``(x_pos, x_neg, d_pos, d_neg)`` 0/1 tensors shaped ``(S', T, n_in)`` and
    ``(S', T, n_out)``, or None when no sample fires; draws come from ``generator`` (on its
    device), ``S' * max BL_s * (n_in + n_out)`` uniforms per call.
    """
    if x.shape[0] != d.shape[0]:
        raise InputError(f"x and d need the same number of rows, got {x.shape[0]}, {d.shape[0]}")
    n_out, n_in = d.shape[1], x.shape[1]
    ax, ad = x.abs(), d.abs()
    mx, md = ax.amax(1), ad.amax(1)
    prod = lr * mx * md / dw
    if bl_management:
        bls = torch.ceil(prod).clamp(max=bl)
    else:
        bls = torch.where(prod > 0, torch.full_like(prod, bl), torch.zeros_like(prod))
    keep = bls > 0
    if not bool(keep.any()):
        return None
    ax, ad, mx, md, bls = ax[keep], ad[keep], mx[keep], md[keep], bls[keep]
    xs, ds = torch.sign(x[keep]), torch.sign(d[keep])
    c = lr / (dw * bls)
    if update_management:
        cx, cd = torch.sqrt(c * md / mx), torch.sqrt(c * mx / md)
    else:
        cx = cd = torch.sqrt(c)
    px = (cx.unsqueeze(1) * ax).clamp_(max=1.0)
    pd = (cd.unsqueeze(1) * ad).clamp_(max=1.0)
    s, t = px.shape[0], int(bls.max().item())
    gdev = generator.device if generator is not None else torch.device("cpu")
    ux = torch.rand((s, t, n_in), generator=generator, device=gdev, dtype=x.dtype).to(x.device)
    ud = torch.rand((s, t, n_out), generator=generator, device=gdev, dtype=x.dtype).to(x.device)
    slot = (torch.arange(t, device=x.device).unsqueeze(0) < bls.unsqueeze(1)).unsqueeze(2)
    bx = ((ux < px.unsqueeze(1)) & slot).to(x.dtype)  # (S, T, n_in)
    bd = ((ud < pd.unsqueeze(1)) & slot).to(x.dtype)  # (S, T, n_out)
    xp = bx * (xs > 0).unsqueeze(1)
    xn = bx * (xs < 0).unsqueeze(1)
    dp = bd * (ds > 0).unsqueeze(1)
    dn = bd * (ds < 0).unsqueeze(1)
    return xp, xn, dp, dn


class _IOCapture:
    """Forward hooks that keep each analog layer's inputs and output gradients (training
    mode with autograd only) until :meth:`take`."""

    def __init__(self, layers: dict[str, AnalogModule]) -> None:
        self.inputs: dict[str, list[Tensor]] = {n: [] for n in layers}
        self.grads: dict[str, list[Tensor | None]] = {n: [] for n in layers}
        self.handles = [m.register_forward_hook(self._hook(n)) for n, m in layers.items()]

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> None:
            if not (module.training and torch.is_grad_enabled() and out.requires_grad):
                return
            k = len(self.inputs[name])
            self.inputs[name].append(args[0].detach())
            self.grads[name].append(None)

            def keep(g: Tensor) -> None:
                self.grads[name][k] = g.detach()

            out.register_hook(keep)

        return hook

    def take(self, name: str) -> list[tuple[Tensor, Tensor]]:
        """(input, output gradient) of every call since the last take, then forget them."""
        pairs = [
            (x, g)
            for x, g in zip(self.inputs[name], self.grads[name], strict=True)
            if g is not None
        ]
        self.inputs[name], self.grads[name] = [], []
        return pairs

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class PulsedSGD:
    """SGD on device by stochastic pulse trains (:func:`pulse_train_counts`) for every
    analog layer of ``model``; float parameters (biases, ...) take plain SGD with ``lr``.

    Call order per step, as for a torch optimizer: forward, ``loss.backward()``,
    :meth:`step`, :meth:`zero_grad`. The rows of each layer (inputs and output gradients)
    are captured by hooks during forward/backward; the analog weights' own ``.grad`` is
    not used. The order of a step's pulses on a device follows each layer's
    ``programming.pulse_order``: ``"grouped"`` (default) all its LTP pulses of the
    mini-batch, then all LTD ones, which polarity first alternating from step to step;
    ``"per_sample"`` aihwkit's order, sample after sample
    (:meth:`AnalogModule.program_pulses_per_sample`). Both use the same trains from
    ``generator`` (cycle-to-cycle noise comes from the layers' generators).
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float,
        *,
        bl: int = 31,
        update_management: bool = True,
        bl_management: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        check_range("PulsedSGD.lr", lr, 0.0, low_inclusive=False)
        if isinstance(bl, bool) or not isinstance(bl, int) or bl < 1:
            raise InputError(f"'PulsedSGD.bl' must be an integer >= 1, got {bl!r}")
        self.model = model
        self.lr = float(lr)
        self.bl = bl
        self.update_management = update_management
        self.bl_management = bl_management
        self.generator = torch.Generator().manual_seed(0) if generator is None else generator
        self.layers = analog_modules(model)
        if not self.layers:
            raise InputError("PulsedSGD: the model has no analog layers (convert it first)")
        analog_ids = {id(m.weight) for m in self.layers.values()}
        floats = [p for p in model.parameters() if p.requires_grad and id(p) not in analog_ids]
        self.inner = torch.optim.SGD(floats, lr=lr) if floats else None
        self.steps = 0
        self._capture = _IOCapture(self.layers)

    @torch.no_grad()
    def step(self) -> StepStats:
        """Fire the pulse trains of the captured rows; SGD on the float parameters."""
        if self.inner is not None:
            self.inner.step()
        stats = StepStats()
        ltd_first = self.steps % 2 == 1
        for name, m in self.layers.items():
            pairs = self._capture.take(name)
            if not pairs:
                continue
            rows = [_rows(m, x, g) for x, g in pairs]
            x = torch.cat([r[0] for r in rows]).to(m.weight.dtype)
            d = torch.cat([r[1] for r in rows]).to(m.weight.dtype)
            kw = {
                "bl": self.bl,
                "update_management": self.update_management,
                "bl_management": self.bl_management,
                "generator": self.generator,
            }
            if m.analog_config.programming.pulse_order == "per_sample":
                n_ltp, n_ltd = pulse_train_counts_per_sample(x, d, self.lr, dw_min(m), **kw)
                shape = (n_ltp.shape[0], *m.weight.shape)
                s = m.program_pulses_per_sample(n_ltp.view(shape), n_ltd.view(shape))
            else:
                n_ltp, n_ltd = pulse_train_counts(x, d, self.lr, dw_min(m), **kw)
                s = m.program_pulses(
                    n_ltp.view_as(m.weight), n_ltd.view_as(m.weight), ltd_first=ltd_first
                )
            stats.ltp_pulses[name] = s.ltp_pulses
            stats.ltd_pulses[name] = s.ltd_pulses
            stats.ltp_crossings[name] = 0
            stats.ltd_crossings[name] = 0
            stats.failed_devices[name] = s.failed_devices
        self.steps += 1
        return stats

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all of the model's parameters."""
        self.model.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """Step counter, pulse-train generator state and the float SGD's state."""
        return {
            "steps": self.steps,
            "generator": self.generator.get_state(),
            "inner": None if self.inner is None else self.inner.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.generator.set_state(state["generator"])
        if self.inner is not None and state.get("inner") is not None:
            self.inner.load_state_dict(state["inner"])

    def close(self) -> None:
        """Remove the hooks from the model."""
        self._capture.remove()


def make_rule(
    rule: str,
    model: nn.Module,
    lr: float,
    *,
    bl: int = 31,
    generator: torch.Generator | None = None,
) -> PulsedSGD | PulseOptimizer:
    """The optimiser of ``rule`` for a model already converted with :func:`rule_config`:
    :class:`PulsedSGD` for ``plain`` / ``symmetry``, ``PulseOptimizer(SGD)`` for ``mixed``."""
    check_option("rule", rule, RULES)
    layers = analog_modules(model)
    want = "symmetry" if rule == "symmetry" else "mid"
    wrong = [n for n, m in layers.items() if m.analog_config.reference != want]
    if wrong:
        raise InputError(
            f"rule {rule!r} needs reference={want!r}, but layers {wrong} use another; "
            "convert the model with rule_config(rule, ...)"
        )
    if rule == "mixed":
        return PulseOptimizer(torch.optim.SGD(model.parameters(), lr=lr), model)
    return PulsedSGD(model, lr, bl=bl, generator=generator)


def expected_pulses(lr: float, x: Tensor, d: Tensor, dw: float) -> float:
    """Expected coincidences of :func:`pulse_train_counts` when no probability clips:
    ``sum |lr * d^T x| / dw`` (hand check for tests and docs)."""
    return float((lr * (d.abs().T @ x.abs())).sum() / dw)


__all__ = [
    "RULES",
    "PulsedSGD",
    "dw_min",
    "expected_pulses",
    "granularity_eps",
    "make_rule",
    "mean_step",
    "pulse_train_counts",
    "pulse_train_counts_per_sample",
    "rule_config",
    "unit_step",
    "up_step",
]

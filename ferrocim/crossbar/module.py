"""AnalogModule: the tile state of one layer and the operations on it.

One state tensor per layer (shaped like the weight) holds the normalised conductance ``W``
of the active devices; the tiles are an index mapping over it (:class:`TileLayout`). All
state lives in registered buffers, so ``state_dict`` / ``load_state_dict`` resume a run
exactly; event counts and the generator state travel as the module's extra state.

Buffers (shape of the weight unless noted):

- ``conductance``: normalised conductance W of the active devices, in [0, 1] ([0.01, 0.99]
  with ``programming.state_clamp``);
- ``reference``: normalised conductance of the reference devices (0.5, the card's W*, or
  each device's own W* with ``symmetry_reference="device"``);
- ``device_params``: (8, *weight) per-device kernel and window (see ``device.PARAM_ROWS``);
- ``accumulator``: accumulated float update not yet written (weight units);
- ``pulse_counts``: (2, *weight) pulses fired per device, LTP then LTD (int64); the
  properties ``ltp_pulses`` / ``ltd_pulses`` are views of its rows;
- ``crossings``: (2,) threshold crossings of the layer, LTP and LTD (int64);
- ``lifetime``: pulses each device survives (float64, inf when endurance is off);
- ``failed``: devices stuck after wear-out (bool).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from ferrocim.calibration.kernel import symmetry_point
from ferrocim.checks import InputError
from ferrocim.crossbar import functional as Fx
from ferrocim.crossbar.config import AnalogConfig
from ferrocim.crossbar.device import ROW, draw_device_params
from ferrocim.crossbar.energy import KINDS, PHASES, per_event_energy
from ferrocim.crossbar.guard import mark_analog_weight
from ferrocim.crossbar.layout import TileLayout

Tensor = torch.Tensor


@dataclass(frozen=True)
class LayerStepStats:
    """What one programming step did to one layer (python ints)."""

    ltp_pulses: int
    ltd_pulses: int
    ltp_crossings: int
    ltd_crossings: int
    failed_devices: int


#: Candidates for a crossing are visited when |acc| >= thr * _TOL (a superset, exact rule
#: applied on it).
_TOL = 1.0 - 1e-6


@dataclass(frozen=True)
class _Constants:
    thr_ltp: Tensor
    thr_ltd: Tensor
    cand_ltp: Tensor
    cand_ltd: Tensor
    params: tuple[Tensor, ...]
    reference: Tensor
    low: Tensor
    high: Tensor


def default_generator() -> torch.Generator:
    """A CPU generator seeded from torch's global RNG (so ``torch.manual_seed`` fixes it)."""
    seed = int(torch.randint(0, 2**62, (1,)).item())
    return torch.Generator().manual_seed(seed)


def _empty_counts() -> dict[str, dict[str, int]]:
    return {phase: dict.fromkeys(KINDS, 0) for phase in PHASES}


class AnalogModule(nn.Module):
    """Common base of analog layers: tile state, weight transfer, pulse programming.

    Subclasses create ``self.weight`` (an ``nn.Parameter``) and call :meth:`_init_analog`.
    ``self.weight`` always equals the weight programmed on the devices.
    """

    weight: nn.Parameter
    conductance: Tensor
    reference: Tensor
    device_params: Tensor
    accumulator: Tensor
    pulse_counts: Tensor
    crossings: Tensor
    lifetime: Tensor
    failed: Tensor

    # ---- construction ----
    def _init_analog(
        self,
        weight_shape: tuple[int, ...],
        config: AnalogConfig | None,
        generator: torch.Generator | None,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
        w_max: float | None = None,
    ) -> None:
        config = AnalogConfig() if config is None else config
        if not isinstance(config, AnalogConfig):
            raise InputError(f"'config' must be an AnalogConfig, got {type(config).__name__}")
        self.analog_config = config
        self.card = config.programmed_card()
        self.layout = TileLayout(tuple(weight_shape), config.tile_rows, config.tile_cols)
        if w_max is not None and not (math.isfinite(float(w_max)) and float(w_max) > 0):
            raise InputError(f"'w_max' must be a number > 0, got {w_max!r}")
        self.generator = default_generator() if generator is None else generator
        dtype = torch.get_default_dtype() if dtype is None else dtype
        fk = {"device": device, "dtype": dtype}
        n = math.prod(weight_shape)

        # float init as torch's default (U(±1/sqrt(fan_in))), from the explicit generator;
        # the weight bound A (``w_max``, not the kernel amplitude a_ltp/a_ltd) per
        # ``config.weight_window``
        gdev = self.generator.device
        w0 = torch.rand(weight_shape, generator=self.generator, device=gdev, dtype=dtype) * 2 - 1
        fan_bound = 1.0 / math.sqrt(self.layout.fan_in)
        if config.weight_window == "layer":
            self.w_max = fan_bound if w_max is None else float(w_max)
            w0 = w0 * self.w_max
        elif config.weight_window == "fixed":
            self.w_max = float(config.weight_bound)
            w0 = (w0 * fan_bound).clamp_(-self.w_max, self.w_max)
        else:  # "scaled": aihwkit's weight scaling, max |w_init| at omega of the window
            w0 = w0 * fan_bound
            self.w_max = max(float(w0.abs().max()), 1e-12) / config.weight_omega
        w0 = w0.to(device)

        prog = config.programming
        params = draw_device_params(
            self.card, n, d2d=config.d2d, generator=self.generator, dtype=dtype, device=device
        )
        if config.reference == "symmetry":
            w_ref: float | None = self.card.symmetry_point
            if config.symmetry_reference == "device" and prog.a_asym != 1.0:
                w_ref = symmetry_point(
                    self.card.ltp.as_tuple(),
                    (self.card.ltd.a * prog.a_asym, self.card.ltd.alpha, self.card.ltd.beta),
                )
            if w_ref is None or not math.isfinite(w_ref):
                raise InputError(
                    f"AnalogConfig.reference='symmetry' needs a symmetry point, but card "
                    f"{self.card.name!r} has none (LTP and LTD steps never equal)"
                )
        else:
            w_ref = 0.5
        self.reference_level = float(w_ref)
        ref0 = torch.full(weight_shape, float(w_ref), **fk)
        if (
            config.reference == "symmetry"
            and config.symmetry_reference == "device"
            and not bool((params == params[:, :1]).all())
        ):
            # each device's own W*, as the conductance its reference device is set to
            eff = Fx.scale_amplitudes(params[:6].double(), 1.0, prog.a_asym)
            w_star = Fx.device_symmetry_points(torch.stack(tuple(eff)), float(w_ref))
            g_ref = params[ROW["g_offset"]].double() + params[ROW["g_gain"]].double() * w_star
            ref0 = g_ref.to(**fk).reshape(weight_shape)
        var = self.card.variability
        self.rsd_ltp = var.rsd_c2c_ltp if prog.rsd_c2c is None else prog.rsd_c2c
        self.rsd_ltd = var.rsd_c2c_ltd if prog.rsd_c2c is None else prog.rsd_c2c
        self.read_noise = config.tile_read_noise(self.card)
        self.thr_ltp, self.thr_ltd = Fx.thresholds(self.w_max, prog.eps, prog.thr_asym)

        self.weight = nn.Parameter(torch.empty(weight_shape, **fk))
        mark_analog_weight(self.weight)  # a plain torch optimizer step on it is warned about
        self.register_buffer("conductance", torch.empty(weight_shape, **fk))
        self.register_buffer("reference", ref0)
        self.register_buffer("device_params", params.reshape(len(ROW), *weight_shape))
        self.register_buffer("accumulator", torch.zeros(weight_shape, **fk))
        self.register_buffer(
            "pulse_counts", torch.zeros(2, *weight_shape, dtype=torch.int64, device=device)
        )
        self.register_buffer("crossings", torch.zeros(2, dtype=torch.int64, device=device))
        end = config.endurance
        if end.enabled:
            life = Fx.draw_lifetimes(
                tuple(weight_shape),
                self.card.endurance.cycles_median,
                self.card.endurance.cycles_log10_sd,
                lifetime_scale=end.lifetime_scale,
                generator=self.generator,
            ).to(device)
        else:
            life = torch.full(weight_shape, math.inf, dtype=torch.float64, device=device)
        self.register_buffer("lifetime", life)
        self.register_buffer("failed", torch.zeros(weight_shape, dtype=torch.bool, device=device))
        self.event_counts: dict[str, dict[str, int]] = _empty_counts()
        self._refresh_flags()
        self.set_weights(w0)

    # ---- weights ----
    @property
    def phase(self) -> str:
        """Energy-ledger phase: "train" in training mode, "inference" otherwise."""
        return "train" if self.training else "inference"

    def _window_kwargs(self, index: Tensor | None = None) -> dict[str, Any]:
        p = self.device_params.flatten(1)
        if self._nominal_window:
            return {"g_offset": 0.0, "g_gain": 1.0, "scale": self.analog_config.reference_scale}
        off, gain = p[ROW["g_offset"]], p[ROW["g_gain"]]
        if index is not None:
            off, gain = off[index], gain[index]
        else:
            off, gain = off.view_as(self.weight), gain.view_as(self.weight)
        return {"g_offset": off, "g_gain": gain, "scale": self.analog_config.reference_scale}

    def _read_weights(self) -> Tensor:
        return Fx.conductance_to_weight(
            self.conductance,
            self.reference,
            self.w_max,
            clip=self.analog_config.clips_weights,
            **self._window_kwargs(),
        )

    def get_weights(self) -> Tensor:
        """The weight programmed on the devices (a detached copy)."""
        return self.weight.detach().clone()

    @torch.no_grad()
    def set_weights(
        self,
        w: Tensor,
        *,
        q: int | None = None,
        x: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        """Program a float weight onto the devices (transfer for re-tuning).

        ``w`` is clipped to ±w_max, optionally quantised to ``q + 1`` levels
        (:func:`quantize_symmetric`), optionally given programming noise of s.d.
        ``mean(|w| non-zero) / x`` (:func:`programming_noise`, drawn from ``generator`` or
        the layer's), then mapped to conductances clipped to [0, 1] ([0.01, 0.99] with
        ``programming.state_clamp``). Failed devices
        keep their state. Accumulators are cleared. Pulse counters are not touched
        (transfer is write-verify programming, outside the pulse model).
        """
        w = torch.as_tensor(w)
        if tuple(w.shape) != tuple(self.weight.shape):
            raise InputError(
                f"set_weights: expected a weight of shape {tuple(self.weight.shape)}, "
                f"got {tuple(w.shape)}"
            )
        w = w.to(device=self.weight.device, dtype=self.weight.dtype).clamp(-self.w_max, self.w_max)
        if q is not None:
            w = Fx.quantize_symmetric(w, self.w_max, q)
        if x is not None:
            gen = self.generator if generator is None else generator
            w = Fx.programming_noise(w, self.w_max, x, generator=gen)
        self._write(w)
        self.accumulator.zero_()

    def _write(self, w: Tensor) -> None:
        """Map weights ``w`` onto the devices (failed ones keep their state) and read back."""
        target = Fx.weight_to_conductance(
            w,
            self.reference,
            self.w_max,
            state_clamp=self.analog_config.programming.state_clamp,
            **self._window_kwargs(),
        )
        self.conductance.copy_(torch.where(self.failed, self.conductance, target))
        self.weight.data.copy_(self._read_weights())

    @torch.no_grad()
    def requantize(self, q: int) -> None:
        """Round the programmed weights to ``q + 1`` levels (:func:`quantize_symmetric`)
        and write them back, keeping the accumulators: the published per-step
        re-quantisation of on-device training with ``q > 0``."""
        self._write(Fx.quantize_symmetric(self.weight.detach(), self.w_max, q))

    # ---- programming ----
    @torch.no_grad()
    def program_delta(self, delta: Tensor) -> LayerStepStats:
        """Accumulate a float weight change and fire pulses by the threshold rule.

        ``delta`` (weight units, shape of the weight) is added to the accumulator; crossings
        ``floor(acc / thr)`` are counted, at most ``max_pulses_per_step`` pulses fire per
        device, the accumulator is debited by all crossings, the fired devices move by the
        kernel step (with cycle-to-cycle noise, per-device parameters, clipped to their
        bounds; failed devices stay stuck) and ``.weight`` is rewritten from the devices.

        With ``programming.transfer = "pulse_train"`` the decided pulses are fired as
        aihwkit's MixedPrecisionCompound fires them, a stochastic pulse train per row
        (:meth:`_pulse_train_transfer`); the accumulator is debited the same way.

        Only devices whose accumulator is within a relative 1e-6 of a threshold are
        visited (:func:`functional.pulse_decision` on that subset); the others have no
        crossing, and their accumulator is unchanged, exactly as the rule on the whole layer.
        """
        acc = self.accumulator
        flat = acc.view(-1)
        flat.add_(delta.reshape(-1))
        fbuf, bbuf = self._scratch(flat)
        k = self._constants(flat)
        if self.thr_ltp == self.thr_ltd:
            bbuf.copy_(torch.abs(flat, out=fbuf).ge_(k.cand_ltp))
        else:
            torch.ge(flat, k.cand_ltp, out=fbuf)
            bbuf.copy_(fbuf.add_(torch.le(flat, k.cand_ltd).to(fbuf.dtype)))
        idx = torch.nonzero(bbuf).view(-1)
        if idx.numel() == 0:
            return LayerStepStats(0, 0, 0, 0, self._n_failed())
        max_pulses = self.analog_config.programming.max_pulses_per_step
        n_ltp, n_ltd, f_ltp, f_ltd, new_acc = Fx.pulse_decision(
            flat.index_select(0, idx), k.thr_ltp, k.thr_ltd, max_pulses
        )
        flat.scatter_(0, idx, new_acc)
        exact = self.analog_config.programming.transfer == "exact"
        if not exact:
            f_ltp, f_ltd = self._pulse_train_transfer(idx, f_ltp, f_ltd)
            max_pulses = None
        counts = torch.stack((n_ltp, n_ltd, f_ltp, f_ltd)).to(torch.int64)
        sums = counts.sum(1)
        self.crossings.add_(sums[:2])
        c_ltp, c_ltd, p_ltp, p_ltd = sums.tolist()
        if p_ltp or p_ltd:
            all_fire = exact and max_pulses == 1 and p_ltp + p_ltd == idx.numel()
            self._fire(idx, f_ltp, f_ltd, counts[2:], max_pulses, all_fire)
            ev = self.event_counts[self.phase]
            ev["write_ltp"] += p_ltp
            ev["write_ltd"] += p_ltd
        return LayerStepStats(p_ltp, p_ltd, c_ltp, c_ltd, self._n_failed())

    def _pulse_train_transfer(
        self, idx: Tensor, f_ltp: Tensor, f_ltd: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The pulses aihwkit's MixedPrecisionCompound actually fires for the decided counts
        ``f_ltp``/``f_ltd`` of the devices at flat indices ``idx`` (``transfer =
        "pulse_train"``): per row (output) ``r`` with ``N_r`` the largest count,
        ``BL_r = min(transfer_bl, N_r)`` and each device's pulses
        ``Binomial(BL_r, min(1, n / sqrt(BL_r N_r)))`` from the layer's generator; the
        polarity is kept."""
        n = f_ltp + f_ltd  # one of the two is zero per device
        per_row = self.weight.numel() // self.weight.shape[0]
        rows = torch.div(idx, per_row, rounding_mode="floor")
        big_n = torch.zeros(self.weight.shape[0], dtype=n.dtype, device=n.device)
        big_n.scatter_reduce_(0, rows, n, reduce="amax", include_self=True)
        n_row = big_n.index_select(0, rows)
        bl = n_row.clamp(max=float(self.analog_config.programming.transfer_bl))
        p = (n / torch.sqrt(bl * n_row).clamp(min=1.0)).clamp(max=1.0)
        gen = self.generator
        drawn = torch.binomial(
            bl.to(gen.device, torch.float64), p.to(gen.device, torch.float64), generator=gen
        ).to(n.device, n.dtype)
        return torch.where(f_ltp > 0, drawn, 0.0), torch.where(f_ltd > 0, drawn, 0.0)

    @torch.no_grad()
    def program_pulses(
        self, n_ltp: Tensor, n_ltd: Tensor, *, ltd_first: bool = False
    ) -> LayerStepStats:
        """Fire given numbers of pulses per device (the stochastic pulse-train rules).

        ``n_ltp`` / ``n_ltd`` are integer-valued tensors shaped like the weight. A device
        given both polarities fires all its pulses of one polarity, then all of the other
        (LTP first unless ``ltd_first``), each pulse with the kernel at its current ``W``,
        cycle-to-cycle noise and bounds as in :meth:`program_delta`. Pulses go into the same
        per-device counters and energy ledger; no threshold crossings are recorded and the
        accumulator is not touched.
        """
        fired = [0, 0]
        order = (1, 0) if ltd_first else (0, 1)
        for pol in order:
            n = (n_ltp if pol == 0 else n_ltd).reshape(-1)
            idx = torch.nonzero(n).view(-1)
            if idx.numel() == 0:
                continue
            f = n.index_select(0, idx).to(self.conductance.dtype)
            zero = torch.zeros_like(f)
            fl, fd = (f, zero) if pol == 0 else (zero, f)
            counts = torch.stack((fl, fd)).to(torch.int64)
            self._fire(idx, fl, fd, counts, int(f.max().item()), True)
            fired[pol] = int(counts[pol].sum().item())
        ev = self.event_counts[self.phase]
        ev["write_ltp"] += fired[0]
        ev["write_ltd"] += fired[1]
        return LayerStepStats(fired[0], fired[1], 0, 0, self._n_failed())

    @torch.no_grad()
    def program_pulses_per_sample(self, n_ltp: Tensor, n_ltd: Tensor) -> LayerStepStats:
        """Fire pulses sample by sample (aihwkit's order, ``pulse_order="per_sample"``).

        ``n_ltp`` / ``n_ltd`` are integer-valued tensors shaped ``(S, *weight)``: the pulses
        of each of S samples, in order. Sample ``s`` is applied completely (each pulse with
        the kernel at the device's current ``W``, cycle-to-cycle noise and bounds as in
        :meth:`program_pulses`) before sample ``s + 1``. Within one sample a device may get
        pulses of one polarity only (a coincidence's sign is ``sign(x) * sign(d)``, fixed
        for the sample), so this is aihwkit's slot-by-slot order exactly; a device given
        both polarities in one sample is an error. Counters and ledger as
        :meth:`program_pulses`.
        """
        shape = tuple(self.weight.shape)
        if tuple(n_ltp.shape[1:]) != shape or n_ltp.shape != n_ltd.shape:
            raise InputError(
                f"program_pulses_per_sample: expected (S, {shape}) counts, got "
                f"{tuple(n_ltp.shape)} and {tuple(n_ltd.shape)}"
            )
        n_dev = self.weight.numel()  # not -1: S = 0 (no sample fires) must work too
        fl_all = n_ltp.reshape(n_ltp.shape[0], n_dev).to(self.conductance.dtype)
        fd_all = n_ltd.reshape(n_ltd.shape[0], n_dev).to(self.conductance.dtype)
        if bool(((fl_all > 0) & (fd_all > 0)).any()):
            raise InputError(
                "program_pulses_per_sample: a device has LTP and LTD pulses in one sample"
            )
        fired = [0, 0]
        for fl_s, fd_s in zip(fl_all, fd_all, strict=True):
            tot = fl_s + fd_s
            idx = torch.nonzero(tot).view(-1)
            if idx.numel() == 0:
                continue
            fl, fd = fl_s.index_select(0, idx), fd_s.index_select(0, idx)
            counts = torch.stack((fl, fd)).to(torch.int64)
            self._fire(idx, fl, fd, counts, int(tot.max().item()), True)
            c = counts.sum(1).tolist()
            fired[0] += c[0]
            fired[1] += c[1]
        ev = self.event_counts[self.phase]
        ev["write_ltp"] += fired[0]
        ev["write_ltd"] += fired[1]
        return LayerStepStats(fired[0], fired[1], 0, 0, self._n_failed())

    def _n_failed(self) -> int:
        return int(self.failed.sum().item()) if self._endurance_on else 0

    def _scratch(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """Reusable float and bool work tensors shaped like ``like`` (not state)."""
        buf = self.__dict__.get("_scratch_bufs")
        if (
            buf is None
            or buf[0].shape != like.shape
            or buf[0].device != like.device
            or (buf[0].dtype != like.dtype)
        ):
            buf = (torch.empty_like(like), torch.empty_like(like, dtype=torch.bool))
            self.__dict__["_scratch_bufs"] = buf
        return buf

    def _fire(
        self,
        idx: Tensor,
        fl: Tensor,
        fd: Tensor,
        fired: Tensor,
        max_pulses: int | None,
        all_fire: bool,
    ) -> None:
        """Apply ``fl``/``fd`` pulses to the devices at flat indices ``idx`` (``fired`` is
        the same as a (2, k) int64 tensor); update counters; rewrite their weights."""
        prog = self.analog_config.programming
        end = self.analog_config.endurance
        w_flat = self.conductance.view(-1)
        w_sub = w_flat.index_select(0, idx)
        k = self._constants(w_flat)
        if self._uniform_params:  # amplitudes already scaled in the constants
            params: Tensor | tuple[Tensor, ...] = k.params
        else:
            params = Fx.scale_amplitudes(
                self.device_params.flatten(1).index_select(1, idx), prog.a_scale, prog.a_asym
            )
        if self._uniform_reference:
            ref_sub: Tensor | float = k.reference
        else:
            ref_sub = self.reference.view(-1).index_select(0, idx)
        win = self._window_kwargs(idx)
        counters = self.pulse_counts.view(2, -1)
        stuck = None
        window: Tensor | float = 1.0
        if end.enabled:
            stuck = self.failed.view(-1).index_select(0, idx)
            if end.window_loss and self.card.endurance.window_loss_per_decade > 0:
                cycles = counters.index_select(1, idx).sum(0)
                window = Fx.window_factor(
                    cycles, self.card.endurance.window_loss_per_decade, end.lifetime_scale
                ).to(w_sub.dtype)
        if stuck is None and self._uniform_reference and self._nominal_window:
            low, high = k.low, k.high
        else:
            low, high = Fx.state_bounds(
                ref_sub,
                g_offset=win["g_offset"],
                g_gain=win["g_gain"],
                scale=win["scale"],
                window=window,
                state_clamp=prog.state_clamp,
                weight_clip=self.analog_config.clips_weights,
            )
        new = Fx.apply_pulses(
            w_sub,
            fl,
            fd,
            params,
            rsd_ltp=self.rsd_ltp,
            rsd_ltd=self.rsd_ltd,
            low=low,
            high=high,
            stuck=stuck,
            generator=self.generator,
            max_rounds=max_pulses,
            all_fire=all_fire,
        )
        w_flat.scatter_(0, idx, new)
        counters[0].index_add_(0, idx, fired[0])
        counters[1].index_add_(0, idx, fired[1])
        if end.enabled:
            total = counters.index_select(1, idx).sum(0)
            dead = total.to(torch.float64) >= self.lifetime.view(-1).index_select(0, idx)
            self.failed.view(-1).scatter_(0, idx, stuck | dead)
        self.weight.data.view(-1).scatter_(
            0,
            idx,
            Fx.conductance_to_weight(
                new, ref_sub, self.w_max, clip=self.analog_config.clips_weights, **win
            ),
        )

    @property
    def ltp_pulses(self) -> Tensor:
        """LTP pulses fired per device (int64, shape of the weight; a view)."""
        return self.pulse_counts[0]

    @property
    def ltd_pulses(self) -> Tensor:
        """LTD pulses fired per device (int64, shape of the weight; a view)."""
        return self.pulse_counts[1]

    def _constants(self, like: Tensor) -> _Constants:
        """0-dim tensors of the hot path in ``like``'s dtype and device (python scalars in
        tensor ops cost a conversion each)."""
        key = (like.dtype, like.device)
        cached = self.__dict__.get("_const_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        prog = self.analog_config.programming

        def t(v: float) -> Tensor:
            return torch.tensor(v, dtype=like.dtype, device=like.device)

        p = Fx.scale_amplitudes(self._param_values, prog.a_scale, prog.a_asym)
        low, high = Fx.state_bounds(
            self.reference_level,
            scale=self.analog_config.reference_scale,
            state_clamp=prog.state_clamp,
            weight_clip=self.analog_config.clips_weights,
        )
        consts = _Constants(
            thr_ltp=t(self.thr_ltp),
            thr_ltd=t(self.thr_ltd),
            cand_ltp=t(self.thr_ltp * _TOL),
            cand_ltd=t(-self.thr_ltd * _TOL),
            params=tuple(t(v) for v in p[:6]),
            reference=t(self.reference_level),
            low=t(float(low)),
            high=t(float(high)),
        )
        self.__dict__["_const_cache"] = (key, consts)
        return consts

    def _refresh_flags(self) -> None:
        """Note which per-device tensors are uniform, so the hot path can use scalars."""
        p = self.device_params.flatten(1)
        first = p[:, :1]
        self._uniform_params = bool((p == first).all())
        self._param_values = tuple(float(v) for v in first[:, 0].tolist())
        self._nominal_window = bool(
            (p[ROW["g_offset"]] == 0).all() and (p[ROW["g_gain"]] == 1).all()
        )
        self._uniform_reference = bool((self.reference == self.reference_level).all())
        self._endurance_on = self.analog_config.endurance.enabled
        self.__dict__.pop("_const_cache", None)

    # ---- forward helpers ----
    def _noisy_weight(self) -> Tensor:
        """The weight as read in this forward: ``.weight`` plus read noise when configured."""
        if self.read_noise > 0:
            noise = Fx.randn_like_on(self.weight, self.generator) * (self.read_noise * self.w_max)
            return self.weight + noise
        return self.weight

    def _count(self, macs: int, dac: int, adc: int) -> None:
        c = self.event_counts[self.phase]
        c["read"] += macs
        c["dac"] += dac
        c["adc"] += adc

    # ---- reporting ----
    def energy_per_event(self) -> dict[str, float]:
        """Energy (J) per write pulse, MAC and conversion of this layer."""
        return per_event_energy(self.analog_config.energy, self.card)

    def tile_map(self) -> pd.DataFrame:
        """Which weight lives on which tile, row and column (one row per weight)."""
        return self.layout.tile_map()

    def tile_counters(self) -> pd.DataFrame:
        """Per tile: devices, LTP/LTD pulses, failed devices, write energy (J), mean W."""
        ids = self.layout.tile_ids.view(-1)
        nt = self.layout.n_tiles
        ltp = torch.bincount(ids, self.ltp_pulses.view(-1).cpu().double(), nt)
        ltd = torch.bincount(ids, self.ltd_pulses.view(-1).cpu().double(), nt)
        failed = torch.bincount(ids, self.failed.view(-1).cpu().double(), nt)
        dev = torch.bincount(ids, minlength=nt)
        wsum = torch.bincount(ids, self.conductance.view(-1).cpu().double(), nt)
        per = self.energy_per_event()
        df = self.layout.tiles()
        df["devices"] = dev.numpy()
        df["ltp_pulses"] = ltp.long().numpy()
        df["ltd_pulses"] = ltd.long().numpy()
        df["failed_devices"] = failed.long().numpy()
        df["write_energy_j"] = ltp.numpy() * per["write_ltp"] + ltd.numpy() * per["write_ltd"]
        df["mean_conductance"] = (wsum / dev.double()).numpy()
        return df

    # ---- extra state ----
    def get_extra_state(self) -> dict[str, Any]:
        return {
            "event_counts": {p: dict(c) for p, c in self.event_counts.items()},
            "generator_state": self.generator.get_state(),
            "w_max": self.w_max,  # drawn with weight_window="scaled": not a config value
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        counts = _empty_counts()
        for phase, kinds in state.get("event_counts", {}).items():
            for kind, v in kinds.items():
                counts[phase][kind] = int(v)
        self.event_counts = counts
        gs = state.get("generator_state")
        if gs is not None:
            self.generator.set_state(gs)
        if state.get("w_max") is not None and float(state["w_max"]) != self.w_max:
            prog = self.analog_config.programming
            self.w_max = float(state["w_max"])
            self.thr_ltp, self.thr_ltd = Fx.thresholds(self.w_max, prog.eps, prog.thr_asym)
            self.__dict__.pop("_const_cache", None)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # copy.deepcopy / pickle rebuild the weight Parameter without its analog tag
        super().__setstate__(state)
        if self._parameters.get("weight") is not None:
            mark_analog_weight(self.weight)

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        # .to() / .double() may replace the weight Parameter: keep it tagged
        out = super()._apply(fn, recurse)
        if self._parameters.get("weight") is not None:
            mark_analog_weight(self.weight)
        return out

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh_flags()

    def analog_extra_repr(self) -> str:
        c = self.analog_config
        return (
            f"card={self.card.name}, w_max={self.w_max:.4g}, tiles={self.layout.n_row_tiles}x"
            f"{self.layout.n_col_tiles} of {c.tile_rows}x{c.tile_cols}, reference={c.reference}"
            + (f" ({c.symmetry_reference})" if c.reference == "symmetry" else "")
        )

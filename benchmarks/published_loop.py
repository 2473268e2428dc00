"""The published network's per-time-step loop, re-stated from its algorithm (the baseline).

This is our own statement of the algorithm of the published EEG network (Conv2d 1→64,
64→128, AvgPool 2, Conv2d 128→256, a temporal conv of three Linear(256, 256) taps, an
adaptive-threshold recurrent layer, Linear(256, 256), Linear(256, 2) weighted per step),
written the way that code executes it: every layer advances one time step at a time, each
neuron update is a handful of separate tensor operations, the spike is an autograd
function whose backward evaluates the rectangular surrogate (height 0.3, half-width 0.3)
and the dropout masks are applied to the whole current update. Benchmarks time it next to
ferrocim's network; only the cost structure matters here, not the training results.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

AMP, WIN, VTH = 0.3, 0.3, 0.1
TH_INC, TH_DECAY, TH_BASE = 0.01, 0.1, 0.01
P_DROP = 0.3


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, v: Tensor, vth: Tensor | float, mask: Tensor | None) -> Tensor:
        ctx.save_for_backward(v)
        ctx.vth, ctx.mask = vth, mask
        return v.gt(vth).float()

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        (v,) = ctx.saved_tensors
        window = (v - ctx.vth).abs() < WIN
        if ctx.mask is not None:
            window[ctx.mask == 0] = False
        return AMP * g.clone() * window.float(), None, None


def _decay(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.full((1, *shape), 0.1))


class PublishedLoopSNN(nn.Module):
    """The published EEG SNN as a per-time-step loop; input ``(B, 1, 10, 11, T)``."""

    def __init__(self, n_steps: int = 160, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = round(64 * width), round(128 * width), round(256 * width)
        self.h = h = c3
        self.conv1, self.conv2 = nn.Conv2d(1, c1, 3), nn.Conv2d(c1, c2, 3)
        self.pool, self.conv3 = nn.AvgPool2d(2), nn.Conv2d(c2, c3, 3)
        self.taps = nn.ModuleList(nn.Linear(c3, h) for _ in range(3))
        self.rec, self.fc1 = nn.Linear(h, h), nn.Linear(h, h)
        self.fc2 = nn.Linear(h, 2, bias=False)
        self.ts_weights = nn.Parameter(torch.full((n_steps,), 1.0 / n_steps))
        shapes = {"c1": (c1, 8, 9), "c2": (c2, 6, 7), "c3": (c3, 1, 1)}
        shapes.update({k: (h,) for k in ("tc1", "r1", "f1")})
        self.cdecay = nn.ParameterDict({k: _decay(*s) for k, s in shapes.items()})
        self.vdecay = nn.ParameterDict({k: _decay(*s) for k, s in shapes.items()})
        self.shapes = shapes

    def _lif(self, k: str, i: Tensor, st: tuple, vth: Any = VTH, mask: Tensor | None = None):
        s, c, v = st
        c = self.cdecay[k] * c + i
        if mask is not None:
            c = c * mask
        v = self.vdecay[k] * v * (1.0 - s) + c
        out = _Spike.apply(v, vth, mask)
        return out, (out, c, v)

    def forward(self, x: Tensor) -> Tensor:
        b, dev = x.shape[0], x.device
        st = {
            k: tuple(torch.zeros(b, *s, device=dev) for _ in range(3))
            for k, s in self.shapes.items()
        }
        vth = torch.full((b, self.h), VTH, device=dev)
        masks: dict[str, Tensor | None] = dict.fromkeys(("tc1", "r1", "f1"))
        if self.training:
            for k in masks:
                keep = torch.full((b, self.h), 1 - P_DROP, device=dev)
                masks[k] = torch.bernoulli(keep) / (1 - P_DROP)
        buf: list[Tensor] = []
        outs = []
        for t in range(x.shape[-1]):
            s1, st["c1"] = self._lif("c1", self.conv1(x[..., t]), st["c1"])
            s2, st["c2"] = self._lif("c2", self.conv2(s1), st["c2"])
            s3, st["c3"] = self._lif("c3", self.conv3(self.pool(s2)), st["c3"])
            buf = [*buf[-2:], s3.view(b, -1)]
            i = sum(self.taps[k + 3 - len(buf)](a) for k, a in enumerate(buf))
            s4, st["tc1"] = self._lif("tc1", i, st["tc1"], mask=masks["tc1"])
            i = s4 + self.rec(st["r1"][0])
            s5, st["r1"] = self._lif("r1", i, st["r1"], vth, masks["r1"])
            vth = (vth + TH_INC) * s5 + torch.clamp(vth * TH_DECAY, min=TH_BASE) * (1.0 - s5)
            s6, st["f1"] = self._lif("f1", self.fc1(s5), st["f1"], mask=masks["f1"])
            outs.append(self.fc2(s6) * self.ts_weights[t])
        return torch.stack(outs).sum(0)

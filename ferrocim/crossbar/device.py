"""Per-device parameters of a tile, drawn once from a device card.

One tensor of shape ``(len(PARAM_ROWS), n_devices)`` holds, per active device, its Beta
kernel (``a``, ``alpha``, ``beta`` for LTP and LTD; dimensionless) and its conductance
window relative to the card's nominal one: the device reads
``G = g_min_s + (g_offset + g_gain * W) * (g_max_s - g_min_s)`` (siemens), so the nominal
device has ``g_offset = 0``, ``g_gain = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ferrocim.calibration.card import DeviceCard

#: Row order of the per-device parameter tensor.
PARAM_ROWS: tuple[str, ...] = (
    "a_ltp",
    "alpha_ltp",
    "beta_ltp",
    "a_ltd",
    "alpha_ltd",
    "beta_ltd",
    "g_offset",
    "g_gain",
)
ROW = {name: i for i, name in enumerate(PARAM_ROWS)}

#: Drawn kernel parameters are kept above this fraction of their nominal value.
_MIN_FRACTION = 1e-3


@dataclass(frozen=True)
class DeviceSpread:
    """Relative device-to-device standard deviations: kernel rows in ``PARAM_ROWS`` order
    (LTP then LTD, each kind its own), then Gmin and Gmax."""

    kernel: tuple[float, float, float, float, float, float] = (0.0,) * 6
    g_min: float = 0.0
    g_max: float = 0.0

    @classmethod
    def from_card(cls, card: DeviceCard) -> DeviceSpread:
        """The card's ``*_dtod`` spread."""
        v = card.variability
        kern = tuple(
            getattr(v, f"{p}_{k}_dtod") for k in ("ltp", "ltd") for p in ("a", "alpha", "beta")
        )
        return cls(kern, v.g_min_dtod, v.g_max_dtod)  # type: ignore[arg-type]


def nominal_params(card: DeviceCard) -> tuple[float, ...]:
    """The card's parameters in ``PARAM_ROWS`` order (offset 0, gain 1)."""
    return (*card.ltp.as_tuple(), *card.ltd.as_tuple(), 0.0, 1.0)


def draw_device_params(
    card: DeviceCard,
    n_devices: int,
    *,
    d2d: bool = True,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Per-device parameters, shape ``(8, n_devices)``.

    With ``d2d`` each kernel parameter is ``p * (1 + s * xi)`` with ``xi ~ N(0, 1)`` and ``s``
    the card's relative spread (kept >= 1e-3 p); Gmin and Gmax are drawn likewise and turned
    into ``g_offset``/``g_gain``. One ``(8, n)`` normal draw is taken from ``generator``
    (on the generator's device) whenever ``d2d`` is true, whatever the spreads.
    """
    nom = torch.tensor(nominal_params(card), dtype=torch.float64).unsqueeze(1)
    out = nom.expand(len(PARAM_ROWS), n_devices).clone()
    if d2d:
        gdev = generator.device if generator is not None else torch.device("cpu")
        xi = torch.randn(8, n_devices, generator=generator, device=gdev, dtype=torch.float64).cpu()
        s = DeviceSpread.from_card(card)
        rel = torch.tensor(s.kernel, dtype=torch.float64)
        kern = nom[:6] * (1.0 + rel.unsqueeze(1) * xi[:6])
        out[:6] = torch.maximum(kern, nom[:6] * _MIN_FRACTION)
        span = card.g_max_s - card.g_min_s
        g_min = card.g_min_s * (1.0 + s.g_min * xi[6])
        g_max = card.g_max_s * (1.0 + s.g_max * xi[7])
        g_max = torch.maximum(g_max, g_min + 1e-3 * span)
        out[6] = (g_min - card.g_min_s) / span
        out[7] = (g_max - g_min) / span
    return out.to(dtype=dtype, device=device)

"""A device card as IBM aihwkit device parameters (``ferrocim devices export --to aihwkit``).

The export is a JSON file plus a short Python snippet beside it that builds the aihwkit
``rpu_config`` from the JSON; neither this module nor its tests import aihwkit. Target:
aihwkit 1.1.0, whose ``PiecewiseStepDevice`` steps a weight ``w`` in ``[w_min, w_max]`` by
``dw_min * ((1 - q) v[i] + q v[i + 1]) * (1 + dw_min_std * xi)`` up (table ``v`` =
``piecewise_up``) or down (``piecewise_down``), where the ``n`` table nodes sit equally
spaced on ``[w_min, w_max]`` (first and last on the bounds), ``i`` is the segment of
``w`` and ``q`` its position in that segment; ``xi`` is a standard normal draw per pulse.

Mapping (all weights in the tile's weight units; ``b`` = the weight bound, a setting, 1
by default — aihwkit's usual absolute bounds; ferrocim's layers use ``1/sqrt(fan_in)``):

- **Nodes.** Node ``k`` of ``n`` (``n_nodes``, 2 … 63; aihwkit's GPU kernels take fewer
  than 64; default 63) is at normalised conductance ``W_k = k / (n - 1)``, i.e. the
  device's whole conductance window ``[Gmin, Gmax]`` spans ``[w_min, w_max]``. Between
  nodes the tables are linear, the kernel is not: on a measured card with steep tails
  (ID170ZR5000 at 200 µs) a single aihwkit step at W in 5-95 % is within 1.2 % of the
  kernel's step with 63 nodes, 5.5 % with 33 (``benchmarks/vs_aihwkit.py --check-device``).
- **Bounds.** With reference level ``W_ref`` (``0.5`` for ``reference="mid"``, the card's
  symmetry point ``W*`` for ``"symmetry"``) the weight is ``w = 2 b (W - W_ref)``:
  ``w_min = -2 b W_ref``, ``w_max = 2 b (1 - W_ref)`` (``±b`` for the mid reference; the
  symmetry reference keeps the full window, shifted so that ``w = 0`` is at ``W*``).
- **Steps.** The absolute step of one LTP (up) / LTD (down) pulse at node ``k`` is
  ``2 b * beta_step(clip(W_k, 0.01, 0.99), a, alpha, beta)`` with that polarity's kernel
  (the clip is ferrocim's programming rule, :data:`~ferrocim.calibration.kernel.W_LOW` /
  ``W_HIGH``). Between nodes aihwkit interpolates linearly (ferrocim evaluates the kernel).
- **dw_min and the tables** (``asymmetry``):

  ``"tables"`` (default): ``dw_min`` = the up step at the middle node ``n // 2``
  (``W = 0.5`` for odd ``n``) — what aihwkit's ``PiecewiseStepDevice`` reports as its
  weight granularity (``dw_min * piecewise_up[n // 2]``) and uses for BL and update
  management; both tables are the steps divided by that one ``dw_min``
  (``piecewise_up[n // 2] = 1``), ``up_down = 0``: the up/down asymmetry is in the tables.

  ``"up_down"``: each table is divided by its own middle step ``c_up``, ``c_down``;
  ``dw_min = max(c_up, c_down)``, ``up_down = (c_up - c_down) / dw_min`` (aihwkit's own
  convention, its example 21); aihwkit's ``(1 + min(up_down, 0)) dw_min`` and
  ``(1 - max(up_down, 0)) dw_min`` give back ``c_up`` and ``c_down``, so the absolute steps
  are the same; the granularity is then ``max(c_up, c_down)``.

  ferrocim's own :func:`ferrocim.crossbar.rules.dw_min` is the *mean* of the up and down
  steps at the reference level; the JSON records it as ``mapping.ferrocim_dw_min`` (the
  ratio of the two is the factor by which the pulse rules' effective learning rate differs).
- **Cycle-to-cycle.** ``dw_min_std`` = the mean of the card's ``rsd_c2c_ltp`` and
  ``rsd_c2c_ltd`` (aihwkit has one relative s.d. of a step for both polarities; ferrocim
  draws ``a ~ N(a, (rsd a)^2)`` per pulse, the same relative spread of the step).
- **Device-to-device** (``dtod=True``): ``dw_min_dtod = up_down_dtod =
  sqrt((s_ltp^2 + s_ltd^2) / 4)`` from the card's ``a_ltp_dtod`` / ``a_ltd_dtod``: with
  aihwkit's ``scale_up = (g + r) dw_min``, ``scale_down = (g - r) dw_min`` this gives each
  polarity the RMS relative spread of the two and uncorrelated up/down amplitudes (exact for
  equal spreads and ``asymmetry="tables"``). Not representable, set to 0 and listed under
  ``mapping.not_mapped``: per-device alpha/beta spread (one table for all devices), window
  spread ``g_min_dtod``/``g_max_dtod`` (``w_min_dtod``/``w_max_dtod`` = 0), read noise, wear.
  aihwkit's own non-zero defaults (30 % spreads, ``reset_std``) are all set explicitly.

The JSON (``format`` ``ferrocim.aihwkit/1``) holds ``device`` — the ``PiecewiseStepDevice``
keyword arguments as they are — ``rpu_config`` (periphery and update settings: ideal
forward/backward, ``desired_bl`` 31 with BL and update management, no weight scaling),
``mapping`` (the settings above, the node positions, the absolute steps, what is not
mapped) and ``card`` (name, kernels, source). The snippet's ``device_kwargs(spec, w_max,
reference)`` re-derives the bounds and ``dw_min`` for another bound or reference (steps
scale with ``b``, the tables do not), so one export serves every layer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ferrocim.atomic import write_json, write_text
from ferrocim.calibration.card import DeviceCard, resolve_card
from ferrocim.calibration.kernel import W_HIGH, W_LOW, beta_step
from ferrocim.checks import InputError, check_option, check_range

FORMAT = "ferrocim.aihwkit/1"
AIHWKIT_VERSION = "1.1.0"
DEFAULT_NODES = 63
#: aihwkit: "In case of GPUs the maximal number of nodes in the vectors is limited to below 64".
MAX_NODES = 63
REFERENCES = ("mid", "symmetry")
ASYMMETRY = ("tables", "up_down")

#: Pulse-update and periphery settings of the exported rpu_config (the study's: ideal
#: periphery, stochastic pulse trains of length <= 31 with BL and update management).
RPU_SETTINGS: dict[str, Any] = {
    "forward": {"is_perfect": True},
    "backward": {"is_perfect": True},
    "update": {
        "desired_bl": 31,
        "update_bl_management": True,
        "update_management": True,
    },
    "mapping": {"weight_scaling_omega": 0.0, "digital_bias": True},
}

NOT_MAPPED = {
    "alpha/beta device-to-device spread": "one table for all devices",
    "g_min_dtod / g_max_dtod": "w_min_dtod = w_max_dtod = 0",
    "read noise": "not a device parameter in aihwkit (forward.w_noise); ideal periphery",
    "endurance and wear": "not modelled by PiecewiseStepDevice",
    "pulse energy": "not modelled by aihwkit",
}


def node_states(n_nodes: int) -> np.ndarray:
    """Normalised conductance of the ``n_nodes`` table nodes: ``k / (n_nodes - 1)``."""
    return np.linspace(0.0, 1.0, n_nodes)


def node_steps(card: DeviceCard, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Up (LTP) and down (LTD) steps at the nodes in normalised-conductance units, the
    kernel at ``W`` clipped to [0.01, 0.99] (the crossbar's programming rule)."""
    w = np.clip(node_states(n_nodes), W_LOW, W_HIGH)
    up = np.asarray(beta_step(w, card.ltp.a, card.ltp.alpha, card.ltp.beta), dtype=float)
    down = np.asarray(beta_step(w, card.ltd.a, card.ltd.alpha, card.ltd.beta), dtype=float)
    return up, down


def _check_nodes(n_nodes: int) -> int:
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or not 2 <= n_nodes <= MAX_NODES:
        raise InputError(
            f"'nodes' must be an integer from 2 to {MAX_NODES} (aihwkit's GPU limit), "
            f"got {n_nodes!r}"
        )
    return n_nodes


def reference_level(card: DeviceCard, reference: str) -> float:
    """``W_ref``: 0.5 (``mid``) or the card's symmetry point (``symmetry``)."""
    check_option("reference", reference, REFERENCES)
    if reference == "mid":
        return 0.5
    w = card.symmetry_point
    if w is None or not math.isfinite(w):
        raise InputError(
            f"reference='symmetry' needs the card's symmetry_point, but card {card.name!r} "
            "has none (its LTP and LTD steps are never equal on (0, 1))"
        )
    return float(w)


def piecewise_step_device(
    card: DeviceCard,
    *,
    n_nodes: int = DEFAULT_NODES,
    w_max: float = 1.0,
    reference: str = "mid",
    asymmetry: str = "tables",
    dtod: bool = True,
) -> dict[str, Any]:
    """The export of ``card`` (see the module docstring) as a JSON-ready dictionary.

    ``w_max`` is the weight bound ``b`` (weight units); ``n_nodes`` the table length.
    """
    _check_nodes(n_nodes)
    b = check_range("w_max", w_max, 0.0, low_inclusive=False)
    check_option("asymmetry", asymmetry, ASYMMETRY)
    w_ref = reference_level(card, reference)
    up, down = node_steps(card, n_nodes)
    up_w, down_w = 2.0 * b * up, 2.0 * b * down  # absolute steps, weight units
    mid = n_nodes // 2
    c_up, c_down = float(up_w[mid]), float(down_w[mid])
    if asymmetry == "tables":
        dw = c_up
        table_up, table_down, up_down = up_w / dw, down_w / dw, 0.0
    else:
        dw = max(c_up, c_down)
        table_up, table_down, up_down = up_w / c_up, down_w / c_down, (c_up - c_down) / dw
    var = card.variability
    dw_std = 0.5 * (var.rsd_c2c_ltp + var.rsd_c2c_ltd)
    spread = math.sqrt((var.a_ltp_dtod**2 + var.a_ltd_dtod**2) / 4.0) if dtod else 0.0
    # ferrocim's rules.dw_min: mean of the LTP and LTD steps at the reference level
    wr = min(max(w_ref, W_LOW), W_HIGH)
    mean_ref = 0.5 * (
        float(beta_step(wr, card.ltp.a, card.ltp.alpha, card.ltp.beta))
        + float(beta_step(wr, card.ltd.a, card.ltd.alpha, card.ltd.beta))
    )
    device = {
        "w_min": -2.0 * b * w_ref,
        "w_max": 2.0 * b * (1.0 - w_ref),
        "w_min_dtod": 0.0,
        "w_max_dtod": 0.0,
        "dw_min": dw,
        "dw_min_std": dw_std,
        "dw_min_dtod": spread,
        "dw_min_dtod_log_normal": False,
        "up_down": up_down,
        "up_down_dtod": spread,
        "piecewise_up": [float(v) for v in table_up],
        "piecewise_down": [float(v) for v in table_down],
        "write_noise_std": 0.0,
        "reset": 0.0,
        "reset_std": 0.0,
        "reset_dtod": 0.0,
        "lifetime": 0.0,
        "diffusion": 0.0,
        "corrupt_devices_prob": 0.0,
        "enforce_consistency": True,
        "construction_seed": 0,
    }
    not_mapped = dict(NOT_MAPPED)
    if not dtod:
        not_mapped["a_ltp_dtod / a_ltd_dtod"] = "left out (dtod=False)"
    if var.rsd_c2c_ltp != var.rsd_c2c_ltd:
        not_mapped["rsd_c2c_ltp != rsd_c2c_ltd"] = (
            f"one dw_min_std for both: the mean of {var.rsd_c2c_ltp:.4g} and {var.rsd_c2c_ltd:.4g}"
        )
    nodes = node_states(n_nodes)
    return {
        "format": FORMAT,
        "aihwkit_version": AIHWKIT_VERSION,
        "device_class": "PiecewiseStepDevice",
        "device": device,
        "rpu_config": RPU_SETTINGS,
        "mapping": {
            "w_max": b,
            "reference": reference,
            "w_ref": w_ref,
            "w_star": card.symmetry_point,
            "n_nodes": n_nodes,
            "asymmetry": asymmetry,
            "kernel_clip": [W_LOW, W_HIGH],
            "nodes_state": [float(v) for v in nodes],
            "nodes_weight": [float(v) for v in 2.0 * b * (nodes - w_ref)],
            "step_up": [float(v) for v in up_w],
            "step_down": [float(v) for v in down_w],
            "granularity": dw * float(table_up[mid]),
            "ferrocim_dw_min": 2.0 * b * mean_ref,
            "dtod": dtod,
            "units": "weights, bounds and steps in tile weight units (w = 2 b (W - W_ref)); "
            "tables relative to dw_min; std/dtod relative",
            "not_mapped": not_mapped,
        },
        "card": {
            "name": card.name,
            "width_s": card.pulse.width_s,
            "ltp": list(card.ltp.as_tuple()),
            "ltd": list(card.ltd.as_tuple()),
            "symmetry_point": card.symmetry_point,
            "g_min_s": card.g_min_s,
            "g_max_s": card.g_max_s,
            "rsd_c2c_ltp": var.rsd_c2c_ltp,
            "rsd_c2c_ltd": var.rsd_c2c_ltd,
            "a_ltp_dtod": var.a_ltp_dtod,
            "a_ltd_dtod": var.a_ltd_dtod,
        },
    }


SNIPPET = '''"""Build an aihwkit {aihwkit} rpu_config from a ferrocim device export.

Written by `ferrocim devices export --to aihwkit` next to {json_name}. Use:

    import runpy
    rpu_config = runpy.run_path("{module}.py")["rpu_config"]
    cfg = rpu_config()                              # bounds and rule as exported
    cfg = rpu_config(w_max=1 / 64 ** 0.5)           # layer bound 1/sqrt(fan_in)
    cfg = rpu_config(reference="symmetry")          # w = 0 at the symmetry point W*
    cfg = rpu_config(rule="mixed")                  # mixed precision (digital rank update)

or `python {module}.py` to print it. Only `rpu_config` imports aihwkit.
"""

import json
from pathlib import Path

SPEC = Path(__file__).with_name("{json_name}")


def device_kwargs(spec, w_max=None, reference=None):
    """PiecewiseStepDevice keyword arguments for weight bound `w_max` and `reference`
    ("mid": w = 0 at W = 0.5; "symmetry": at W*): w_min = -2 b W_ref, w_max = 2 b (1 - W_ref);
    dw_min scales with b, the tables do not."""
    m = spec["mapping"]
    b = m["w_max"] if w_max is None else float(w_max)
    ref = m["reference"] if reference is None else reference
    if ref not in ("mid", "symmetry"):
        raise ValueError(f"reference must be 'mid' or 'symmetry', got {{ref!r}}")
    w_ref = 0.5 if ref == "mid" else m["w_star"]
    if w_ref is None:
        raise ValueError("the card has no symmetry point: use reference='mid'")
    kw = dict(spec["device"])
    kw["dw_min"] = spec["device"]["dw_min"] * b / m["w_max"]
    kw["w_min"] = -2.0 * b * w_ref
    kw["w_max"] = 2.0 * b * (1.0 - w_ref)
    return kw


def rpu_config(path=SPEC, *, w_max=None, reference=None, rule="plain", ideal=True):
    """SingleRPUConfig (rule "plain"/"symmetry") or DigitalRankUpdateRPUConfig with a
    MixedPrecisionCompound (rule "mixed") on the exported PiecewiseStepDevice.
    `ideal`: perfect forward/backward periphery (else aihwkit's default IOParameters)."""
    from aihwkit.simulator.configs import (
        DigitalRankUpdateRPUConfig,
        IOParameters,
        MappingParameter,
        MixedPrecisionCompound,
        PiecewiseStepDevice,
        SingleRPUConfig,
        UpdateParameters,
    )

    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    if rule == "symmetry" and reference is None:
        reference = "symmetry"
    device = PiecewiseStepDevice(**device_kwargs(spec, w_max, reference))
    settings = spec["rpu_config"]
    kw = {{
        "update": UpdateParameters(**settings["update"]),
        "mapping": MappingParameter(**settings["mapping"]),
    }}
    if ideal:
        kw["forward"] = IOParameters(**settings["forward"])
        kw["backward"] = IOParameters(**settings["backward"])
    if rule == "mixed":
        return DigitalRankUpdateRPUConfig(device=MixedPrecisionCompound(device=device), **kw)
    if rule not in ("plain", "symmetry"):
        raise ValueError(f"rule must be 'plain', 'symmetry' or 'mixed', got {{rule!r}}")
    return SingleRPUConfig(device=device, **kw)


if __name__ == "__main__":
    print(rpu_config())
'''


def snippet_text(json_name: str, module: str) -> str:
    """The snippet that builds the rpu_config from the JSON file ``json_name``."""
    return SNIPPET.format(aihwkit=AIHWKIT_VERSION, json_name=json_name, module=module)


def export_aihwkit(
    card: DeviceCard | str | os.PathLike[str],
    out: str | os.PathLike[str],
    **options: Any,
) -> tuple[Path, Path]:
    """Write ``out`` (JSON, see :func:`piecewise_step_device` for ``options``) and the
    snippet ``out`` with suffix ``.py``; both atomically. Returns the two paths."""
    path = Path(out)
    if path.suffix != ".json":
        raise InputError(f"--out must name a .json file (the snippet goes beside it), got {out}")
    c = resolve_card(card) if not isinstance(card, DeviceCard) else card
    spec = piecewise_step_device(c, **options)
    snippet = path.with_suffix(".py")
    try:
        write_json(path, spec)
        write_text(snippet, snippet_text(path.name, path.stem))
    except OSError as exc:
        raise InputError(
            f"--out {out}: cannot write {exc.filename or path}: {exc.strerror}"
        ) from None
    return path, snippet


__all__ = [
    "AIHWKIT_VERSION",
    "DEFAULT_NODES",
    "FORMAT",
    "MAX_NODES",
    "export_aihwkit",
    "node_states",
    "node_steps",
    "piecewise_step_device",
    "reference_level",
    "snippet_text",
]

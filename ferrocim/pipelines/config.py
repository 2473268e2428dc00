"""Typed run configuration: TOML file → validated pydantic records, with overrides.

The configuration spine: every knob is a field of :class:`RunConfig` and flows one way,

    CLI flag (``--eps``, ``ferrocim.cli._KNOBS``) or ``--set array.programming.eps=…``
    or TOML (``[array.programming] eps = …``)
      → dotted override → :func:`load_config` → ``RunConfig`` (validated once, before any
        run directory exists; unknown and renamed keys are errors with suggestions)
      → ``RunConfig.array`` *is* the crossbar's :class:`~ferrocim.crossbar.AnalogConfig`
        (programming, endurance, energy parts included) → every analog layer's tiles.

A new field added to a section (or to the crossbar's configs) is reachable from TOML and
``--set`` with no other change. Errors name the file and the dotted field.

Units: learning rates per optimiser step; ``eps`` is a fraction of the weight range
2·w_max; ``x`` is the inverse relative s.d. of programming noise; time is in samples.
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ferrocim.atomic import write_text
from ferrocim.checks import InputError, read_toml
from ferrocim.crossbar.config import AnalogConfig, validation_errors
from ferrocim.names import name_problem
from ferrocim.rundir import config_value

LAYERS = ("conv1", "conv2", "conv3", "tc1", "r1", "fc1", "fc2")
QUANT_LEVELS = (2, 4, 8, 16, 32)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Where the EEG comes from."""

    source: Literal["synthetic", "prepared"] = "synthetic"
    path: str | None = Field(default=None, description="prepared HDF5 cache (source=prepared)")
    n_subjects: int = Field(default=10, ge=2, description="synthetic subjects")
    synth_seed: int = 0
    cache_dir: str = Field(default="data", description="where synthetic EDF + cache live")
    n_folds: int = Field(default=5, ge=2)
    fold: int = Field(default=0, ge=0)
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    normalization: Literal["global", "per_run"] = Field(
        default="global",
        description="synthetic data: one mean/s.d. per channel over all runs (published) "
        "or per run (a prepared file has its own, set by `ferrocim data prepare`)",
    )
    max_train_trials: int | None = Field(default=None, ge=1, description="subsample (smoke)")
    max_eval_trials: int | None = Field(default=None, ge=1, description="subsample (smoke)")
    exclude_channels: list[str] = Field(
        default_factory=list,
        description="channels set to zero on the grid after normalisation (the input shape "
        "is unchanged; 0 is the channel's mean): 10-10 names such as F7, or "
        "'frontal-temporal' for the 18 channels that carry eye movements",
    )

    @field_validator("exclude_channels")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        from ferrocim.snn.data.eegmmidb import CHANNEL_GROUPS, expand_channels

        try:
            return expand_channels(v)
        except InputError as exc:
            groups = ", ".join(repr(g) for g in CHANNEL_GROUPS)
            raise ValueError(f"{exc} (or a group: {groups})") from None


class TransferConfig(_Section):
    """How a float model's weights are written onto tiles (re-tuning; SSTL from a float run)."""

    q: int | None = Field(default=None, description="quantise to q+1 levels on transfer")
    x: float | None = Field(default=None, gt=0, description="programming noise s.d. = mean|w|/x")

    @field_validator("q")
    @classmethod
    def _q(cls, v: int | None) -> int | None:
        if v is not None and v not in QUANT_LEVELS:
            raise ValueError(f"q must be one of {QUANT_LEVELS} (q+1 levels), got {v}")
        return v


class NetworkSettings(_Section):
    """The spiking network (``ferrocim.snn.NetworkConfig``): the paper's by default."""

    width: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="channel multiplier (1: 64/128/256 + 256 hidden; retune/SSTL: the base run's)",
    )
    dropout: float = Field(
        default=0.3,
        ge=0,
        lt=1,
        description="per-sequence dropout of tc1, r1, fc1, c = (beta c + I) m (paper: 0.3)",
    )
    w_max_rule: Literal["paper", "fan_in"] = Field(
        default="paper",
        description="weight bound A per layer: published literals (3-significant-figure "
        "1/sqrt(fan_in) at other widths) or exactly 1/sqrt(fan_in)",
    )
    mode: Literal["parallel", "loop"] = Field(
        default="parallel", description="time-parallel path or the step-by-step oracle"
    )
    surrogate_window: float = Field(
        default=0.3,
        gt=0,
        description="half-width of the rectangular surrogate around the threshold "
        "(published 0.3; ferrocim's unit-area option: 0.15)",
    )
    surrogate_height: float = Field(
        default=0.3,
        gt=0,
        description="ds/dv inside the window (published 0.3; unit-area option: 1/0.3)",
    )
    precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="synapse products in float32 (published) or bfloat16 autocast "
        "(states, weights, gradients and the pulse rule stay float32)",
    )


class TrainConfig(_Section):
    """Optimiser and schedule of the main training phase."""

    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=64, ge=1, description="published pre-training batch")
    lr: float = Field(default=1e-4, gt=0)
    lr_scaling: Literal["none", "fan_in"] = Field(
        default="none",
        description="'fan_in': per-layer weight learning rate lr·min(1, 64/fan_in) (optim.py)",
    )
    weight_decay: float = Field(default=0.0, ge=0)
    lr_schedule: Literal["cosine", "constant"] = Field(
        default="cosine",
        description="published: cosine annealing per epoch (T_max 20, eta_min 1e-5)",
    )
    cosine_t_max: int = Field(default=20, ge=1, description="epochs of the cosine half-period")
    cosine_eta_min: float = Field(default=1e-5, ge=0, description="cosine floor learning rate")
    eval_batch_size: int = Field(default=128, ge=1)
    checkpoint_every: int = Field(
        default=0, ge=0, description="also checkpoint every N optimiser steps (0: per epoch)"
    )


class RetuneConfig(_Section):
    """Re-tuning: a float model transferred onto tiles, then fine-tuned on device."""

    float_run: str | None = Field(default=None, description="run directory of a float model")
    unfreeze: list[str] = Field(default_factory=lambda: list(LAYERS))
    frozen_dropout: bool = Field(
        default=False, description="keep dropout in frozen layers (published code; no cache)"
    )

    @field_validator("unfreeze")
    @classmethod
    def _layers(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if x not in LAYERS]
        if bad:
            raise ValueError(f"unknown layer(s) {bad}; layers are {list(LAYERS)}")
        return v


class SSTLConfig(_Section):
    """Subject-specific transfer learning (paper: lr 6e-4, batch 1, 5 epochs, fc1+fc2)."""

    base_run: str | None = Field(default=None, description="run directory of the pooled model")
    lr: float = Field(default=6e-4, gt=0)
    lr_scaling: Literal["none", "fan_in"] = Field(
        default="none", description="as train.lr_scaling; the paper's 6e-4 is unscaled"
    )
    batch_size: int = Field(default=1, ge=1)
    epochs: int = Field(default=5, ge=1)
    folds: int = Field(default=4, ge=2)
    layers: list[str] = Field(default_factory=lambda: ["fc1", "fc2"])
    subjects: list[int] | None = Field(default=None, description="test subjects (None: all)")
    frozen_dropout: bool = Field(
        default=False, description="keep dropout in frozen layers (published code; no cache)"
    )

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: list[str]) -> list[str]:
        return RetuneConfig._layers(v)


class RunConfig(_Section):
    """One experiment. ``kind`` picks the pipeline."""

    kind: Literal["float", "device", "retune", "sstl", "evaluate"] = "float"
    name: str | None = None
    out_dir: str = "runs"
    seed: int = 0
    device: Literal["cpu", "cuda"] = "cpu"
    threads: int | None = Field(
        default=None,
        ge=1,
        description="torch CPU threads (default: physical cores; FERROCIM_THREADS=auto: idle)",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    array: AnalogConfig = Field(default_factory=AnalogConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    retune: RetuneConfig = Field(default_factory=RetuneConfig)
    sstl: SSTLConfig = Field(default_factory=SSTLConfig)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        """The run folder's name under ``out_dir``: one safe file name, not a path
        (:func:`ferrocim.names.check_name`)."""
        if v is not None:
            problem = name_problem(v)
            if problem is not None:
                raise ValueError(
                    f"the run name (--name) cannot be a folder name: {problem}. Give one "
                    "name, not a path (put the runs elsewhere with --out-dir or --run-dir)"
                )
        return v

    def to_toml(self) -> str:
        """The resolved configuration as TOML (None fields left out)."""
        return tomli_w.dumps(self.model_dump(mode="json", exclude_none=True))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the resolved configuration atomically."""
        return write_text(path, self.to_toml())


#: Keys of older configurations → where the knob lives now.
RENAMED: dict[str, str] = {
    **{
        f"array.{k}": f"array.programming.{k}"
        for k in ("eps", "thr_asym", "a_scale", "a_asym", "rsd_c2c", "max_pulses_per_step")
    },
    "array.lifetime_scale": "array.endurance.lifetime_scale",
    "array.q": "transfer.q",
    "array.x": "transfer.x",
}


def _submodel(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def field_names(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every dotted field of the run configuration (``array.programming.eps``, …)."""
    model = RunConfig if model is None else model
    out: list[str] = []
    for name, info in model.model_fields.items():
        sub = _submodel(info.annotation)
        out += field_names(sub, f"{prefix}{name}.") if sub else [f"{prefix}{name}"]
    return out


def _unknown_key(dotted: str, source: str) -> InputError:
    if dotted in RENAMED:
        return InputError(f"{source}: {dotted!r} is now {RENAMED[dotted]!r}; rename it")
    close = difflib.get_close_matches(dotted, field_names(), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return InputError(f"{source}: unknown configuration field {dotted!r}{hint}")


def check_keys(
    data: dict[str, Any], source: str, model: type[BaseModel] | None = None, prefix: str = ""
) -> None:
    """Raise for a key of ``data`` that is no field (renamed ones name their new place)."""
    model = RunConfig if model is None else model
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            raise _unknown_key(prefix + key, source)
        sub = _submodel(info.annotation)
        if sub is not None and isinstance(value, dict):
            check_keys(value, source, sub, f"{prefix}{key}.")


def check_dotted(keys: list[str], source: str) -> None:
    """Raise for a dotted override key that names no field."""
    names = set(field_names())
    for key in keys:
        if key not in names and not any(n.startswith(key + ".") for n in names):
            raise _unknown_key(key, source)


def _format_errors(
    exc: ValidationError,
    source: str,
    *,
    origins: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    file_data: dict[str, Any] | None = None,
) -> str:
    """One line per problem: dotted field, what is wrong, the value received (once), and
    where the value came from: the flag that gave it (``origins``: dotted field → flag,
    e.g. ``--eps``), the TOML file (``source``, when ``file_data`` holds the field), or
    else the ``--set`` flag that sets the field."""
    origins, overrides = origins or {}, overrides or {}
    lines = []
    for loc, msg in validation_errors(exc):
        head, sep, got = msg.rpartition(" (got ")
        if sep and f"got {got.removesuffix(')')}" in head:  # the message named it already
            msg = head
        if loc in origins:
            where = f"[{origins[loc]}]"
        elif loc not in overrides and file_data and config_value(file_data, loc) is not None:
            section, _, key = loc.rpartition(".")
            where = f"[in {source}: {f'[{section}] ' if section else ''}{key} = …]"
        else:
            where = f"[--set {loc}=…]"
        lines.append(f"  {loc}: {msg} {where}")
    return f"Invalid configuration {source}:\n" + "\n".join(lines)


def _parse_value(text: str) -> Any:
    """A CLI override value, read as a TOML value (``1e-3``, ``true``, ``"dut2"``, ``[1,2]``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (``train.lr``) in a nested dict; values that are str are TOML-parsed."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for key, value in overrides.items():
        if value is None:
            continue
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise InputError(f"Override {key!r}: {p!r} is not a section")
        node[parts[-1]] = value
    return out


def parse_set_options(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["train.lr=1e-3", ...]`` → ``{"train.lr": 0.001}``; errors name the bad item."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--set expects section.field=value, got {item!r}")
        key, _, val = item.partition("=")
        out[key.strip()] = _parse_value(val.strip())
    return out


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    kind: str | None = None,
    origins: dict[str, str] | None = None,
) -> RunConfig:
    """Read a TOML config (optional), apply dotted overrides, validate.

    Errors name the file and the dotted field, e.g. ``train.lr: Input should be
    greater than 0``, and where the value came from: the flag ``origins`` names for an
    override (``{"array.programming.eps": "--eps"}``), the file, or ``--set``.
    """
    data: dict[str, Any] = {}
    file_data: dict[str, Any] | None = None
    source = "<command line>"
    if path is not None:
        p = Path(path)
        source = str(p)
        data = read_toml(p, "configuration")
        check_keys(data, source)
        file_data = copy.deepcopy(data)  # apply_overrides shares nested tables
    if kind is not None:
        data["kind"] = kind
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    check_dotted(list(overrides), "override (--set or a flag)")
    data = apply_overrides(data, overrides)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            _format_errors(exc, source, origins=origins, overrides=overrides, file_data=file_data)
        ) from None

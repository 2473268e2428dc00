"""A sweep file: one run configuration plus the grid of points to run it at.

``SWEEP.toml`` holds an ordinary run configuration (the sections ``--config`` takes) and
three optional sweep tables, all keyed by dotted config fields (``array.eps``,
``data.fold``, ``seed``, any field):

- ``[grid]``: each key is an axis with a list of values; the axes are crossed.
- ``[[zip]]``: each table is one axis whose lists (all the same length) advance
  together, e.g. ``{"transfer.q" = [2, 2], "transfer.x" = [1, 4]}`` gives two values.
- ``[[points]]``: explicit points, each table one point's field values; together they
  form one more axis, crossed with the others (alone, they are exactly the points).

Points are ordered as ``itertools.product`` over the axes in this order: ``[grid]`` keys
in file order, then the ``[[zip]]`` tables, then ``[[points]]``. Every point's resolved
configuration is validated before anything runs; its identity is a content hash of the
resolved configuration (:func:`point_id`), so a point keeps its run directory when the
grid around it changes.

This module and :mod:`ferrocim.pipelines.sweep` meet the run pipelines only through the
adapter functions at the top of this file (:func:`resolve`, :func:`canonical`,
:func:`execute`, :func:`prepare_data`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferrocim.checks import InputError

SWEEP_TABLES = ("grid", "zip", "points")
#: run kinds a sweep can hold (``evaluate`` re-reads a run; it makes none)
SWEEP_KINDS = ("float", "device", "retune", "sstl")
#: fields that say where a run is written, not what it computes: not part of its identity
LOCATION_FIELDS = ("name", "out_dir")


# ---------------------------------------------------------------------------------------
# adapter: the only place that knows the run configuration and the pipeline entry points
# ---------------------------------------------------------------------------------------
def resolve(base: dict[str, Any], overrides: dict[str, Any]):  # -> RunConfig
    """The validated run configuration of ``base`` (nested TOML dict) with dotted overrides."""
    from ferrocim.pipelines.config import load_config

    return load_config(None, {**flatten(base), **overrides})


def canonical(cfg) -> dict[str, Any]:
    """A run configuration as plain JSON values, every field present, location fields out."""
    data = cfg.model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in LOCATION_FIELDS}


def from_canonical(data: dict[str, Any], *, name: str, out_dir: str):  # -> RunConfig
    """The run configuration of a point (``canonical`` output) placed in ``out_dir/name``."""
    from ferrocim.pipelines.config import RunConfig

    return RunConfig.model_validate({**data, "name": name, "out_dir": out_dir})


def check_runnable(cfg) -> None:
    """Cross-field checks the pipelines would only make after starting (raise InputError)."""
    from ferrocim.pipelines.rundir import RunDir

    if cfg.kind not in SWEEP_KINDS:
        raise InputError(f"kind: a sweep runs {list(SWEEP_KINDS)}, got {cfg.kind!r}")
    if cfg.data.fold >= cfg.data.n_folds:
        raise InputError(
            f"data.fold: must be < data.n_folds={cfg.data.n_folds}, got {cfg.data.fold}"
        )
    base_field = {"retune": "retune.float_run", "sstl": "sstl.base_run"}.get(cfg.kind)
    if base_field is not None:
        base = cfg.retune.float_run if cfg.kind == "retune" else cfg.sstl.base_run
        if base is None:
            raise InputError(f"{base_field}: a {cfg.kind} run needs it (a finished run directory)")
        RunDir(base).require(f"run directory ({base_field})")
    if cfg.data.source == "prepared" and not Path(cfg.data.path or "").is_file():
        raise InputError(f"data.path: {cfg.data.path!r} is not a prepared HDF5 file")


def execute(cfg, run_dir: str | os.PathLike[str], *, resume: bool) -> None:
    """Run one point with its pipeline (a new run, or ``resume`` from its checkpoints)."""
    from ferrocim.pipelines.retune import retune
    from ferrocim.pipelines.sstl import sstl
    from ferrocim.pipelines.train import train

    entry = {"float": train, "device": train, "retune": retune, "sstl": sstl}[cfg.kind]
    entry(cfg, run_dir=run_dir, resume=resume)


def data_key(cfg) -> str | None:
    """Identity of the data set a point trains on (None: SSTL reads its base run's)."""
    if cfg.kind == "sstl":
        return None
    return content_hash(cfg.data.model_dump(mode="json"))


def prepare_data(cfg) -> None:
    """Synthesise / prepare the point's data set once, before its runs read it."""
    from ferrocim.pipelines.data import load_dataset

    load_dataset(cfg.data)


# ---------------------------------------------------------------------------------------
# the sweep file
# ---------------------------------------------------------------------------------------
def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict → dotted keys (``{"train": {"lr": 1}}`` → ``{"train.lr": 1}``)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def content_hash(data: Any) -> str:
    """16 hex digits of the SHA-256 of ``data`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def point_id(cfg) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of a resolved run configuration.

    Key order and the location fields (``name``, ``out_dir``) do not change it; any
    value that can change the result does.
    """
    return content_hash(canonical(cfg))


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its position, the field values that define it, its config."""

    index: int
    values: dict[str, Any]
    config: Any  # RunConfig
    id: str

    def describe(self) -> str:
        """``array.eps=0.05, seed=1`` (the point's own field values)."""
        return ", ".join(f"{k}={v!r}" for k, v in self.values.items()) or "(base configuration)"


@dataclass(frozen=True)
class Sweep:
    """A parsed, fully validated sweep file."""

    source: Path
    text: str
    axes: tuple[str, ...]
    points: tuple[Point, ...]


def _axis_values(source: str, where: str, values: Any) -> list[Any]:
    if not isinstance(values, list) or not values:
        raise InputError(f"{source}: {where} must be a non-empty list, got {values!r}")
    return values


def expand(
    grid: dict[str, Any], zips: list[dict[str, Any]], points: list[dict[str, Any]], source: str
) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """The axes (their field names) and every point's field values, in sweep order."""
    axes: list[list[dict[str, Any]]] = []
    names: list[str] = []
    seen: dict[str, str] = {}

    def claim(field: str, where: str) -> None:
        if field in seen:
            raise InputError(
                f"{source}: field {field!r} is swept twice ({seen[field]} and {where})"
            )
        seen[field] = where

    for field, values in grid.items():
        claim(field, f"[grid] {field!r}")
        axes.append([{field: v} for v in _axis_values(source, f"[grid] {field!r}", values)])
        names.append(field)
    for i, table in enumerate(zips):
        where = f"[[zip]] table {i + 1}"
        if not isinstance(table, dict) or not table:
            raise InputError(f"{source}: {where} must map fields to lists")
        lengths = {f: len(_axis_values(source, f"{where} {f!r}", v)) for f, v in table.items()}
        if len(set(lengths.values())) != 1:
            raise InputError(f"{source}: {where} lists must have one length, got {lengths}")
        for field in table:
            claim(field, where)
        n = next(iter(lengths.values()))
        axes.append([{f: table[f][j] for f in table} for j in range(n)])
        names.append("+".join(table))
    if points:
        for i, p in enumerate(points):
            if not isinstance(p, dict) or not p:
                raise InputError(f"{source}: [[points]] entry {i + 1} must set at least one field")
        fields = {f for p in points for f in flatten(p)}
        for field in sorted(fields):
            claim(field, "[[points]]")
        axes.append([flatten(p) for p in points])
        names.append("points")
    combos = [
        {k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)
    ]
    return tuple(names), combos


def read_sweep(path: str | os.PathLike[str]) -> Sweep:
    """Parse and validate a sweep file; errors name the file, the point and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise InputError(f"Cannot read sweep file {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"Sweep file {p} is not valid TOML: {exc}") from None
    grid = data.pop("grid", {})
    zips = data.pop("zip", [])
    extra = data.pop("points", [])
    if not isinstance(grid, dict):
        raise InputError(f"{p}: [grid] must be a table of field = [values]")
    if not isinstance(zips, list) or not isinstance(extra, list):
        raise InputError(f"{p}: zip and points must be arrays of tables ([[zip]], [[points]])")
    axes, combos = expand(grid, zips, extra, str(p))
    points: list[Point] = []
    by_id: dict[str, Point] = {}
    for i, values in enumerate(combos):
        desc = Point(i, values, None, "").describe()
        try:
            cfg = resolve(data, values)
            check_runnable(cfg)
        except InputError as exc:
            lines = str(exc).splitlines()
            detail = "\n".join(lines[1:]) if len(lines) > 1 else f"  {lines[0]}"
            raise InputError(f"{p}: point {i} ({desc}) is invalid:\n{detail}") from None
        point = Point(i, values, cfg, point_id(cfg))
        if point.id in by_id:
            other = by_id[point.id]
            raise InputError(
                f"{p}: points {other.index} ({other.describe()}) and {i} ({desc}) "
                "resolve to the same run configuration"
            )
        by_id[point.id] = point
        points.append(point)
    return Sweep(p, text, axes, tuple(points))

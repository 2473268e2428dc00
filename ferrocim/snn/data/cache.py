"""HDF5 cache of preprocessed EEG windows (h5py, atomic write, no pickles).

Layout: datasets ``eeg`` float32 ``(N, 64, T)`` (channels in file order, z-scored),
``y`` int64, ``subject`` int64, ``run`` int64, ``onset`` int64 (cue sample in its run);
attributes ``format`` (:data:`CACHE_FORMAT`), ``params`` (JSON: the preprocessing
parameters), ``source`` (JSON: root and the size/mtime of every file read),
``ch_names`` (JSON list) and ``created`` (ISO time). A cache is reused only when its
``params`` and ``source`` equal the requested ones; anything else rebuilds it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from ferrocim import __version__
from ferrocim.atomic import atomic_path
from ferrocim.checks import InputError
from ferrocim.snn.data.dataset import EEGDataset
from ferrocim.snn.data.grid import to_grid

__all__ = ["CACHE_FORMAT", "cache_is_current", "load_prepared", "read_cache_attrs", "write_cache"]

CACHE_FORMAT = "ferrocim.eeg-windows/2"
"""Version 2: global channel normalisation by default (version 1 z-scored per run)."""


def write_cache(
    path: str | Path,
    arrays: dict[str, np.ndarray],
    *,
    params: dict[str, Any],
    source: dict[str, Any],
    ch_names: list[str],
) -> Path:
    """Write the arrays ``eeg, y, subject, run, onset`` and their provenance atomically."""
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        n, _, t = arrays["eeg"].shape
        f.create_dataset(
            "eeg", data=arrays["eeg"].astype(np.float32), chunks=(min(n, 64), 64, t) if n else None
        )
        for key in ("y", "subject", "run", "onset"):
            f.create_dataset(key, data=np.asarray(arrays[key], dtype=np.int64))
        f.attrs["format"] = CACHE_FORMAT
        f.attrs["params"] = json.dumps(params, sort_keys=True)
        f.attrs["source"] = json.dumps(source, sort_keys=True)
        f.attrs["ch_names"] = json.dumps(list(ch_names))
        f.attrs["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        f.attrs["ferrocim_version"] = __version__
    return path


def read_cache_attrs(path: str | Path) -> dict[str, Any]:
    """The decoded attributes of a cache file; InputError naming the file if it is not one."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: prepared data file not found (run `ferrocim data prepare`)")
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
    fmt = attrs.get("format")
    if isinstance(fmt, str) and fmt.startswith("ferrocim.eeg-windows/") and fmt != CACHE_FORMAT:
        raise InputError(
            f"{path}: prepared by an older ferrocim (format {fmt!r}, expected "
            f"{CACHE_FORMAT!r}: its trials were z-scored per run, the published method uses "
            "global channel statistics); prepare it again with `ferrocim data prepare`"
        )
    if fmt != CACHE_FORMAT:
        raise InputError(
            f"{path}: not a ferrocim EEG cache (format {attrs.get('format')!r}, "
            f"expected {CACHE_FORMAT!r})"
        )
    out = dict(attrs)
    for key in ("params", "source", "ch_names"):
        out[key] = json.loads(attrs[key])
    return out


def cache_is_current(path: str | Path, params: dict[str, Any], source: dict[str, Any]) -> bool:
    """True when ``path`` is a cache written with exactly these params and source files."""
    try:
        attrs = read_cache_attrs(path)
    except InputError:
        return False
    # compare through JSON so tuples and lists compare equal
    norm = json.loads(json.dumps({"params": params, "source": source}, sort_keys=True))
    return attrs["params"] == norm["params"] and attrs["source"] == norm["source"]


def load_prepared(h5_path: str | Path) -> EEGDataset:
    """Load a cache written by ``prepare_eegmmidb`` as an :class:`EEGDataset` on the grid."""
    import h5py

    attrs = read_cache_attrs(h5_path)
    with h5py.File(h5_path, "r") as f:
        missing = [k for k in ("eeg", "y", "subject") if k not in f]
        if missing:
            raise InputError(f"{h5_path}: cache lacks dataset(s) {', '.join(missing)}")
        eeg = f["eeg"][()]
        y = f["y"][()].astype(np.int64)
        subject = f["subject"][()].astype(np.int64)
    x = to_grid(eeg.astype(np.float32, copy=False), attrs["ch_names"])
    meta = {
        "params": attrs["params"],
        "source": {k: v for k, v in attrs["source"].items() if k != "files"},
        "created": str(attrs.get("created", "")),
        "ferrocim_version": str(attrs.get("ferrocim_version", "")),
        "path": str(h5_path),
    }
    return EEGDataset(x=x, y=y, subject=subject, meta=meta)

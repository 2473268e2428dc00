"""HDF5 cache of preprocessed EEG windows (h5py, atomic write, no pickles).

Layout: datasets ``eeg`` float32 ``(N, 64, T)`` (channels in file order, z-scored),
``y`` int64, ``subject`` int64, ``run`` int64, ``onset`` int64 (cue sample in its run);
attributes ``format`` (:data:`CACHE_FORMAT`), ``params`` (JSON: the preprocessing
parameters), ``source`` (JSON: root and the size/mtime of every file read),
``ch_names`` (JSON list) and ``created`` (ISO time). A cache is reused only when its
``params`` and ``source`` equal the requested ones; anything else rebuilds it.

The statistics the windows were z-scored with are stored too (format 3): for global
normalisation (published, or a population's statistics given with ``--stats-from``)
datasets ``channel_mean`` and ``channel_std`` float64 ``(64,)`` in volts, channels in
``ch_names`` order, and the attribute ``stats`` (JSON: the band they were computed on and
where they came from); for per-run normalisation ``run_channel_mean`` / ``run_channel_std``
``(K, 64)`` with ``run_channel_keys`` int64 ``(K, 2)`` = (subject, run). Every run records
the statistics of its data in ``RUN/data.json`` (:mod:`ferrocim.pipelines.runs`).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ferrocim import __version__
from ferrocim.atomic import atomic_path
from ferrocim.checks import InputError
from ferrocim.snn.data.dataset import EEGDataset
from ferrocim.snn.data.grid import to_grid

__all__ = [
    "CACHE_FORMAT",
    "ChannelStats",
    "cache_is_current",
    "load_prepared",
    "read_cache_attrs",
    "read_channel_stats",
    "write_cache",
]

CACHE_FORMAT = "ferrocim.eeg-windows/3"
"""Version 3: records the channel statistics the windows were z-scored with. Version 2
(global normalisation, statistics not stored) and version 1 (z-scored per run) are
refused by name."""

_OLD_FORMATS = {
    "ferrocim.eeg-windows/1": "its trials were z-scored per run, the published method uses "
    "global channel statistics",
    "ferrocim.eeg-windows/2": "it does not record the channel mean and s.d. it was "
    "normalised with, which runs and `data prepare --stats-from` need",
}


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and s.d. (volts, ``(64,)``) that EEG was z-scored with.

    ``l_freq``/``h_freq`` (Hz): the band-pass the statistics were computed after (they
    apply only to data filtered the same way); ``origin``: where they came from, in words.
    """

    mean: np.ndarray
    std: np.ndarray
    ch_names: tuple[str, ...]
    l_freq: float
    h_freq: float
    origin: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_json`` reads it back exactly: float64 round-trips)."""
        return {
            "channel_mean": [float(v) for v in self.mean],
            "channel_std": [float(v) for v in self.std],
            "ch_names": list(self.ch_names),
            "l_freq": float(self.l_freq),
            "h_freq": float(self.h_freq),
            "origin": self.origin,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str) -> ChannelStats:
        """The inverse of :meth:`to_json`; InputError naming ``source`` when malformed."""
        try:
            out = cls(
                mean=np.asarray(data["channel_mean"], dtype=np.float64),
                std=np.asarray(data["channel_std"], dtype=np.float64),
                ch_names=tuple(data["ch_names"]),
                l_freq=float(data["l_freq"]),
                h_freq=float(data["h_freq"]),
                origin=str(data["origin"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed channel statistics ({exc!r})") from None
        n = len(out.ch_names)
        if out.mean.shape != (n,) or out.std.shape != (n,) or not (out.std >= 0).all():
            raise InputError(f"{source}: channel statistics must be {n} means and {n} s.d. ≥ 0")
        return out

    def digest(self) -> str:
        """A short hash of the values (keys the cache: other statistics rebuild it)."""
        import hashlib

        h = hashlib.sha256(np.ascontiguousarray(self.mean, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(self.std, dtype="<f8").tobytes())
        return h.hexdigest()[:16]


def write_cache(
    path: str | Path,
    arrays: dict[str, np.ndarray],
    *,
    params: dict[str, Any],
    source: dict[str, Any],
    ch_names: list[str],
    stats: ChannelStats | None = None,
    run_stats: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Write the arrays ``eeg, y, subject, run, onset`` and their provenance atomically.

    ``stats``: the global statistics the windows were z-scored with; ``run_stats``:
    ``(keys (K, 2), mean (K, 64), std (K, 64))`` of per-run normalisation.
    """
    import h5py

    from ferrocim.io_errors import expect_size

    path = Path(path)
    needs = 4 * np.asarray(arrays["eeg"]).size + 8 * sum(  # eeg as float32, the rest int64
        np.asarray(arrays[k]).size for k in ("y", "subject", "run", "onset")
    )
    with expect_size(needs), atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        n, _, t = arrays["eeg"].shape
        f.create_dataset(
            "eeg", data=arrays["eeg"].astype(np.float32), chunks=(min(n, 64), 64, t) if n else None
        )
        for key in ("y", "subject", "run", "onset"):
            f.create_dataset(key, data=np.asarray(arrays[key], dtype=np.int64))
        if stats is not None:
            f.create_dataset("channel_mean", data=np.asarray(stats.mean, dtype=np.float64))
            f.create_dataset("channel_std", data=np.asarray(stats.std, dtype=np.float64))
            meta = {k: v for k, v in stats.to_json().items() if not k.startswith("channel_")}
            f.attrs["stats"] = json.dumps(meta, sort_keys=True)
        if run_stats is not None:
            keys, mean, std = run_stats
            f.create_dataset("run_channel_keys", data=np.asarray(keys, dtype=np.int64))
            f.create_dataset("run_channel_mean", data=np.asarray(mean, dtype=np.float64))
            f.create_dataset("run_channel_std", data=np.asarray(std, dtype=np.float64))
        f.attrs["checksums"] = json.dumps({k: checksum(f[k][()]) for k in CHECKED if k in f})
        f.attrs["format"] = CACHE_FORMAT
        f.attrs["params"] = json.dumps(params, sort_keys=True)
        f.attrs["source"] = json.dumps(source, sort_keys=True)
        f.attrs["ch_names"] = json.dumps(list(ch_names))
        f.attrs["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        f.attrs["ferrocim_version"] = __version__
    return path


def _format_number(fmt: str) -> int:
    """3 for ``ferrocim.eeg-windows/3`` (-1 when it is no number)."""
    try:
        return int(fmt.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return -1


def checksum(data: np.ndarray) -> str:
    """CRC-32 of an array's bytes (little-endian, C order) as 8 hex digits: cheap enough
    to check every dataset of a cache on load (about 1 GB/s)."""
    arr = np.ascontiguousarray(data)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder == "big"):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return f"{zlib.crc32(memoryview(arr).cast('B')) & 0xFFFFFFFF:08x}"


#: The datasets whose checksums a cache records (attribute ``checksums``).
CHECKED = ("eeg", "y", "subject", "run", "onset")


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
        if _format_number(fmt) > _format_number(CACHE_FORMAT):
            raise InputError(
                f"{path}: prepared by a newer ferrocim (format {fmt!r}; this ferrocim "
                f"{__version__} reads {CACHE_FORMAT!r}); update ferrocim, or prepare the file "
                "again with this one (`ferrocim data prepare --force`)"
            )
        why = _OLD_FORMATS.get(fmt, "an unknown version")
        raise InputError(
            f"{path}: prepared by an older ferrocim (format {fmt!r}, expected "
            f"{CACHE_FORMAT!r}: {why}); prepare it again with `ferrocim data prepare`"
        )
    if fmt != CACHE_FORMAT:
        raise InputError(
            f"{path}: not a ferrocim EEG cache (format {attrs.get('format')!r}, "
            f"expected {CACHE_FORMAT!r})"
        )
    out = dict(attrs)
    for key in ("params", "source", "ch_names", "stats", "checksums"):
        if key in attrs:
            out[key] = json.loads(attrs[key])
    return out


def read_channel_stats(path: str | Path) -> ChannelStats:
    """The global channel statistics a cache was z-scored with.

    InputError naming the file when it was normalised per run (no population statistics).
    """
    import h5py

    attrs = read_cache_attrs(path)
    with h5py.File(path, "r") as f:
        if "channel_mean" not in f or "stats" not in attrs:
            how = attrs["params"].get("normalization")
            raise InputError(
                f"{path}: z-scored {'per run' if how == 'per_run' else how!r}, so it holds no "
                "single per-channel mean/s.d. of a population (prepare the training data "
                "with --normalization global)"
            )
        mean, std = f["channel_mean"][()], f["channel_std"][()]
    meta = attrs["stats"]
    return ChannelStats.from_json(
        {**meta, "channel_mean": mean, "channel_std": std, "ch_names": attrs["ch_names"]},
        str(path),
    )


def cache_is_current(path: str | Path, params: dict[str, Any], source: dict[str, Any]) -> bool:
    """True when ``path`` is a cache written with exactly these params and source files."""
    try:
        attrs = read_cache_attrs(path)
    except InputError:
        return False
    # compare through JSON so tuples and lists compare equal
    norm = json.loads(json.dumps({"params": params, "source": source}, sort_keys=True))
    return attrs["params"] == norm["params"] and attrs["source"] == norm["source"]


def check_arrays(
    path: str | Path, arrays: dict[str, np.ndarray], checksums: dict[str, str] | None
) -> None:
    """Raise an InputError naming the file and the dataset when the arrays of a cache are
    damaged: a checksum that differs from the one recorded, trials of different counts,
    labels other than 0/1, or EEG that is not finite."""
    again = "prepare it again with `ferrocim data prepare --force`"
    for key, want in (checksums or {}).items():
        if key in arrays and checksum(arrays[key]) != want:
            raise InputError(
                f"{path}: dataset {key!r} does not match the checksum recorded when it was "
                f"written (the file was changed or damaged); {again}"
            )
    n = len(arrays["eeg"])
    uneven = {k: len(v) for k, v in arrays.items() if len(v) != n}
    if uneven:
        raise InputError(f"{path}: datasets of unequal trial counts (eeg {n}, {uneven}); {again}")
    y = arrays["y"]
    bad = np.flatnonzero((y != 0) & (y != 1))
    if bad.size:
        raise InputError(
            f"{path}: dataset 'y' holds {bad.size} label(s) other than 0 (left) and 1 (right), "
            f"first {y[bad[0]]!r} at trial {int(bad[0])}; {again}"
        )
    finite = np.isfinite(arrays["eeg"]).reshape(n, -1).all(axis=1) if n else np.ones(0, bool)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise InputError(
            f"{path}: dataset 'eeg' holds non-finite values (NaN or inf) in "
            f"{int((~finite).sum())} trial(s), first trial {first}; {again}"
        )


def load_prepared(h5_path: str | Path) -> EEGDataset:
    """Load a cache written by ``prepare_eegmmidb`` as an :class:`EEGDataset` on the grid."""
    import h5py

    attrs = read_cache_attrs(h5_path)
    with h5py.File(h5_path, "r") as f:
        missing = [k for k in ("eeg", "y", "subject") if k not in f]
        if missing:
            raise InputError(f"{h5_path}: cache lacks dataset(s) {', '.join(missing)}")
        try:
            arrays = {k: f[k][()] for k in CHECKED if k in f}
        except OSError as exc:  # a damaged chunk
            raise InputError(
                f"{h5_path}: a dataset cannot be read ({exc}); the file is damaged: prepare "
                "it again with `ferrocim data prepare --force`"
            ) from None
    check_arrays(h5_path, arrays, attrs.get("checksums"))
    eeg = arrays["eeg"]
    y = arrays["y"].astype(np.int64)
    subject = arrays["subject"].astype(np.int64)
    x = to_grid(eeg.astype(np.float32, copy=False), attrs["ch_names"])
    meta = {
        "params": attrs["params"],
        "source": {k: v for k, v in attrs["source"].items() if k != "files"},
        "created": str(attrs.get("created", "")),
        "ferrocim_version": str(attrs.get("ferrocim_version", "")),
        "path": str(h5_path),
    }
    if "stats" in attrs:
        meta["stats"] = attrs["stats"]
    return EEGDataset(x=x, y=y, subject=subject, meta=meta)

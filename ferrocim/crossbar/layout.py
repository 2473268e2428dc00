"""Tile layout: which weight of a layer lives on which tile, row and column.

A layer's weight is viewed as the matrix ``(out, fan_in)`` (a conv kernel
``(out, in/groups, kh, kw)`` is flattened over its last three axes, as im2col unrolls it).
Crossbar rows carry the inputs (fan-in index), columns the outputs. The layer keeps one
state tensor; tiles are an index mapping over it, used for per-tile ADC, counters and
reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True)
class TileLayout:
    """Split of an ``(n_out, fan_in)`` weight matrix over tiles of ``tile_rows × tile_cols``."""

    weight_shape: tuple[int, ...]
    tile_rows: int
    tile_cols: int

    @property
    def n_out(self) -> int:
        """Outputs (crossbar columns in all)."""
        return self.weight_shape[0]

    @property
    def fan_in(self) -> int:
        """Inputs (crossbar rows in all)."""
        return math.prod(self.weight_shape[1:])

    @property
    def n_row_tiles(self) -> int:
        """Tiles along the inputs."""
        return math.ceil(self.fan_in / self.tile_rows)

    @property
    def n_col_tiles(self) -> int:
        """Tiles along the outputs."""
        return math.ceil(self.n_out / self.tile_cols)

    @property
    def n_tiles(self) -> int:
        """Number of tiles the layer occupies."""
        return self.n_row_tiles * self.n_col_tiles

    @cached_property
    def tile_ids(self) -> torch.Tensor:
        """Tile id (``tile_row_index * n_col_tiles + tile_col_index``) per weight, int64,
        shaped like the weight (CPU)."""
        col = torch.arange(self.n_out).unsqueeze(1) // self.tile_cols
        row = torch.arange(self.fan_in).unsqueeze(0) // self.tile_rows
        return (row * self.n_col_tiles + col).reshape(self.weight_shape)

    def tiles(self) -> pd.DataFrame:
        """One row per tile: id, grid position, and the weight rows/columns it holds."""
        recs = []
        for tr in range(self.n_row_tiles):
            for tc in range(self.n_col_tiles):
                r0, c0 = tr * self.tile_rows, tc * self.tile_cols
                r1, c1 = min(r0 + self.tile_rows, self.fan_in), min(c0 + self.tile_cols, self.n_out)
                recs.append(
                    {
                        "tile": tr * self.n_col_tiles + tc,
                        "tile_grid_row": tr,
                        "tile_grid_col": tc,
                        "inputs": f"{r0}:{r1}",
                        "outputs": f"{c0}:{c1}",
                        "rows_used": r1 - r0,
                        "cols_used": c1 - c0,
                    }
                )
        return pd.DataFrame.from_records(recs)

    def tile_map(self) -> pd.DataFrame:
        """One row per weight: flat index, its index in the weight tensor, its tile, and its
        row and column inside the tile."""
        n = self.n_out * self.fan_in
        flat = np.arange(n)
        out_idx, in_idx = np.divmod(flat, self.fan_in)
        data: dict[str, np.ndarray] = {"weight_index": flat}
        idx = np.unravel_index(flat, self.weight_shape)
        names = ["out", "in", "kh", "kw"] if len(self.weight_shape) == 4 else ["out", "in"]
        if len(names) != len(self.weight_shape):
            names = [f"dim{i}" for i in range(len(self.weight_shape))]
        for name, arr in zip(names, idx, strict=True):
            data[name] = arr
        tr, row = np.divmod(in_idx, self.tile_rows)
        tc, col = np.divmod(out_idx, self.tile_cols)
        data["tile"] = tr * self.n_col_tiles + tc
        data["row"] = row
        data["col"] = col
        return pd.DataFrame(data)

"""The in-memory data set the pipelines train on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferrocim.checks import InputError

__all__ = ["EEGDataset"]


@dataclass(frozen=True)
class EEGDataset:
    """EEG windows on the scalp grid with their labels.

    x: float32 ``(N, 1, 10, 11, T)`` z-scored EEG (dimensionless) on the 10×11 grid, time
    last. y: int64 ``(N,)`` 0 = left fist (T1), 1 = right fist (T2). subject: int64 ``(N,)``
    subject numbers. meta: preprocessing parameters and source (as recorded in the cache).
    """

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.ndim != 5 or self.x.shape[1:4] != (1, 10, 11):
            raise InputError(f"EEGDataset.x must be (N, 1, 10, 11, T), got {self.x.shape}")
        n = self.x.shape[0]
        for name in ("y", "subject"):
            a = getattr(self, name)
            if a.shape != (n,):
                raise InputError(f"EEGDataset.{name} must have shape ({n},), got {a.shape}")
        if self.x.dtype != np.float32 or self.y.dtype != np.int64 or self.subject.dtype != np.int64:
            raise InputError(
                "EEGDataset wants x float32, y and subject int64; got "
                f"{self.x.dtype}, {self.y.dtype}, {self.subject.dtype}"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def subjects(self) -> np.ndarray:
        """Sorted unique subject numbers."""
        return np.unique(self.subject)

    def subset(self, index: np.ndarray) -> EEGDataset:
        """The trials at ``index`` (a copy), with the same meta."""
        index = np.asarray(index)
        return EEGDataset(self.x[index], self.y[index], self.subject[index], dict(self.meta))

    def of_subjects(self, subjects: np.ndarray | list[int]) -> EEGDataset:
        """The trials of the given subjects, in their original order."""
        return self.subset(np.flatnonzero(np.isin(self.subject, subjects)))

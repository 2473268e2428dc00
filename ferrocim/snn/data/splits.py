"""Train/validation/test splits as numpy index arrays (sorted, disjoint).

- :func:`subject_block_folds`: k-fold cross-validation over contiguous blocks of subjects
  (sorted subject numbers cut into ``n_folds`` nearly equal runs, as ``numpy.array_split``);
- :func:`stratified_val_split`: a class-stratified validation share of some trials;
- :func:`sstl_folds`: per-subject class-stratified k-fold (subject-specific transfer learning).

Random splits take an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np

from ferrocim.checks import InputError, check_range, validate_type

__all__ = ["sstl_folds", "stratified_val_split", "subject_block_folds"]


def subject_block_folds(
    subjects: np.ndarray, n_folds: int = 5, fold: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx) of fold ``fold``: test = trials of the fold-th subject block."""
    subjects = np.asarray(subjects)
    ids = np.unique(subjects)
    check_range("n_folds", n_folds, 2, len(ids))
    check_range("fold", fold, 0, n_folds - 1)
    block = np.array_split(ids, int(n_folds))[int(fold)]
    test = np.isin(subjects, block)
    return np.flatnonzero(~test), np.flatnonzero(test)


def _class_permutations(y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    validate_type("rng", rng, np.random.Generator)
    y = np.asarray(y)
    return [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]


def stratified_val_split(
    y: np.ndarray, frac: float = 0.2, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx) into ``y``: ``floor(n_c * frac)`` trials of each class to val.

    The count is the published one (``int(len(cls_indices) * 0.2)``); the draw comes from
    ``rng`` (the published code shuffles with Python's ``random``, so the trials differ).
    """
    check_range("frac", frac, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    if rng is None:
        raise InputError("stratified_val_split needs an explicit rng (numpy.random.Generator)")
    val = [p[: int(len(p) * frac)] for p in _class_permutations(y, rng)]
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.intp)
    train_idx = np.setdiff1d(np.arange(len(y)), val_idx)
    return train_idx, val_idx


def sstl_folds(
    y: np.ndarray, k: int = 4, rng: np.random.Generator | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Class-stratified ``k``-fold split of one subject's trials: ``[(train_idx, test_idx)]``.

    Trials of each class are shuffled and dealt round-robin to the folds (the first fold
    gets one more where the counts do not divide).
    """
    check_range("k", k, 2)
    if rng is None:
        raise InputError("sstl_folds needs an explicit rng (numpy.random.Generator)")
    fold_of = np.empty(len(y), dtype=np.intp)
    offset = 0
    for p in _class_permutations(y, rng):
        fold_of[p] = (np.arange(len(p)) + offset) % k
        offset += len(p)
    out = []
    for f in range(int(k)):
        test = fold_of == f
        out.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return out

"""Splits: contiguous subject blocks, stratified validation, per-subject SSTL folds."""

from __future__ import annotations

import numpy as np
import pytest

from ferrocim.checks import InputError
from ferrocim.snn.data import sstl_folds, stratified_val_split, subject_block_folds
from ferrocim.snn.data.synthetic import subject_ids


def test_subject_blocks_of_the_103_subjects() -> None:
    subjects = np.repeat(np.array(subject_ids(103)), 45)
    assert len(subjects) == 4635
    seen = []
    for k in range(5):
        train, test = subject_block_folds(subjects, n_folds=5, fold=k)
        assert np.intersect1d(train, test).size == 0
        assert len(train) + len(test) == 4635
        block = np.unique(subjects[test])
        ids = subject_ids(103)
        i0 = ids.index(block[0])
        assert block.tolist() == ids[i0 : i0 + len(block)]  # contiguous
        seen.append(block)
    assert [len(b) for b in seen] == [21, 21, 21, 20, 20]
    assert np.array_equal(np.concatenate(seen), np.array(subject_ids(103)))
    with pytest.raises(InputError, match="'fold' must be <= 4"):
        subject_block_folds(subjects, 5, 5)


def test_stratified_validation_split() -> None:
    y = np.array([0] * 49 + [1] * 33)
    rng = np.random.default_rng(0)
    train, val = stratified_val_split(y, 0.2, rng)
    assert np.intersect1d(train, val).size == 0
    assert np.union1d(train, val).tolist() == list(range(82))
    # published count floor(0.2 n_c): 9.8 -> 9 and 6.6 -> 6 (rounding would give 10 and 7)
    assert (y[val] == 0).sum() == 9 and (y[val] == 1).sum() == 6
    again = stratified_val_split(y, 0.2, np.random.default_rng(0))
    assert np.array_equal(again[1], val)
    assert not np.array_equal(stratified_val_split(y, 0.2, np.random.default_rng(1))[1], val)
    with pytest.raises(InputError, match="explicit rng"):
        stratified_val_split(y, 0.2)
    with pytest.raises(InputError, match="'rng' must be Generator"):
        stratified_val_split(y, 0.2, 3)


def test_sstl_folds_partition_one_subject() -> None:
    y = np.array([0] * 22 + [1] * 23)
    folds = sstl_folds(y, 4, np.random.default_rng(2))
    assert len(folds) == 4
    tests = np.concatenate([te for _, te in folds])
    assert np.sort(tests).tolist() == list(range(45))  # every trial tested exactly once
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0 and len(train) + len(test) == 45
        assert 5 <= (y[test] == 0).sum() <= 6 and 5 <= (y[test] == 1).sum() <= 6
        assert 11 <= len(test) <= 12

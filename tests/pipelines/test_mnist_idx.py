"""The study's ``--data mnist --root DIR`` path on tiny MNIST-format files.

The files are written here with MNIST's own header layout (a big-endian int32 magic,
0x00000803 for images and 0x00000801 for labels, then the big-endian int32 sizes), by a
writer that shares nothing with the project's reader; images gzipped as MNIST ships them,
labels plain and gzipped."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferrocim.checks import InputError
from ferrocim.pipelines.energy_study import StudyConfig, load_data, read_idx, run_study
from ferrocim.pipelines.width_cards import preset_width_cards


def write_images(path: Path, imgs: np.ndarray) -> None:
    """MNIST image file: magic 0x00000803, count, rows, cols, then uint8 pixels."""
    n, rows, cols = imgs.shape
    raw = struct.pack(">IIII", 0x00000803, n, rows, cols) + imgs.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)


def write_labels(path: Path, labels: np.ndarray) -> None:
    """MNIST label file: magic 0x00000801, count, then uint8 labels."""
    raw = struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)


def tiny_mnist(root: Path, n_train: int = 48, n_test: int = 16, side: int = 28) -> dict:
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    data = {
        "xtr": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "ytr": rng.integers(0, 10, n_train, dtype=np.uint8),
        "xte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "yte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    write_images(root / "train-images-idx3-ubyte.gz", data["xtr"])
    write_labels(root / "train-labels-idx1-ubyte", data["ytr"])
    write_images(root / "t10k-images-idx3-ubyte.gz", data["xte"])
    write_labels(root / "t10k-labels-idx1-ubyte.gz", data["yte"])
    return data


def test_reader_reads_mnist_headers(tmp_path):
    data = tiny_mnist(tmp_path / "m", side=5)
    imgs = read_idx(tmp_path / "m" / "train-images-idx3-ubyte.gz")
    assert imgs.shape == (48, 5, 5) and imgs.dtype == np.uint8
    assert np.array_equal(imgs, data["xtr"])
    labels = read_idx(tmp_path / "m" / "train-labels-idx1-ubyte")
    assert labels.shape == (48,) and np.array_equal(labels, data["ytr"])


def test_load_data_shapes_and_scaling(tmp_path):
    data = tiny_mnist(tmp_path / "m")
    d = load_data(StudyConfig(data="mnist", root=str(tmp_path / "m")))
    assert tuple(d.x_train.shape) == (48, 784) and tuple(d.x_test.shape) == (16, 784)
    # pixels / 255, row-major flattening of each 28x28 image
    assert d.x_train[3, 28 * 2 + 5].item() == pytest.approx(data["xtr"][3, 2, 5] / 255.0)
    assert float(d.x_test.max()) <= 1.0 and float(d.x_test.min()) >= 0.0
    assert d.y_train.tolist() == data["ytr"].tolist()
    assert d.y_test.tolist() == data["yte"].tolist()


def test_mismatched_files_are_refused(tmp_path):
    tiny_mnist(tmp_path / "m", side=4)
    write_labels(tmp_path / "m" / "train-labels-idx1-ubyte", np.zeros(47, np.uint8))
    with pytest.raises(InputError, match="differ in length"):
        load_data(StudyConfig(data="mnist", root=str(tmp_path / "m")))
    (tmp_path / "m" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(InputError, match="no t10k-images-idx3-ubyte"):
        load_data(StudyConfig(data="mnist", root=str(tmp_path / "m")))


def test_one_epoch_study_on_784_inputs(tmp_path):
    tiny_mnist(tmp_path / "m")
    cards = preset_width_cards(tmp_path / "cards", (2e-8,))
    cfg = StudyConfig(
        widths=(2e-8,),
        rules=("mixed",),
        epochs=1,
        data="mnist",
        root=str(tmp_path / "m"),
        hidden=(16,),  # 784-16-10 keeps the test cheap; the default is 784-256-128-10
    )
    run_study(cfg, cards, tmp_path / "out", report=False, progress=False)
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(df) == 1 and 0.0 <= df["final_acc"].iloc[0] <= 1.0
    assert (Path(df["run_dir"].iloc[0]) / "metrics.csv").is_file()

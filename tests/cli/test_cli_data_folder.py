"""`data synth --out DIR` then `train --data DIR`: the folder is prepared once beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ferrocim.cli import _load_run_config, main
from ferrocim.pipelines.config import DataConfig, load_config


def test_an_edf_folder_as_data_is_prepared_beside_it(tmp_path, monkeypatch):
    calls = []

    def fake_prepare(root, out, **kw):
        calls.append((Path(root), Path(out), kw))
        Path(out).write_bytes(b"h5")
        return Path(out)

    monkeypatch.setattr("ferrocim.snn.data.prepare_eegmmidb", fake_prepare)
    (tmp_path / "synth" / "S001").mkdir(parents=True)
    cfg = _load_run_config("float", {"data_source": str(tmp_path / "synth")})
    assert cfg.data.source == "prepared" and cfg.data.path == str(tmp_path / "synth.h5")
    ((root, out, kw),) = calls
    assert root == tmp_path / "synth" and out == tmp_path / "synth.h5"
    assert set(kw) == {"progress"}  # the published preprocessing: prepare's defaults
    (tmp_path / "plain").mkdir()  # a folder without subjects: the error says what to run
    res = CliRunner().invoke(main, ["train", "float", "--data", str(tmp_path / "plain")])
    assert res.exit_code == 2 and "ferrocim data prepare --root" in res.output


def test_data_synth_writes_trains_default_and_says_the_next_command(tmp_path, monkeypatch):
    got = {}

    def fake_synth(out, n, *, seed, progress):
        got.update(n=n, seed=seed)
        return Path(out)

    monkeypatch.setattr("ferrocim.snn.data.synthesize_edf", fake_synth)
    out = tmp_path / "synth"
    res = CliRunner().invoke(main, ["data", "synth", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert got == {"n": DataConfig().n_subjects, "seed": DataConfig().synth_seed}
    assert f"next: ferrocim train float --data {out} (prepares it once into {out}.h5)" in (
        res.output
    )


@pytest.mark.slow
def test_a_synth_folder_gives_the_data_train_generates(tmp_path):
    from ferrocim.pipelines.data import _load_source
    from ferrocim.snn.data import load_prepared

    res = CliRunner().invoke(
        main, ["data", "synth", "--out", str(tmp_path / "synth"), "--subjects", "2"]
    )
    assert res.exit_code == 0, res.output
    cfg = _load_run_config("float", {"data_source": str(tmp_path / "synth"), "fold": 0})
    mine = load_prepared(cfg.data.path)
    builtin = _load_source(DataConfig(n_subjects=2, cache_dir=str(tmp_path / "cache")))
    np.testing.assert_array_equal(mine.x, builtin.x)
    np.testing.assert_array_equal(mine.y, builtin.y)
    np.testing.assert_array_equal(mine.subject, builtin.subject)


def test_evaluate_takes_an_edf_folder_too(tmp_path, monkeypatch):
    seen = {}

    def fake_evaluate(run_dir, *, data, **kw):
        seen["data"] = data
        return {"own_data": False, "data": "x", "exclude_channels": [], "split": "test",
                "acc": 50.0, "n": 2, "subjects": [1], "loss": 0.7, "precision": "fp32"}  # fmt: skip

    monkeypatch.setattr("ferrocim.pipelines.data.prepare_folder", lambda f: Path(f"{f}.h5"))
    monkeypatch.setattr("ferrocim.pipelines.evaluate.evaluate_run", fake_evaluate)
    run = tmp_path / "run"
    run.mkdir()
    load_config(None, {}, kind="float").save(run / "config.toml")
    (tmp_path / "new" / "S007").mkdir(parents=True)
    res = CliRunner().invoke(main, ["evaluate", str(run), "--data", str(tmp_path / "new")])
    assert res.exit_code == 0, res.output
    assert seen["data"].source == "prepared" and seen["data"].path == f"{tmp_path / 'new'}.h5"

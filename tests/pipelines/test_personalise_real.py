"""Personalisation on the real subject S001 from the command line (skipped where
``$FERROCIM_SHARED/eegmmidb`` is absent): prepare, import, evaluate, SSTL end to end."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "snn"))
from eeg_helpers import SHARED_EEGMMIDB

from ferrocim.cli import main
from ferrocim.snn import EEGSNN, NetworkConfig


def _ok(args: list[str]) -> str:
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    return res.output


def test_s001_prepare_import_evaluate_sstl(tmp_path, eeg_ferro_state) -> None:
    if not (SHARED_EEGMMIDB / "S001" / "S001R04.edf").is_file():
        pytest.skip(f"real EEGMMIDB subject S001 not found under {SHARED_EEGMMIDB}")
    h5 = tmp_path / "s001.h5"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # shown even if an earlier test read these files
        out = _ok(["data", "prepare", "--root", str(SHARED_EEGMMIDB), "--subjects", "1",
                   "--out", str(h5)])  # fmt: skip
    assert "45 trials (23 left, 22 right) from 1 subjects" in out
    # on stderr in a `ferrocim` process; under pytest possibly in its warning record
    said = out + "\n".join(str(w.message) for w in caught)
    assert "S001R01.edf: truncated EDF file" in said and "S001R02.edf: truncated EDF" in said
    model = EEGSNN(NetworkConfig(width=0.25), generator=torch.Generator().manual_seed(1))
    ckpt = tmp_path / "model.pth"
    torch.save(eeg_ferro_state(model), ckpt)
    run = tmp_path / "dev"
    _ok(["import", "eeg-ferro", str(ckpt), "--out", str(run), "--kind", "device",
         "--data", str(h5)])  # fmt: skip
    out = _ok(["evaluate", str(run)])
    assert f"over 45 trials of prepared file {h5} (subjects 1;" in out
    sstl = tmp_path / "sstl"
    _ok(["sstl", "--base-run", str(run), "--data", str(h5), "--sstl-subjects", "1",
         "--sstl-epochs", "1", "--run-dir", str(sstl), "--threads", "1"])  # fmt: skip
    table = pd.read_csv(sstl / "sstl.csv")
    assert sorted(table["n_test"]) == [11, 11, 11, 12] and len(table) == 4
    summary = json.loads((sstl / "summary.json").read_text())
    assert summary["subjects"] == [1] and summary["programming_events"] > 0

"""`ferrocim sweep`: grid expansion and validation, a 2×2 grid on a LocalCluster of worker
processes (same table twice, nothing redone, a killed worker), failures, the report."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from click.testing import CliRunner

from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.pipelines.sweep import local_cluster, run_sweep
from ferrocim.pipelines.sweep_spec import canonical, expand, point_id, read_sweep, resolve

EPS, THR_ASYM = "array.programming.eps", "array.programming.thr_asym"  # the paper's knobs
GRID = {EPS: [0.01, 0.02], "seed": [0, 1]}


@pytest.fixture(scope="module")
def base(data_dir: Path) -> dict:
    """A device run of a couple of seconds, checkpointed every step (the kill test)."""
    return {
        "kind": "device",
        "data": {
            "n_subjects": 3,
            "n_folds": 3,
            "cache_dir": str(data_dir),
            "max_train_trials": 8,
            "max_eval_trials": 6,
        },
        "network": {"width": 0.25},
        "train": {
            "batch_size": 4,
            "eval_batch_size": 8,
            "epochs": 1,
            "lr": 0.01,
            "checkpoint_every": 1,
        },
    }


def write_sweep(path: Path, base: dict, **tables) -> Path:
    path.write_text(tomli_w.dumps({**base, **tables}))
    return path


def without_wall(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["wall_s"])


# ---------------------------------------------------------------------------------------
# the sweep file (no cluster)
# ---------------------------------------------------------------------------------------
def test_expand_crosses_grid_zip_and_points_in_order():
    axes, combos = expand(
        {"a": [1, 2]},
        [{"b": [3, 4], "c": [5, 6]}],
        [{"d": 7}, {"d": 8, "e": {"f": 9}}],
        "s.toml",
    )
    assert axes == ("a", "b+c", "points")
    assert len(combos) == 8
    assert combos[0] == {"a": 1, "b": 3, "c": 5, "d": 7}
    assert combos[1] == {"a": 1, "b": 3, "c": 5, "d": 8, "e.f": 9}
    assert combos[2] == {"a": 1, "b": 4, "c": 6, "d": 7}
    assert combos[7] == {"a": 2, "b": 4, "c": 6, "d": 8, "e.f": 9}


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"zip": [{"seed": [0, 1], "data.fold": [0]}]}, r"\[\[zip\]\] table 1 lists must have one"),
        ({"grid": {"seed": [0]}, "points": [{"seed": 1}]}, "field 'seed' is swept twice"),
        ({"grid": {"seed": []}}, r"\[grid\] 'seed' must be a non-empty list"),
        ({"points": [{"seed": 1}, {"seed": 1}]}, "points 0 .* and 1 .* resolve to the same"),
        ({"grid": {"data.fold": [0, 3]}}, r"point 1 \(data.fold=3\).*\n  data.fold: must be < "),
        ({"grid": {"array.epz": [0.1]}}, r"point 0 \(array.epz=0.1\).*\n.*array.epz"),
    ],
)
def test_bad_sweep_files_are_refused(tmp_path, base, tables, message):
    with pytest.raises(InputError, match=message):
        read_sweep(write_sweep(tmp_path / "s.toml", base, **tables))


def test_bad_point_names_point_and_field_and_writes_nothing(tmp_path, base):
    path = write_sweep(tmp_path / "s.toml", base, grid={EPS: [0.05, 2.0], "seed": [0]})
    res = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert f"point 1 ({EPS}=2.0, seed=0) is invalid" in res.output
    assert f"{EPS}: Input should be less than or equal to 1" in res.output
    assert not (tmp_path / "out").exists()


def test_point_id_is_the_hash_of_the_canonical_config(base):
    cfg = resolve(base, {EPS: 0.02})
    text = json.dumps(canonical(cfg), sort_keys=True, separators=(",", ":"))
    assert point_id(cfg) == hashlib.sha256(text.encode()).hexdigest()[:16]
    moved = cfg.model_copy(update={"name": "elsewhere", "out_dir": "/tmp/x"})
    assert point_id(moved) == point_id(cfg)  # where a run goes is not what it computes
    assert point_id(resolve(base, {EPS: 0.03})) != point_id(cfg)


def test_example_sweep_file_is_the_papers_eps_sweep():
    sweep = read_sweep(Path(__file__).parents[2] / "configs" / "sweep_eps.toml")
    assert len(sweep.points) == 25  # 5 folds × (3 eps + 2 thr_asym)
    eps = sorted({(p.values.get(EPS), p.values.get(THR_ASYM, 1.0)) for p in sweep.points})
    assert eps == [(0.025, 1.0), (0.05, 1.0), (0.075, 0.5), (0.075, 1.0), (0.075, 2.0)]


def test_dry_run_lists_points(tmp_path, base):
    path = write_sweep(tmp_path / "s.toml", base, grid=GRID)
    res = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "o"), "--dry-run"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 4 and lines[3].endswith(f"new      {EPS}=0.02, seed=1")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------
# on a LocalCluster of worker processes
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2, 1, dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def first(cluster, base, tmp_path_factory):
    """The 2×2 grid, run once."""
    root = tmp_path_factory.mktemp("sweep")
    sweep = read_sweep(write_sweep(root / "s.toml", base, grid=GRID))
    result = run_sweep(sweep, root / "a", scheduler=cluster.scheduler_address, progress=False)
    return sweep, result, pd.read_parquet(result.results)


def test_grid_runs_every_point(first):
    sweep, result, table = first
    assert (result.ran, result.done, result.failed) == (4, 4, [])
    assert list(table["status"]) == ["done"] * 4
    assert list(table[EPS]) == [0.01, 0.01, 0.02, 0.02]
    assert list(table["seed"]) == [0, 1, 0, 1]
    assert list(table["point"]) == [p.id for p in sweep.points]
    for _, row in table.iterrows():
        run = result.out / row["run_dir"]
        summary = json.loads((run / "summary.json").read_text())
        assert row["test_acc"] == summary["test_acc"]
        events = pd.read_csv(run / "events.csv")
        crossings = int(events["ltp_crossings"].sum() + events["ltd_crossings"].sum())
        assert row["programming_events"] == crossings > 0
        assert row["steps"] == 2  # 8 trials / batch 4
        assert row["energy_j"] == pytest.approx(pd.read_csv(run / "energy.csv")["energy_j"].sum())
    # the smaller threshold fires more: eps 0.01 has more events than 0.02 at each seed
    ev = table.set_index([EPS, "seed"])["programming_events"]
    assert ev[0.01, 0] > ev[0.02, 0] and ev[0.01, 1] > ev[0.02, 1]


def test_same_grid_twice_gives_the_same_table(first, cluster, tmp_path):
    sweep, _, table = first
    again = run_sweep(sweep, tmp_path / "b", scheduler=cluster.scheduler_address, progress=False)
    assert again.failed == []
    pd.testing.assert_frame_equal(without_wall(pd.read_parquet(again.results)), without_wall(table))


def test_rerun_after_completion_does_no_work(first, cluster):
    sweep, result, table = first
    mtimes = sorted(p.stat().st_mtime_ns for p in result.out.glob("runs/*/summary.json"))
    again = run_sweep(sweep, result.out, scheduler=cluster.scheduler_address, progress=False)
    assert (again.ran, again.skipped, again.done) == (0, 4, 4)
    assert sorted(p.stat().st_mtime_ns for p in result.out.glob("runs/*/summary.json")) == mtimes
    pd.testing.assert_frame_equal(pd.read_parquet(again.results), table)


def test_failed_point_is_recorded_and_the_sweep_goes_on(cluster, base, tmp_path):
    fake = tmp_path / "not-trained"
    fake.mkdir()
    # a float run of the sweep's configuration, without checkpoints
    (fake / "config.toml").write_text(tomli_w.dumps({**base, "kind": "float"}))
    points = [{"kind": "float"}, {"kind": "retune", "retune": {"float_run": str(fake)}}]
    path = write_sweep(tmp_path / "s.toml", base, points=points)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main, ["sweep", str(path), "--out", str(out), "--scheduler", cluster.scheduler_address]
    )
    assert res.exit_code == 1
    assert "1/2 points done" in res.output and "FAILED point 1" in res.output
    table = pd.read_parquet(out / "results.parquet")
    assert list(table["status"]) == ["done", "failed"]
    assert table["error"][1].startswith("InputError: No checkpoint at ")
    failure = json.loads((out / table["run_dir"][1] / "failure.json").read_text())
    assert failure["error"] == table["error"][1]


@pytest.mark.slow
def test_killed_worker_loses_nothing(first, cluster, tmp_path):
    """A worker process killed (SIGKILL, by pid) mid-point: the point resumes elsewhere."""
    from distributed import Client

    sweep, _, reference = first
    out = tmp_path / "killed"
    killed: list[str] = []
    stop = threading.Event()

    def kill_one_mid_point() -> None:
        with Client(cluster.scheduler_address) as client:
            while not stop.is_set() and not killed:
                for run in out.glob("runs/*"):
                    if not (run / "checkpoints" / "last.pt").exists():
                        continue  # not started or before its first checkpoint
                    if (run / "summary.json").exists():
                        continue  # finished
                    for worker, keys in client.processing().items():
                        if any(str(k).startswith(f"point-{run.name}") for k in keys):
                            pid = client.run(os.getpid, workers=[worker])[worker]
                            os.kill(pid, signal.SIGKILL)
                            killed.append(run.name)
                            return
                time.sleep(0.01)

    killer = threading.Thread(target=kill_one_mid_point)
    killer.start()
    try:
        result = run_sweep(sweep, out, scheduler=cluster.scheduler_address, progress=False)
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 1
    assert (result.done, result.failed) == (4, [])
    table = pd.read_parquet(result.results)
    pd.testing.assert_frame_equal(without_wall(table), without_wall(reference))


# ---------------------------------------------------------------------------------------
# the report, from files only
# ---------------------------------------------------------------------------------------
def test_sweep_report_draws_the_paper_figures(tmp_path):

    rows = []
    for i, (kind, eps, q, x) in enumerate(
        [
            ("device", 0.025, None, None),
            ("device", 0.05, None, None),
            ("retune", 0.05, 2, None),
            ("retune", 0.05, 2, 4.0),
            ("sstl", 0.05, None, None),
            ("device", 0.075, None, None),
        ]
    ):
        rows.append(
            {
                "point": f"p{i}",
                "index": i,
                "status": "failed" if i == 5 else "done",
                "error": "InputError: boom" if i == 5 else None,
                "run_dir": f"runs/p{i}",
                "kind": kind,
                "seed": 0,
                EPS: eps,
                THR_ASYM: 1.0,
                "transfer.q": q,
                "transfer.x": x,
                "test_acc": 70.0 + i,
                "transfer_test_acc": 60.0 + i if kind == "retune" else None,
                "programming_events": 1000 * (i + 1) if kind == "device" else None,
                "wall_s": 1.0,
            }
        )
    for col in ("acc_before", "acc_after", "pulses", "energy_j"):
        for r in rows:
            r[col] = None
    (tmp_path / "runs" / "p4").mkdir(parents=True)
    pd.DataFrame(
        {
            "subject": [1, 1, 2],
            "fold": [0, 1, 0],
            "acc_before": [50.0, 60.0, 70.0],
            "acc_after": [60.0, 70.0, 75.0],
        }
    ).to_csv(tmp_path / "runs" / "p4" / "sstl.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "results.parquet")
    res = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "report.html").read_text()
    for title in (
        "Accuracy vs programming events per eps",
        "Accuracy vs quantisation q and programming noise x",
        "SSTL per subject",
        "Points not done",
        "InputError: boom",
    ):
        assert title in html
    assert len(list((tmp_path / "report_figures").glob("*.png"))) == 3


def test_resume_drops_events_logged_after_the_checkpoint(tiny, tmp_path):
    """A kill between an event row and the next checkpoint must not count it twice."""
    from ferrocim.pipelines.train import train

    cfg = tiny("device", train__checkpoint_every=1, network__width=0.25)
    full = train(cfg, run_dir=tmp_path / "full")
    part = train(cfg, run_dir=tmp_path / "part", stop_after_steps=1)  # checkpoint at step 1
    ev = part.read_events()
    stale = ev[ev["step"] == 0].assign(step=1)  # as if step 1 ran and logged, then a kill
    stale.to_csv(part.events, mode="a", header=False, index=False)
    resumed = train(cfg, run_dir=tmp_path / "part", resume=True)
    pd.testing.assert_frame_equal(resumed.read_events(), full.read_events())


def test_one_coordinator_per_out(tmp_path, base):
    """A second sweep into an --out whose sweep still runs is refused naming the holder;
    nothing of it is written."""
    from ferrocim.locks import writer_lock

    path = write_sweep(tmp_path / "s.toml", base, grid=GRID)
    out = tmp_path / "out"
    with writer_lock(out, "ferrocim sweep", inside=True):
        res = CliRunner().invoke(main, ["sweep", str(path), "--out", str(out)])
    assert res.exit_code == 2
    assert "is being written by another ferrocim process: pid" in res.output
    assert sorted(p.name for p in out.iterdir()) == []  # no sweep.toml, no runs/


@pytest.mark.parametrize("env", [{"TQDM_DISABLE": "1"}, {}])
def test_sweep_bar_follows_the_progress_rules(monkeypatch, env):
    """The bar is off with TQDM_DISABLE=1 and when stderr is no terminal (as here)."""
    from ferrocim.pipelines.sweep import _progress

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with _progress(total=2, desc="sweep") as bar:
        assert bar.disable

"""CPU thread control: configure_threads, its default, and --threads on every command."""

from __future__ import annotations

import click
import pytest
import torch

from ferrocim import threads
from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.pipelines.config import RunConfig


@pytest.fixture(autouse=True)
def _restore_threads():
    before, chosen = torch.get_num_threads(), list(threads._chosen)
    yield
    torch.set_num_threads(before)
    threads._chosen[:] = chosen


def test_explicit_count_is_set_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.configure_threads(2) == 2 and torch.get_num_threads() == 2
    # a pipeline whose config leaves threads unset keeps the explicit choice
    assert threads.configure_threads(None) == 2 and torch.get_num_threads() == 2
    # a sweep worker asks for its share of the machine
    assert threads.configure_threads(None, workers=2) == 1


def _machine(monkeypatch: pytest.MonkeyPatch, *, load: float, runnable: float = 0.0) -> None:
    """An 8-core machine (this process may use all 8) at ``load``, ``runnable`` tasks now."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "physical_cores", lambda: 8)
    monkeypatch.setattr(threads, "system_cores", lambda: 8)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(threads, "_runnable_now", lambda: runnable)
    monkeypatch.setattr(threads, "_own_load", lambda: 0.0)


def test_default_is_the_physical_cores_whatever_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # the count changes rounding, so the default may not follow the load (same seed, same
    # result on one machine)
    for load, runnable in ((0.2, 0.0), (3.6, 0.0), (0.1, 7.0)):
        _machine(monkeypatch, load=load, runnable=runnable)
        assert threads.default_threads() == 8 and threads.default_threads(workers=2) == 4
    assert threads.default_threads(workers=10_000) == 1
    monkeypatch.setenv("FERROCIM_THREADS", "lots")
    with pytest.raises(InputError, match=r"FERROCIM_THREADS='lots'.*auto"):
        threads.default_threads()


def test_auto_is_idle_physical_cores_shared_by_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERROCIM_THREADS", "auto")
    _machine(monkeypatch, load=0.2)  # idle: all physical cores
    assert threads.default_threads() == 8
    assert threads.default_threads(workers=2) == 4
    assert threads.default_threads(workers=10_000) == 1
    _machine(monkeypatch, load=3.6)  # 4.4 idle
    assert threads.default_threads() == 4 and threads.default_threads(workers=4) == 2
    _machine(monkeypatch, load=0.1, runnable=7.0)  # 7 jobs just started: the lag is covered
    assert threads.default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads(workers=2) == 3


@pytest.mark.parametrize(
    ("usable", "workers", "load", "system", "own", "runnable", "expected"),
    [
        (8, 1, 0.3, 8, 0.0, None, 8),  # 7.7 idle → 8
        (8, 1, 3.6, 8, 0.0, None, 4),  # 4.4 → 4
        (8, 1, 3.5, 8, 0.0, None, 5),  # 4.5: halves round up
        (2, 1, 1.0, 2, 0.0, None, 1),  # 2 cores, one busy loop
        (2, 1, 0.4, 2, 0.0, None, 2),  # 1.6 → 2
        (8, 1, 9.0, 8, 0.0, None, 1),  # overloaded: at least 1
        (8, 2, 0.0, 8, 0.0, None, 4),  # idle, two workers: 8 // 2
        (8, 1, 4.0, 8, 2.0, None, 6),  # half the load is this process's own: 8 - 2
        (8, 1, 0.1, 8, 0.0, 3.0, 5),  # 3 tasks runnable now outweigh the lagging average
        (8, 1, 5.0, 8, 0.0, 1.0, 3),  # ... and the average a lull
        (2, 1, 10.0, 16, 0.0, None, 2),  # quota of 2 on a 16-core host at load 10: 6 idle
        (8, 1, None, 8, 0.0, None, 8),  # no load average: the usable cores
        (8, 3, None, 8, 0.0, None, 2),
    ],
)
def test_choose_threads_hand_cases(
    usable: int,
    workers: int,
    load: float | None,
    system: int,
    own: float,
    runnable: float | None,
    expected: int,
) -> None:
    c = threads.choose_threads(
        usable, workers, load=load, system_cores=system, own_load=own, runnable=runnable
    )
    assert c.threads == expected
    assert c.source == ("physical cores" if load is None and runnable is None else "idle cores")
    assert str(usable) in c.reason


def test_the_choice_is_recorded_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from ferrocim.pipelines.rundir import environment

    _machine(monkeypatch, load=6.0)
    monkeypatch.setenv("FERROCIM_THREADS", "auto")
    threads._chosen.clear()
    assert threads.configure_threads(None) == 2
    env = environment("cpu")
    assert env["torch_threads"] == 2
    assert env["threads_choice"]["source"] == "idle cores"
    assert set(env) >= {"omp_wait_policy", "gomp_spincount"}
    assert "2.0 of 8 physical cores idle (1-min load 6.00" in env["threads_choice"]["reason"]
    threads.configure_threads(3)
    assert threads.last_choice() == threads.ThreadChoice(
        3, "--threads", threads.last_choice().reason
    )
    assert threads.configure_threads(None) == 3 and threads.last_choice().source == "kept"


def test_own_load_is_a_share_of_the_process_cpu_time() -> None:
    own = threads._own_load()  # Linux: from /proc; this process has been busy importing
    assert 0.0 <= own <= 2 * (torch.multiprocessing.cpu_count() or 1)


def test_a_resumed_run_reuses_the_count_it_started_with(tmp_path) -> None:
    import json

    from ferrocim.pipelines.rundir import RunDir
    from ferrocim.pipelines.runs import recorded_threads

    run = RunDir(tmp_path)
    assert recorded_threads(run) is None  # no env.json
    run.env.write_text(json.dumps({"torch_threads": 3}))
    assert recorded_threads(run) == 3
    run.env.write_text(json.dumps({"torch_threads": True}))
    assert recorded_threads(run) is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_counts_name_the_option(bad: object) -> None:
    with pytest.raises(InputError, match=r"threads.*--threads"):
        threads.configure_threads(bad)  # type: ignore[arg-type]


def test_config_field() -> None:
    assert RunConfig().threads is None and RunConfig(threads=3).threads == 3
    with pytest.raises(ValueError, match="threads"):
        RunConfig(threads=0)


def _leaves(group: click.Group, prefix: str = ""):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _leaves(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_every_command_has_threads() -> None:
    leaves = dict(_leaves(main))
    assert {"devices list", "train float", "sstl", "evaluate", "demo"} <= leaves.keys()
    for name, cmd in leaves.items():
        assert any("--threads" in p.opts for p in cmd.params), name


def test_open_run_resume_sets_the_recorded_count(tmp_path) -> None:
    import json

    from ferrocim.pipelines.runs import open_run

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text(RunConfig().to_toml())
    (run_dir / "env.json").write_text(json.dumps({"torch_threads": 3}))
    threads._chosen.clear()
    open_run(RunConfig(), run_dir=run_dir, resume=True)
    assert torch.get_num_threads() == 3
    open_run(RunConfig(threads=1), run_dir=run_dir, resume=True)  # given now: wins
    assert torch.get_num_threads() == 1


def test_openmp_waits_passively_unless_torch_came_first_or_the_user_chose() -> None:
    """``import ferrocim`` sets OMP_WAIT_POLICY=PASSIVE before torch loads libgomp (which
    reads it once); not after torch, not over the user's own setting."""
    import os
    import subprocess
    import sys

    probe = "import os, sys; {pre}import ferrocim; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    cases = [
        ("", {}, "PASSIVE"),
        ("sys.modules['torch'] = None; ", {}, "None"),  # torch loaded first: too late
        ("", {"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),
        ("", {"GOMP_SPINCOUNT": "300000"}, "None"),
    ]
    for pre, extra, want in cases:
        out = subprocess.run(
            [sys.executable, "-c", probe.format(pre=pre)],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == want, (pre, extra)


def test_single_thread_sets_one_and_restores_the_count() -> None:
    torch.set_num_threads(2)
    with threads.single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(KeyError), threads.single_thread():
        raise KeyError("inside")
    assert torch.get_num_threads() == 2


def test_online_updates_on_one_thread_equal_those_on_two() -> None:
    """The claim single_thread's SSTL use rests on: online updates (batch 1, fc1 + fc2 on
    tiles, cached prefix, Adam through PulseOptimizer) give the same weights, device
    states and programming events bit for bit on 1 and on 2 threads."""
    import torch.nn.functional as F

    from ferrocim.crossbar import AnalogConfig, PulseOptimizer
    from ferrocim.pipelines.optim import param_groups
    from ferrocim.pipelines.prefix import PrefixForward
    from ferrocim.pipelines.retune import set_trainable
    from ferrocim.snn import EEGSNN, NetworkConfig

    g = torch.Generator().manual_seed(3)
    x = (torch.rand(4, 1, 10, 11, 40, generator=g) > 0.6).float() * 3.0
    y = torch.tensor([0, 1, 1, 0])

    def run(n_threads: int) -> tuple[int, dict[str, torch.Tensor]]:
        torch.set_num_threads(n_threads)
        cfg = NetworkConfig(analog=AnalogConfig(card="dut2"), n_steps=40, dropout=0.3)
        model = EEGSNN(cfg, generator=torch.Generator().manual_seed(0))
        forward = PrefixForward(model, x, y, "r1")
        set_trainable(model, ["fc1", "fc2"])
        model.train()
        opt = PulseOptimizer(torch.optim.Adam(param_groups(model, 6e-3, scaling="none")), model)
        events = 0
        for s in range(12):
            idx = torch.tensor([s % 4])
            opt.zero_grad(set_to_none=True)
            out = forward(idx, torch.Generator().manual_seed(s))
            F.cross_entropy(out, y[idx]).backward()
            events += opt.step().total()["crossings"]
        state = {k: v.clone() for k, v in model.state_dict().items() if torch.is_tensor(v)}
        return events, state

    ev1, s1 = run(1)
    ev2, s2 = run(2)
    assert ev1 == ev2 > 0
    assert s1.keys() == s2.keys()
    for k in s1:
        assert torch.equal(s1[k], s2[k]), k

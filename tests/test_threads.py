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


def test_default_is_physical_cores_shared_by_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = threads.physical_cores()
    assert 1 <= cores <= (torch.multiprocessing.cpu_count() or 1)
    assert threads.default_threads() == cores
    assert threads.default_threads(workers=2) == max(1, cores // 2)
    assert threads.default_threads(workers=10_000) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads(workers=2) == 3


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
        assert any(p.name == "threads" for p in cmd.params), name

"""Safe names, writer locks and output errors (issue 27), as units."""

from __future__ import annotations

import errno
import json
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ferrocim.checks import InputError
from ferrocim.io_errors import OutputError, check_writable, describe, output_errors
from ferrocim.locks import LockedError, lock_file_for, writer_lock
from ferrocim.names import MAX_NAME_BYTES, check_name, inside, name_problem, safe_name

HOSTILE = [
    ("../../../PWN", "path separator"),
    ("/abs/path", "path separator"),
    ("a/b", "path separator"),
    ("a\\b", "path separator"),
    ("a\x00b", "NUL"),
    ("", "empty"),
    ("..", "names a folder"),
    (".hidden", "starts with '.'"),
    ("tab\there", "control character"),
    ("what?", "'?'"),
    ("CON", "reserved"),
    ("é" * 70, "140 bytes long"),
]


@pytest.mark.parametrize(("name", "why"), HOSTILE)
def test_check_name_refuses_with_the_source_and_the_reason(name, why):
    with pytest.raises(InputError, match="--name") as info:
        check_name(name, "--name")
    assert why in str(info.value)


@pytest.mark.parametrize("name", ["D4", "run-1.2_b", "Gerät_Ω", "日本語", "x" * MAX_NAME_BYTES])
def test_check_name_keeps_good_names_of_any_script(name):
    assert check_name(name, "--name") == name
    assert safe_name(name) == name  # a safe name is kept as it is


@pytest.mark.parametrize(("name", "_why"), HOSTILE)
def test_safe_name_is_one_safe_component(name, _why, tmp_path):
    out = safe_name(name)
    assert name_problem(out) is None
    assert "/" not in out and "\x00" not in out and not out.startswith(".")
    assert len(out.encode()) <= MAX_NAME_BYTES
    assert inside(tmp_path, out).parent == tmp_path


def test_safe_name_examples_and_distinct_results():
    assert safe_name("../../../PWN_b2912").startswith("PWN_b2912-")
    assert safe_name("/etc/passwd").startswith("etc_passwd-")
    # different unsafe names never collide (a hash of the original is appended)
    assert safe_name("a/b") != safe_name("a\\b") != safe_name("a?b")
    long = safe_name("é" * 200)
    assert long.startswith("é" * 50) and len(long.encode()) <= MAX_NAME_BYTES


def test_inside_refuses_a_path_that_leaves_the_folder(tmp_path):
    assert inside(tmp_path, "cards", "D4.json") == tmp_path / "cards" / "D4.json"
    with pytest.raises(InputError, match="outside the output folder"):
        inside(tmp_path, "cards", "../../x.json")
    with pytest.raises(InputError, match="outside the output folder"):
        inside(tmp_path, "/etc/x.json")
    with pytest.raises(InputError, match="NUL"):
        inside(tmp_path, "a\x00b")


# ---- writer locks ---------------------------------------------------------------------
def test_second_writer_is_refused_naming_the_holder(tmp_path):
    target = tmp_path / "run"
    with writer_lock(target, "ferrocim train") as lock:
        assert lock == tmp_path / ".run.lock"
        holder = json.loads(lock.read_text())
        assert holder["pid"] > 0 and holder["host"] == socket.gethostname()
        with pytest.raises(LockedError) as info, writer_lock(target, "ferrocim train"):
            pass
        msg = str(info.value)
        assert f"pid {holder['pid']} on host {socket.gethostname()}" in msg
        assert "ferrocim train" in msg and str(lock) in msg
    assert not lock.exists()  # released and removed
    with writer_lock(target, "again"):  # free again
        pass


def test_lock_held_by_another_process(tmp_path):
    """A lock taken by a running child process: refused here with the child's pid."""
    target = tmp_path / "out"
    ready = tmp_path / "ready"
    code = textwrap.dedent(
        f"""
        import time, pathlib
        from ferrocim.locks import writer_lock
        with writer_lock({str(target)!r}, "ferrocim calibrate", inside=True):
            pathlib.Path({str(ready)!r}).write_text("x")
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(600):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists()
        with pytest.raises(LockedError, match=f"pid {child.pid} on host"):
            with writer_lock(target, "ferrocim calibrate", inside=True):
                pass
    finally:
        child.kill()
        child.wait()
    # the child was killed holding it: the file stays, the kernel dropped the lock
    lock = lock_file_for(target, inside=True)
    assert lock.is_file()
    with pytest.warns(UserWarning, match=rf"stale writer lock .* pid {child.pid} .*no longer"):
        with writer_lock(target, "ferrocim calibrate", inside=True):
            assert json.loads(lock.read_text())["pid"] != child.pid
    assert not lock.exists()


def _child_holding(target: Path, ready: Path, release: Path) -> subprocess.Popen:
    """A child process that holds ``target``'s writer lock until ``release`` exists."""
    code = textwrap.dedent(
        f"""
        import time, pathlib
        from ferrocim.locks import writer_lock
        with writer_lock({str(target)!r}, "ferrocim data prepare"):
            pathlib.Path({str(ready)!r}).write_text("x")
            while not pathlib.Path({str(release)!r}).exists():
                time.sleep(0.02)
            pathlib.Path({str(ready)!r}).write_text("released")
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(600):
        if ready.exists():
            break
        time.sleep(0.05)
    assert ready.exists()
    return child


def test_wait_for_a_shared_cache_writer(tmp_path, caplog):
    """``wait=True`` (shared caches): a second process waits, naming the holder, and takes
    the lock once the holder has released it; without ``wait`` it is refused."""
    import threading

    target, ready, release = tmp_path / "cache.h5", tmp_path / "ready", tmp_path / "release"
    child = _child_holding(target, ready, release)
    try:
        with pytest.raises(LockedError, match=f"pid {child.pid}"):
            with writer_lock(target, "ferrocim data prepare"):
                pass
        timer = threading.Timer(0.5, release.write_text, args=("go",))
        timer.start()
        with caplog.at_level("INFO", logger="ferrocim.locks"):
            with writer_lock(target, "ferrocim data prepare", wait=True) as lock:
                # the child's block had ended (it wrote "released") before this one began
                assert ready.read_text() == "released"
                assert json.loads(lock.read_text())["pid"] != child.pid
        timer.join()
    finally:
        child.kill()
        child.wait()
    waited = [r.getMessage() for r in caplog.records if "waiting for it" in r.getMessage()]
    assert len(waited) == 1 and f"pid {child.pid}" in waited[0] and "cache.h5" in waited[0]
    assert not lock_file_for(target).exists()


def test_runs_started_together_share_the_synthetic_cache(tmp_path, monkeypatch):
    """Two runs on one synthetic cache: the second waits for the first's generation and
    preparation instead of failing (it used to raise LockedError)."""
    import threading

    from ferrocim.pipelines import data as pdata
    from ferrocim.pipelines.config import DataConfig

    cfg = DataConfig(n_subjects=3, synth_seed=1, cache_dir=str(tmp_path))
    root = pdata.synthetic_cache_path(cfg)
    ready, release = tmp_path / "ready", tmp_path / "release"
    calls: list[str] = []

    def fake(cfg, root, edf_root, h5):
        calls.append(ready.read_text())
        return h5

    monkeypatch.setattr(pdata, "_synthesize_and_prepare", fake)
    child = _child_holding(root, ready, release)  # "the first run", generating
    try:
        timer = threading.Timer(0.3, release.write_text, args=("go",))
        timer.start()
        assert pdata._synthetic_prepared(cfg) == root / "prepared.h5"
        timer.join()
    finally:
        child.kill()
        child.wait()
    assert calls == ["released"]  # ran once, after the first had finished


def test_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "run"
    lock = lock_file_for(target)
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with pytest.warns(UserWarning, match=f"pid {dead.pid} .*no longer running"):
        with writer_lock(target, "ferrocim train"):
            pass


# ---- output errors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (OSError(errno.EROFS, "Read-only file system", "/x/y.json"), "read-only"),
        (OSError(errno.EACCES, "Permission denied", "/x/y.json"), "permission denied"),
        (OSError(errno.ENOSPC, "No space left on device", "/x/y.json"), "disk is full"),
        (RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos 64"), "disk is"),
        (
            OSError(
                "Can't write data (file write failed: errno = 28, error message = 'No "
                "space left on device')"
            ),
            "disk is full",
        ),
    ],
)
def test_output_errors_are_one_sentence_with_path_and_cause(exc, cause, tmp_path):
    with pytest.raises(OutputError) as info, output_errors(tmp_path / "z.pt", "writing the run"):
        raise exc
    msg = str(info.value)
    assert cause in msg and "while writing the run" in msg and "\n" not in msg
    where = exc.filename if getattr(exc, "filename", None) else str(tmp_path / "z.pt")
    assert msg.startswith(where)
    if "full" in cause or "disk is" in cause:
        assert "free on" in msg


def test_other_errors_pass_through(tmp_path):
    assert describe(OSError(errno.ENOENT, "missing"), tmp_path) is None
    with pytest.raises(FileNotFoundError), output_errors(tmp_path):
        raise FileNotFoundError(errno.ENOENT, "missing")
    with pytest.raises(RuntimeError, match="a bug"), output_errors(tmp_path):
        raise RuntimeError("a bug")


def test_check_writable_names_flag_and_cause(tmp_path, monkeypatch):
    assert check_writable(tmp_path / "new" / "sub", "--out") == tmp_path / "new" / "sub"
    assert list(tmp_path.iterdir()) == []  # the probe and the folders it made are gone
    (tmp_path / "mine").mkdir()
    check_writable(tmp_path / "mine", "--out")
    assert (tmp_path / "mine").is_dir()  # a folder that was there stays

    def read_only(*_a, **_k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("ferrocim.io_errors.tempfile.mkstemp", read_only)
    with pytest.raises(OutputError, match=r"read-only, while checking that --out .* is writable"):
        check_writable(tmp_path / "new", "--out")


def test_real_read_only_folder(tmp_path):
    import os

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: permissions do not block writes")
        with pytest.raises(OutputError, match="permission denied"):
            check_writable(ro / "out", "--out")
    finally:
        ro.chmod(0o755)
    assert Path(ro).is_dir()


# ---- issue 27 leftovers: bytes needed, folders of a failed start, reentrant API lock ----
def test_full_disk_names_the_bytes_needed(tmp_path, monkeypatch):
    from ferrocim.io_errors import expect_size

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))

    with pytest.raises(OutputError) as info, output_errors(tmp_path, "writing"):
        with expect_size(3_700_000):
            full()
    msg = str(info.value)
    assert re.search(r"the disk is full \(needs about 3\.7 MB, [\d.]+ \w+ free on ", msg)
    # a device card knows its size
    from ferrocim.calibration.card import preset

    monkeypatch.setattr("ferrocim.calibration.card.write_json", full)
    card = preset("dut2")
    with pytest.raises(OutputError, match=r"needs about [\d.]+ kB, .* free on"):
        with output_errors(tmp_path, "writing the card"):
            card.save(tmp_path / "c.json")
    # a checkpoint estimates its size from its tensors
    import torch

    from ferrocim.pipelines.checkpoint import save_checkpoint

    def torch_full(*_a, **_k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos 64 vs 0")

    monkeypatch.setattr("ferrocim.pipelines.checkpoint.torch.save", torch_full)
    with pytest.raises(OutputError, match=r"needs about 400\.0 kB, .* free on"):
        with output_errors(tmp_path, "writing the run"):
            save_checkpoint(tmp_path / "last.pt", {"w": torch.zeros(100_000)})
    assert not list(tmp_path.glob(".*.tmp"))


def test_full_disk_while_writing_a_cache_names_its_size(tmp_path, monkeypatch):
    import h5py
    import numpy as np

    from ferrocim.snn.data.cache import write_cache

    def full(*_a, **_k):
        raise OSError("Can't write data (file write failed: errno = 28, error message = 'x')")

    monkeypatch.setattr(h5py, "File", full)
    arrays = {"eeg": np.zeros((10, 64, 160)), **{k: np.zeros(10) for k in ("y", "subject", "run")}}
    arrays["onset"] = np.zeros(10)
    with pytest.raises(OutputError, match=r"needs about 409\.9 kB"):
        with output_errors(tmp_path / "c.h5", "preparing"):
            write_cache(tmp_path / "c.h5", arrays, params={}, source={}, ch_names=[])


def test_writer_lock_removes_the_folders_it_made_when_the_block_raises(tmp_path):
    target = tmp_path / "a" / "b" / "out"
    with pytest.raises(InputError), writer_lock(target, "ferrocim calibrate", inside=True):
        raise InputError("rejected input")
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    (tmp_path / "kept").mkdir()
    with pytest.raises(InputError), writer_lock(tmp_path / "kept", "x", inside=True):
        raise InputError("rejected input")
    assert (tmp_path / "kept").is_dir()  # a folder that was there stays


def test_reentrant_lock_only_within_this_process_holding_it(tmp_path):
    from ferrocim.locks import holds

    target = tmp_path / "out"
    assert not holds(target, inside=True)
    with writer_lock(target, "ferrocim calibrate", inside=True) as lock:
        assert holds(target, inside=True)
        with writer_lock(target, "api", inside=True, reentrant=True) as again:
            assert again == lock
        assert lock.is_file() and holds(target, inside=True)
        with pytest.raises(LockedError):  # not reentrant: refused as before
            with writer_lock(target, "ferrocim calibrate", inside=True):
                pass
    assert not holds(target, inside=True) and not lock.exists()
    with writer_lock(target, "api", inside=True, reentrant=True) as lock:  # takes it itself
        assert json.loads(lock.read_text())["pid"] > 0

"""The run folder's lock: one writer at a time, checked with real processes; stale locks taken over."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from funnelkit.locks import LOCK_NAME, RunFolderBusy, folder_lock, holder, sweep_temporaries

LOCKS = Path(__file__).resolve().parents[1] / "funnelkit" / "locks.py"
# Child processes load locks.py alone (it imports nothing of funnelkit): a second each, not torch's import.
PRELUDE = f"""
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("locks", {str(LOCKS)!r})
locks = importlib.util.module_from_spec(spec); spec.loader.exec_module(locks)
"""


def _child(body):
    """A Python process that runs ``body`` after loading locks.py; stdin and stdout are pipes."""
    return subprocess.Popen([sys.executable, "-c", PRELUDE + body], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _holding(folder):
    """A child that takes the lock of ``folder``, says "held", and keeps it until its stdin closes."""
    child = _child(f"with locks.folder_lock({str(folder)!r}):\n    print('held', flush=True)\n    sys.stdin.read()\n")
    assert child.stdout.readline().strip() == "held", child.stderr.read()
    return child


def test_a_second_process_is_refused_while_the_first_holds_the_lock(tmp_path):
    child = _holding(tmp_path)
    try:
        record = json.loads((tmp_path / LOCK_NAME).read_text())
        assert record["pid"] == child.pid and record["host"] == socket.gethostname()
        assert abs(record["started"] - time.time()) < 60
        before = (tmp_path / LOCK_NAME).read_bytes()
        with pytest.raises(RunFolderBusy) as refused:
            with folder_lock(tmp_path):
                pytest.fail("entered a folder that another process holds")
        message = str(refused.value)
        assert f"in use by process {child.pid} on this host" in message and str(tmp_path) in message
        assert "\n" not in message and "--out" in message
        assert isinstance(refused.value, ValueError) and refused.value.pid == child.pid
        assert (tmp_path / LOCK_NAME).read_bytes() == before  # the holder's lock is untouched
    finally:
        child.stdin.close()
        assert child.wait(timeout=30) == 0
    assert not (tmp_path / LOCK_NAME).exists()  # the holder removed it on exit
    with folder_lock(tmp_path):  # and now it is free
        assert holder(tmp_path)["pid"] == os.getpid()
    assert holder(tmp_path) is None


def test_processes_that_wait_for_the_lock_take_turns(tmp_path):
    # Each child increments a counter file inside the lock with a pause between reading and writing:
    # without mutual exclusion some increments are lost, so the final count proves it.
    counter = tmp_path / "counter"
    counter.write_text("0")
    body = f"""
from pathlib import Path
counter = Path({str(counter)!r})
while True:
    try:
        with locks.folder_lock({str(tmp_path)!r}):
            value = int(counter.read_text()); time.sleep(0.05); counter.write_text(str(value + 1))
        break
    except locks.RunFolderBusy:
        time.sleep(0.01)
"""
    children = [_child(body) for _ in range(4)]
    for child in children:
        assert child.wait(timeout=120) == 0, child.stderr.read()
    assert int(counter.read_text()) == len(children)
    assert not (tmp_path / LOCK_NAME).exists()


def test_nested_use_in_one_process_passes_through_and_the_outermost_exit_removes_the_lock(tmp_path):
    with folder_lock(tmp_path):
        record = holder(tmp_path)
        with folder_lock(tmp_path / "." / ""):  # the same folder, spelled otherwise
            with folder_lock(tmp_path):
                assert holder(tmp_path) == record
        assert holder(tmp_path) == record  # an inner exit keeps the outer lock
    assert holder(tmp_path) is None


def test_an_error_inside_releases_the_lock(tmp_path):
    with pytest.raises(KeyError):
        with folder_lock(tmp_path):
            raise KeyError("boom")
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_killed_holders_lock_is_taken_over_with_a_warning(tmp_path, caplog):
    child = _holding(tmp_path)
    child.send_signal(signal.SIGKILL)  # no chance to clean up
    child.wait(timeout=30)
    assert holder(tmp_path)["pid"] == child.pid  # the lock stayed behind
    with caplog.at_level(logging.WARNING, logger="funnelkit"):
        with folder_lock(tmp_path):
            assert holder(tmp_path)["pid"] == os.getpid()
    assert f"process {child.pid}" in caplog.text and "no longer runs" in caplog.text
    assert holder(tmp_path) is None


def test_a_lock_whose_process_id_was_reused_is_taken_over(tmp_path, caplog):
    # A living process that started after the lock was written cannot be the one that wrote it.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        old = {"pid": sleeper.pid, "host": socket.gethostname(), "started": time.time() - 3600}
        (tmp_path / LOCK_NAME).write_text(json.dumps(old))
        with caplog.at_level(logging.WARNING, logger="funnelkit"):
            with folder_lock(tmp_path):
                assert holder(tmp_path)["pid"] == os.getpid()
        assert "started later" in caplog.text
        # the same process id, written after the process started, is a living holder
        (tmp_path / LOCK_NAME).write_text(json.dumps({**old, "started": time.time()}))
        with pytest.raises(RunFolderBusy, match=f"process {sleeper.pid}"):
            with folder_lock(tmp_path):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()


def test_another_hosts_lock_is_not_taken_and_the_message_says_what_to_delete(tmp_path):
    record = {"pid": os.getpid(), "host": "some-other-machine", "started": time.time()}
    (tmp_path / LOCK_NAME).write_text(json.dumps(record))
    with pytest.raises(RunFolderBusy) as refused:
        with folder_lock(tmp_path):
            pass
    assert "host some-other-machine" in str(refused.value) and str(tmp_path / LOCK_NAME) in str(refused.value)
    assert json.loads((tmp_path / LOCK_NAME).read_text()) == record


def test_a_lock_file_left_empty_by_a_killed_creator_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text("")
    old = time.time() - 60
    os.utime(tmp_path / LOCK_NAME, (old, old))
    with folder_lock(tmp_path):
        assert holder(tmp_path)["pid"] == os.getpid()


def test_the_lock_makes_its_folder_and_removes_it_when_left_empty(tmp_path):
    run = tmp_path / "runs" / "a"
    with folder_lock(run):
        assert (run / LOCK_NAME).is_file()
    assert not (tmp_path / "runs").exists()  # nothing was written: nothing is left
    with folder_lock(run):
        (run / "checkpoint.pt").write_bytes(b"x")
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]


def test_entering_sweeps_temporaries_of_dead_writers_but_not_of_living_ones(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        left = tmp_path / f".checkpoint.pt.{dead_pid}-abc_12.tmp"
        legacy = tmp_path / ".metrics.json.k2j4h5.tmp"  # an older writer's name, without a process id
        busy = tmp_path / f".checkpoint.pt.{living.pid}-xyz.tmp"
        other = tmp_path / "notes.tmp"  # not hidden: not ours
        for path in (left, legacy, busy, other):
            path.write_bytes(b"partial")
        with folder_lock(tmp_path):
            names = sorted(p.name for p in tmp_path.iterdir())
        assert names == sorted([LOCK_NAME, busy.name, other.name])
        assert sweep_temporaries(tmp_path) == []  # a second sweep finds nothing more
    finally:
        living.kill()
        living.wait()

"""One writer per folder: a lock file ``FOLDER/.lock`` made atomically, and a sweep of stale temporaries.

:func:`folder_lock` creates ``.lock`` with ``O_CREAT | O_EXCL`` (one process wins, on any local file
system) and writes in it the holder's process id, host name and start time. A second process that
finds the lock asks whether its holder still runs:

- alive, on this host: :class:`RunFolderBusy` (a ``ValueError``) names the folder, the process and
  when it started, and the ways out;
- gone (no such process, or a process that started after the lock was written, i.e. a reused id):
  the lock is stale, and it is taken over with a warning on the ``funnelkit`` logger;
- on another host: it cannot be checked from here, so the folder counts as busy and the message
  says which file to delete if that process is known to be gone.

The lock is re-entrant within one process (a nested ``folder_lock`` of the same folder, e.g. a run
folder's owner around a :class:`~funnelkit.train.Trainer` that locks it again, passes through), and
it is removed on exit. On entry the outermost holder removes the ``.*.tmp`` files that writers
killed mid-write left in the folder (:func:`funnelkit.files.write_atomically` names its temporaries
after their process, so one of a living process is kept).
"""

import json
import logging
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

LOCK_NAME = ".lock"
TEMPORARY = re.compile(r"^\..+\.tmp$")  # what write_atomically and the takeover below leave on a kill
OWNED_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")  # ... with its writer's process id
UNREADABLE_GRACE_SECONDS = 5.0  # a lock file still empty after this long was left by a killed creator

log = logging.getLogger("funnelkit")

_held = {}  # real folder path -> (process id, depth): the locks this process holds
_held_guard = threading.Lock()


class RunFolderBusy(ValueError):
    """Another living process holds the lock of a folder (``folder``, ``pid``, ``host``, ``started``)."""

    def __init__(self, message, folder, pid=None, host=None, started=None):
        super().__init__(message)
        self.folder, self.pid, self.host, self.started = folder, pid, host, started


@contextmanager
def folder_lock(folder):
    """Hold ``folder/.lock`` while the block runs (creating ``folder`` if needed); see the module."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    with _held_guard:
        pid, depth = _held.get(key, (None, 0))
        if pid == os.getpid():  # nested use by this process (a forked child starts afresh)
            _held[key] = (pid, depth + 1)
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield folder
        finally:
            _release_nested(key)
        return
    created = _make_folder(folder)
    lock = folder / LOCK_NAME
    try:
        mine = _acquire(lock, folder)
    except BaseException:
        _remove_empty(created)
        raise
    with _held_guard:
        _held[key] = (os.getpid(), 1)
    try:
        sweep_temporaries(folder)
        yield folder
    finally:
        with _held_guard:
            _held.pop(key, None)
        _release(lock, mine)
        _remove_empty(created)


def holder(folder):
    """The lock record (``pid``, ``host``, ``started``) of ``folder``, or None when it is not locked.

    A lock file that holds no record (being written, or damaged) raises ``ValueError``.
    """
    try:
        return _read(Path(folder) / LOCK_NAME)
    except FileNotFoundError:
        return None


def sweep_temporaries(folder):
    """Remove the ``.*.tmp`` files in ``folder`` whose writer no longer runs; returns their paths.

    Call it only while holding the folder's lock. A temporary named after a process id (see
    :func:`funnelkit.files.write_atomically`) is kept while that process runs on this host; one
    without an id was left by an older writer and is removed.
    """
    removed = []
    for path in Path(folder).iterdir():
        if not TEMPORARY.match(path.name) or not path.is_file():
            continue
        owner = OWNED_TEMPORARY.match(path.name)
        if owner and (int(owner["pid"]) == os.getpid() or _process_started(int(owner["pid"])) is not None):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    if removed:
        log.warning("removed %d temporary file(s) left in %s by an interrupted writer: %s", len(removed), folder,
                    ", ".join(path.name for path in removed))
    return removed


# -- taking and giving back ----------------------------------------------------------------------

def _record():
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}


def _acquire(lock, folder):
    """Create ``lock`` for this process, taking over a stale one; returns the record written."""
    for _ in range(20):  # each round either creates the lock, raises, or removes a stale lock
        mine = _record()
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pass
        else:
            try:
                with os.fdopen(descriptor, "w") as file:
                    json.dump(mine, file)
            except BaseException:
                lock.unlink(missing_ok=True)
                raise
            return mine
        try:
            other = _read_settled(lock)
        except FileNotFoundError:  # released meanwhile: try again
            continue
        if other is None:  # empty or garbled for a while: its creator died before writing it
            _take_over(lock, None, f"the lock file {lock} is unreadable")
            continue
        reason = _stale_reason(other)
        if reason is None:
            raise _busy(folder, lock, other)
        _take_over(lock, other, reason)
    raise RunFolderBusy(f"{folder} is being locked and unlocked by other processes; try again", str(folder))


def _release(lock, mine):
    """Remove ``lock`` if it is still the one this process wrote."""
    try:
        if _read(lock) == mine:
            lock.unlink()
    except (FileNotFoundError, ValueError):
        pass


def _release_nested(key):
    with _held_guard:
        pid, depth = _held[key]
        _held[key] = (pid, depth - 1)


def _take_over(lock, stale, reason):
    """Move a stale lock aside (an atomic rename, so two takers cannot both remove a fresh lock)."""
    aside = lock.with_name(f"{lock.name}.{os.getpid()}-stale.tmp")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    try:
        moved = _read(aside)
    except ValueError:
        moved = None
    if moved != stale:  # another process replaced the stale lock in between: give its lock back
        try:
            os.link(aside, lock)
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return
    aside.unlink(missing_ok=True)
    who = "its creator" if stale is None else f"process {stale['pid']} (started {_when(stale['started'])})"
    log.warning("took over the lock of %s: %s held it, but %s", lock.parent, who, reason)


def _make_folder(folder):
    """Create ``folder`` and missing parents; returns those created, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(created):
    for path in created:  # deepest first
        try:
            path.rmdir()
        except OSError:  # not empty (or gone): keep it and what holds it
            return


# -- reading a lock --------------------------------------------------------------------------------

def _read(lock):
    """The record in ``lock``; ``ValueError`` when it is not one (FileNotFoundError when absent)."""
    text = Path(lock).read_text(encoding="utf-8", errors="replace")
    record = json.loads(text)  # json.JSONDecodeError is a ValueError
    if (not isinstance(record, dict) or not isinstance(record.get("pid"), int)
            or not isinstance(record.get("host"), str) or not isinstance(record.get("started"), (int, float))):
        raise ValueError(f"{lock} does not hold a funnelkit lock record")
    return record


def _read_settled(lock):
    """The record in ``lock``, waiting out a creator that has not written it yet; None if it never does."""
    deadline = time.monotonic() + UNREADABLE_GRACE_SECONDS
    while True:
        try:
            return _read(lock)
        except ValueError:
            pass
        if time.time() - lock.stat().st_mtime > UNREADABLE_GRACE_SECONDS or time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _stale_reason(record):
    """Why the lock's holder is known to be gone, or None when it may still run."""
    if record["host"] != socket.gethostname():
        return None  # another machine's process cannot be checked from here
    if record["pid"] == os.getpid():
        return "that is this process, which holds no lock there (a lock left by an earlier use of its id)"
    started = _process_started(record["pid"])
    if started is None:
        return "that process no longer runs"
    if started is not True and started > record["started"] + 2.0:  # 2 s: clock-tick and rounding slack
        return f"its process id now belongs to a process started later ({_when(started)})"
    return None


def _process_started(pid):
    """When process ``pid`` started (epoch seconds), True if it runs but that is unknown, None if it does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # runs, as another user
        pass
    except OverflowError:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of proc(5), counted from the third
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return True


def _busy(folder, lock, record):
    where = "this host" if record["host"] == socket.gethostname() else f"host {record['host']}"
    remedy = ("wait for it to finish or stop it, or write to another folder (--out)"
              if where == "this host" else
              f"wait for it to finish, or write to another folder (--out); if that process is gone, delete {lock}")
    return RunFolderBusy(
        f"{folder} is in use by process {record['pid']} on {where} (started {_when(record['started'])}): {remedy}",
        str(folder), record["pid"], record["host"], record["started"])


def _when(seconds):
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


__all__ = ["LOCK_NAME", "RunFolderBusy", "folder_lock", "holder", "sweep_temporaries"]

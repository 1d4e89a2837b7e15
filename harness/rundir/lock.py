"""The writer lock: one process writes a run at a time.

Every writer holds an exclusive lock (flock) on the run's .lock file for as long as it
writes, which the operating system releases when the process ends, however it ends. Readers
never take it. The lock file holds the process id and host of its last holder.
"""

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path

from harness.rundir.files import RunDirError, remove_leftovers


LOCK_FILE = ".lock"
LOCK_RETRY_SECONDS = 0.5   # how long a writer retries a lock held, perhaps by a reader's probe
LOCK_RETRY_INTERVAL = 0.01


class RunLocked(RunDirError):
    """Another process is writing the run."""


_held_locks = {}   # run directory (resolved) -> [open lock file, holds in this process]


def _holder(lock_file) -> str:
    lock_file.seek(0)
    text = lock_file.read().split()
    return f"process {text[0]} on {text[1]}" if len(text) == 2 else "another process"


def _try_lock(lock_file, mode: int) -> bool:
    try:
        fcntl.flock(lock_file, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def acquire_lock(out: Path) -> None:
    """Takes the writer lock of the run directory out (which must exist), or raises RunLocked
    naming its holder. Holds in one process nest: each needs a release_lock. The lock file is
    left as it was until sign_lock, so a writer refused after taking it changes nothing."""
    key = Path(out).resolve()
    if key in _held_locks:
        _held_locks[key][1] += 1
        return
    try:
        lock_file = open(os.open(key / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644), "r+")
    except OSError as error:
        raise RunDirError(f"cannot write {key / LOCK_FILE} ({error.strerror})")
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    while not _try_lock(lock_file, fcntl.LOCK_EX):
        if time.monotonic() > deadline:
            holder = _holder(lock_file)
            lock_file.close()
            raise RunLocked(f"{out} is being written by {holder}; wait for it to finish, "
                            "or stop it, before writing this run")
        time.sleep(LOCK_RETRY_INTERVAL)
    _held_locks[key] = [lock_file, 1]


def sign_lock(out: Path) -> None:
    """Writes this process's id and host into the lock it holds on out, for others' messages."""
    lock_file = _held_locks[Path(out).resolve()][0]
    with contextlib.suppress(OSError):   # the holder's name is only for messages
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"{os.getpid()} {socket.gethostname()}\n")
        lock_file.flush()


def release_lock(out: Path) -> None:
    key = Path(out).resolve()
    _held_locks[key][1] -= 1
    if not _held_locks[key][1]:
        _held_locks.pop(key)[0].close()


@contextlib.contextmanager
def writing(out: Path):
    """Holds the writer lock of out (made if missing) while the block runs, having removed
    what a killed writer left half written."""
    Path(out).mkdir(parents=True, exist_ok=True)
    acquire_lock(out)
    remove_leftovers(out)
    sign_lock(out)
    try:
        yield
    finally:
        release_lock(out)


def writer_of(path: Path) -> str | None:
    """'process PID on HOST' if another process is writing the run in path, else None. Probes
    with a shared lock held for an instant (a writer retries for LOCK_RETRY_SECONDS)."""
    if Path(path).resolve() in _held_locks:
        return None
    try:
        lock_file = open(Path(path) / LOCK_FILE)
    except OSError:
        return None
    with lock_file:
        if _try_lock(lock_file, fcntl.LOCK_SH):
            return None
        return _holder(lock_file)


def check_not_in_progress(path: Path) -> None:
    holder = writer_of(path)
    if holder is not None:
        raise RunLocked(f"{path} is in progress: being written by {holder}; run again once "
                        "it has finished")



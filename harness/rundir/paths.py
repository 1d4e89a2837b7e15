"""Checks made on the paths a run is given before it starts: that they can be written or
read, and that a directory is a run or empty."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from harness.rundir.files import RunDirError, first_line
from harness.rundir.layout import (CONFIG_FILE, NETWORK_SUFFIX, OPTIONAL_RUN_FILES, RUN_DIRS,
                                   RUN_FILES)
from harness.rundir.lock import LOCK_FILE


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def is_empty(path: Path) -> bool:
    """Missing, or holding nothing but a writer lock (as a run refused at its start leaves)."""
    return not path.exists() or (path.is_dir() and
                                 all(p.name == LOCK_FILE for p in path.iterdir()))


@contextlib.contextmanager
def refusals(flag: str, path: Path):
    """Turns any refusal of the operating system inside the block (a name too long, a
    component that is a file, no permission, a read-only file system, no such device) into a
    RunDirError naming the flag, the path and the reason."""
    try:
        yield
    except OSError as error:
        where = f" ({error.filename})" if error.filename and str(error.filename) != str(path) \
            else ""
        raise RunDirError(f"{flag} {path}: {error.strerror or first_line(error)}{where}") \
            from None


def deepest_existing(paths, flag: str, given: Path) -> Path | None:
    """The first of paths that exists (None if none does); RunDirError, naming the flag and
    the path given, if it is a file where a directory must be."""
    for path in paths:
        if path.exists():
            if not path.is_dir():
                raise RunDirError(f"{flag} {given}: {path} is a file, not a directory")
            return path
    return None


def check_writable(out: Path, flag: str = "--out", file: bool = False) -> None:
    """Raises RunDirError, naming the flag that gave out, if out (a directory, or with file a
    file to write) or a parent of it is a file, or if nothing can be created in the deepest of
    them that exists (tried, not guessed from permission bits), or if the operating system
    refuses the path itself."""
    out = Path(out)
    with refusals(flag, out):
        parent = deepest_existing([*([] if file else [out]), *out.parents], flag, out)
        if parent is not None:
            try:
                os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".write-test-"))
            except OSError as error:
                raise RunDirError(f"{flag} {out}: cannot write in {parent} ({error.strerror})")


def check_readable(path: Path, flag: str, what: str = "file or directory") -> None:
    """Raises RunDirError, naming the flag, if path (a `what`) cannot be read: missing, or
    refused by the operating system."""
    path = Path(path)
    with refusals(flag, path):
        if not path.exists():
            deepest_existing(path.parents, flag, path)
            raise RunDirError(f"{flag} {path}: no such {what}")
        if path.is_dir():
            os.listdir(path)
        else:
            with open(path, "rb"):
                pass


def clear_run(out: Path) -> None:
    """Removes the files of an old run (only those: nothing else in the directory)."""
    for path in [*(out / name for name in (*RUN_FILES, *OPTIONAL_RUN_FILES)),
                 *out.glob(f"*{NETWORK_SUFFIX}")]:
        path.unlink(missing_ok=True)
    for name in RUN_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)



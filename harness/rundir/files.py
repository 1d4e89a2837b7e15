"""Atomic files: every file of a run goes to a temporary name and is renamed into place, so
that a reader or a kill at any moment sees the old file or the new one, never half of one."""

import contextlib
import csv
import json
import os
from pathlib import Path

import numpy as np


class RunDirError(Exception):
    """A run directory that cannot be used as asked; the message says why and what to do."""


class WriteFailed(OSError):
    """A file of the run could not be written; the message names the file and the cause."""


TEMPORARY_GLOB = ".*.tmp*"      # the names write_atomic writes to before renaming


def temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def remove_leftovers(out: Path) -> list:
    """Removes the temporary files a writer killed inside a write left in out (call it with
    the run's writer lock held, so that no live writer owns them); returns their names."""
    left = sorted(p for p in Path(out).glob(TEMPORARY_GLOB) if p.is_file())
    for p in left:
        p.unlink(missing_ok=True)
    return [p.name for p in left]


def write_atomic(path: Path, write) -> None:
    """Calls write(temporary_path), then renames the result onto path, so that a reader or a
    kill at any moment sees the old file or the new one, never half of one. A kill inside
    write() can leave the temporary file; the next writer's remove_leftovers clears it."""
    path = Path(path)
    temporary = temporary_path(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise WriteFailed(f"cannot write {path} ({error.strerror or first_line(error)})") \
            from error
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def write_json(path: Path, record: dict) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))


def write_csv(path: Path, fieldnames, rows) -> None:
    def write(p):
        with open(p, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames)
            writer.writeheader()
            writer.writerows(rows)
    write_atomic(path, write)


def write_npz(path: Path, **arrays) -> None:
    def write(p):
        with open(p, "wb") as f:
            np.savez(f, **arrays)
    write_atomic(path, write)


def first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def read_text(path: Path) -> str:
    if not path.is_file():
        raise RunDirError(f"{path} is missing: {path.parent} is not a complete run")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path} cannot be read ({first_line(error)})")



"""The run directory on disk: atomic writes, the checks made before a run starts, and what a
resumed run reads back. No TensorFlow here: the checks run before it is imported."""

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

STATE_FILE = "state.npz"
RUN_FILES = ("config.json", "history.csv", "metrics.json", "posterior.npz", STATE_FILE,
             "encoder.keras", "decoder.keras", "adversary.keras")
RUN_DIRS = ("tensorboard",)
UNCHECKED_ON_RESUME = ("steps", "out")     # settings a resumed run may change


class RunDirError(Exception):
    """A run directory that cannot be used as asked; the message says why and what to do."""


def write_atomic(path: Path, write) -> None:
    """Calls write(temporary_path), then renames the result onto path, so that a reader or a
    kill at any moment sees the old file or the new one, never half of one."""
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
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


def is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def check_writable(out: Path, flag: str = "--out") -> None:
    """Raises RunDirError, naming the flag that gave out, if out or a parent of it is a file,
    or if nothing can be created in the deepest of them that exists (tried, not guessed from
    permission bits)."""
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise RunDirError(f"{flag} {out}: {parent} is a file, not a directory")
            try:
                os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".write-test-"))
            except OSError as error:
                raise RunDirError(f"{flag} {out}: cannot write in {parent} ({error.strerror})")
            return


def check_new_run(out: Path, overwrite: bool) -> None:
    """A new run may go into a missing or empty directory, or over an old run with --overwrite."""
    check_writable(out)
    if not out.exists() or not any(out.iterdir()):
        return
    if not is_run_dir(out):
        raise RunDirError(f"--out {out} is a non-empty directory that holds no run; "
                          "choose another --out")
    if not overwrite:
        raise RunDirError(f"--out {out} already holds a run; pass --overwrite to replace it, "
                          "or --resume to continue it")


def clear_run(out: Path) -> None:
    """Removes the files of an old run (only those: nothing else in the directory)."""
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for name in RUN_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)


def saved_settings(out: Path, field_names) -> dict:
    """The settings of the run in out, for --resume. Raises RunDirError if there is none."""
    if not is_run_dir(out) or not (out / STATE_FILE).is_file():
        raise RunDirError(f"--resume: {out} holds no saved run state to resume; "
                          "start a new run without --resume")
    try:
        record = json.loads((out / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise RunDirError(f"--resume: cannot read {out / 'config.json'}: {error}")
    return {name: record[name] for name in field_names if name in record}


def saved_step(out: Path) -> int:
    try:
        with np.load(out / STATE_FILE) as state:
            return int(state["step"])
    except (OSError, ValueError, KeyError) as error:
        raise RunDirError(f"--resume: cannot read {out / STATE_FILE}: {error}")


def changed_settings(saved: dict, given: dict) -> list:
    """'name: saved -> given' for each setting given on the command line that differs."""
    return [f"{name}: {saved[name]!r} -> {value!r}" for name, value in given.items()
            if name in saved and name not in UNCHECKED_ON_RESUME and saved[name] != value]


def read_history(path: Path) -> list:
    """history.csv as a list of rows, numbers as floats (steps as ints), empty cells as ''."""
    with open(path, newline="") as f:
        return [{k: (v if v == "" else int(v) if k == "step" else float(v))
                 for k, v in row.items()} for row in csv.DictReader(f)]

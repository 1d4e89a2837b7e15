"""What a run shows while it trains: a progress bar on a terminal (plain lines elsewhere) and
its metrics as TensorBoard scalars."""

import errno
import os
import sys
from pathlib import Path

import tensorflow as tf
from tqdm import tqdm

from harness import rundir
from harness.rundir import WriteFailed


class LineProgress:
    """Stands in for the progress bar where stderr is no terminal (a log file, a job runner):
    one plain line per log step on stdout, without carriage returns."""

    def __init__(self, desc: str, total: int, initial: int):
        self.desc, self.total, self.n = desc, total, initial

    def update(self, n: int) -> None:
        self.n += n

    def set_postfix(self, postfix: dict) -> None:
        values = "  ".join(f"{name} {value}" for name, value in postfix.items())
        print(f"{self.desc}: step {self.n}/{self.total}  {values}", flush=True)

    def close(self) -> None:
        pass


def progress_display(desc: str, total: int, initial: int, show: bool):
    """A progress bar on a terminal, plain lines elsewhere, nothing unless show."""
    if show and not sys.stderr.isatty():
        return LineProgress(desc, total, initial)
    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not show,
                dynamic_ncols=True)


class TensorBoardLog:
    """The run's metrics as TensorBoard scalars. A write that fails (TensorFlow reports a full
    disk as ResourceExhaustedError) raises WriteFailed naming the directory and the cause."""

    CAUSES = tuple(os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EACCES,
                                                  errno.EROFS, errno.EIO))

    def __init__(self, directory: Path):
        self.directory = directory
        self.writer = self._writing(tf.summary.create_file_writer, str(directory))

    def _writing(self, write, *args):
        try:
            return write(*args)
        except tf.errors.OpError as error:
            cause = next((c for c in self.CAUSES if c in error.message), rundir.first_line(error))
            raise WriteFailed(f"cannot write {self.directory} ({cause})") from None

    def log(self, row: dict) -> None:
        def write():
            with self.writer.as_default(step=row["step"]):
                for name, value in row.items():
                    if name not in ("step", "seconds") and value != "":
                        tf.summary.scalar(name, value)
        self._writing(write)

    def close(self) -> None:
        self._writing(self.writer.close)



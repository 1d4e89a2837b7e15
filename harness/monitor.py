"""What a run shows while it trains and is evaluated: a progress bar on a terminal (plain lines
elsewhere) and its metrics as TensorBoard scalars."""

import errno
import os
import sys
import time
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


class EvaluationProgress:
    """The final evaluation's phases as they run (evaluation.final's progress): on a terminal
    a live bar per phase with its time left, elsewhere a line as each phase begins and one as
    it ends with its time; nothing unless show. Before and after each part of a phase it calls
    check(phase), which raises to stop the evaluation."""

    def __init__(self, desc: str, show: bool, check):
        self.desc, self.show, self.check = desc, show, check
        self.bar = None

    def __call__(self, phase: str):
        self.close()
        self.check(phase)
        started = time.perf_counter()
        if self.show and sys.stderr.isatty():
            self.bar = tqdm(desc=f"{self.desc}: {phase}", unit="part", dynamic_ncols=True)
        elif self.show:
            print(f"{self.desc}: evaluating {phase}", flush=True)

        def report(done: int, total: int) -> None:
            if self.bar is not None:
                self.bar.total = total
                self.bar.update(done - self.bar.n)
            elif self.show and done == total:
                print(f"{self.desc}: {phase} done in {time.perf_counter() - started:.1f} s",
                      flush=True)
            self.check(phase)
        return report

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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



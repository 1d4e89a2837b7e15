"""How every entry point ends, written once: each way a run or a script can end, its exit
status and the exceptions that carry it.

    0    finished
    1    failed: NaN or Inf in training or in AIS, out of memory, a file that cannot be
         written, a run of a sweep that failed
    2    refused: a usage error, a run directory that cannot be used as asked, a cluster that
         cannot be joined or cannot run the tasks; nothing was written
    128 + N  stopped by signal N (130 SIGINT, 143 SIGTERM); what was saved resumes

No TensorFlow here.
"""

import signal

from harness.memory import OutOfMemory
from harness.rundir import RunDirError, WriteFailed

FINISHED, FAILED, REFUSED = 0, 1, 2


class NonFiniteError(Exception):
    """Training, or the final evaluation's AIS, produced NaN or Inf; the run was saved at the
    last finite log step."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run; it was saved at its last log step (or, stopped in
    its final evaluation, at its last training step)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class Refused(Exception):
    """What a script was asked to do cannot be done as asked; the message says why and what
    to do instead."""


FAILURES = (NonFiniteError, OutOfMemory, WriteFailed)
REFUSALS = (RunDirError, Refused)


def stopped_by(signum: int) -> int:
    return 128 + int(signum)


def status_of(error: BaseException) -> int:
    """The exit status of a script that ends by this exception (see the module doc)."""
    if isinstance(error, Interrupted):
        return stopped_by(error.signum)
    if isinstance(error, KeyboardInterrupt):
        return stopped_by(signal.SIGINT)
    if isinstance(error, FAILURES):
        return FAILED
    if isinstance(error, REFUSALS):
        return REFUSED
    raise ValueError(f"no exit status for {type(error).__name__}") from error

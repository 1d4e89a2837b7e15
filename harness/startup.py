"""TensorFlow started without its start-up lines on stderr, and a process end it survives.

TensorFlow's C++ libraries log a few lines as they load (absl's "All log messages before
absl::InitializeLog()", oneDNN's "custom operations are on", and on a machine without CUDA the
GPU build's failed cuInit when the devices are first listed), before any log level set from
Python applies. So `import tensorflow` runs with the process's stderr (file descriptor 2)
sent to a temporary file, which is dropped if the import succeeds and shown if it fails; after
it, TF_CPP_MIN_LOG_LEVEL keeps TensorFlow's own info and warning lines quiet. With
AVB_VERBOSE_TF=1 in the environment nothing is hidden.

After TensorFlow has failed to allocate memory, its C++ teardown at interpreter exit can abort
("double free or corruption"), so the scripts end through `end_process`, which then ends the
process at once, after flushing its output (every file of the run is already written).

No TensorFlow at module level here: importing this module is cheap.
"""

import contextlib
import os
import signal
import sys
import tempfile

VERBOSE_VARIABLE = "AVB_VERBOSE_TF"
QUIET_LOG_LEVEL = "2"   # TF_CPP_MIN_LOG_LEVEL: TensorFlow's errors only

_teardown_unsafe = []   # non-empty once TensorFlow has run out of memory in this process


def verbose() -> bool:
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


@contextlib.contextmanager
def stderr_held_back():
    """Sends file descriptor 2 to a temporary file while the block runs; what was written is
    dropped if the block succeeds, and copied to stderr if it raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """Imports TensorFlow (and Keras) quietly, unless AVB_VERBOSE_TF is set; returns tf."""
    if "tensorflow" not in sys.modules and not verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LOG_LEVEL)
        with stderr_held_back():
            import keras  # noqa: F401  (loads TensorFlow as its backend)
            import tensorflow
            # Device discovery logs too: on a machine without CUDA, tensorflow's GPU build
            # reports its failed cuInit as an error line, at the first look at the devices.
            tensorflow.config.list_physical_devices()
    import tensorflow

    return tensorflow


def mark_teardown_unsafe() -> None:
    """Records that a library's teardown at exit may crash (TensorFlow's after it ran out of
    memory, Ray's after a stop signal during its start), so that `end_process` skips it."""
    _teardown_unsafe.append(True)


def end_process(status: int) -> None:
    """Ends the process with status, at once (os._exit) if TensorFlow's teardown is unsafe."""
    if _teardown_unsafe:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


_stop_signals = []   # the stop signals received, once stop signals are caught


def _stop(signum, frame):
    _stop_signals.append(signum)
    raise KeyboardInterrupt


def catch_stop_signals() -> None:
    """From here on SIGINT and SIGTERM (a job runner's stop) raise KeyboardInterrupt, so that
    an entry point ends either as it ends on Ctrl-C, and each is remembered, so that one that a
    library swallows (Ray's start catches KeyboardInterrupt) is still acted on at the next
    raise_if_stopped. Call it again after a library that installs handlers of its own."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)


def raise_if_stopped() -> None:
    """KeyboardInterrupt if a stop signal has arrived since catch_stop_signals."""
    if _stop_signals:
        raise KeyboardInterrupt

"""Faults a user meets: two writers on one run, a failed write, values out of range, a run
beyond memory, and the start-up and progress output."""

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from harness import rundir
from harness import scriptrun
from harness import startup
from harness import training
from configs import INT32_MAX, SEED_MAX, VAEConfig
from harness.runstart import RunRequest
from harness.rundir import read_history
from tests.conftest import (ROOT, TINY, TINY_SETTINGS as TINY_VAE, assert_one_line,
                            assert_usage_error, call_main, saved_step, snapshot_files,
                            start_training, wait_for_rows)


@pytest.mark.slow
def test_a_second_writer_is_refused_and_changes_nothing(tmp_path, capsys):
    """Overwrite, resume and compare.py while a run is being written: each is refused at once,
    naming the run and its writer, and the run's files stay byte for byte as they were."""
    out = tmp_path / "avb-4px-seed0"
    process = start_training(out, "--steps", "1000000", "--log-every", "10")
    try:
        wait_for_rows(out / "history.csv", 1, process)
        process.send_signal(signal.SIGSTOP)      # holds the lock, writes nothing meanwhile
        before = snapshot_files(out)
        holder = [str(out), f"process {process.pid} on {socket.gethostname()}"]
        assert_one_line(call_main(capsys, "train_avb.py", *TINY, "--overwrite", "--out", out),
                        2, *holder)
        assert_one_line(call_main(capsys, "train_avb.py", "--resume", "--steps", "100", "--out",
                                  out), 2, *holder)
        for args in (["--runs-root", str(tmp_path), "--models", "avb"], ["--runs", str(out)]):
            assert_one_line(call_main(capsys, "compare.py", *args), 2, "in progress", *holder)
        assert snapshot_files(out) == before
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM


def test_the_writer_lock_nests_in_one_process_and_readers_do_not_take_it(tmp_path):
    with rundir.writing(tmp_path):
        with rundir.writing(tmp_path):
            assert rundir.writer_of(tmp_path) is None          # this process is the writer
        probe = subprocess.run([sys.executable, "-c", "import sys; from harness import rundir; "
                                f"print(rundir.writer_of(sys.argv[1]))", str(tmp_path)],
                               cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert probe.stdout.strip() == f"process {os.getpid()} on {socket.gethostname()}"
    assert rundir.writer_of(tmp_path) is None and rundir.is_empty(tmp_path)


@pytest.mark.slow
def test_a_failed_write_keeps_the_last_save_resumable(tmp_path, monkeypatch, capsys):
    """The run's second save (its last) fails at posterior.npz: one line naming the file and
    the cause, exit status 1, no temporary file, and the first save resumes bit for bit (with
    the largest seed, which NumPy and TensorFlow both take)."""
    out, replace, renamed = tmp_path / "vae", os.replace, []

    def failing_replace(source, target):
        if Path(target).name == rundir.POSTERIOR_FILE and rundir.POSTERIOR_FILE in renamed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(source))
        renamed.append(Path(target).name)
        replace(source, target)
    monkeypatch.setattr(os, "replace", failing_replace)
    config = VAEConfig(**TINY_VAE, seed=SEED_MAX, out=str(out))
    assert scriptrun.run(RunRequest(config, resume=False)) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(out / rundir.POSTERIOR_FILE) in lines[0], lines
    assert "No space left on device" in lines[0] and f"--resume --out {out}" in lines[0]
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]
    assert saved_step(out) == 10
    logged = without_seconds(read_history(out / "history.csv"))     # logged before the save
    assert [row["step"] for row in logged] == [10, 20, 30]
    monkeypatch.undo()
    training.train(config, progress=False, resume=True)
    assert without_seconds(read_history(out / "history.csv")) == logged


def without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_each_write_failure_names_the_file_and_cause_and_leaves_no_temporary(tmp_path, code):
    path = tmp_path / "state.npz"
    path.write_text("last save")

    def fail(temporary):
        temporary.write_text("half")
        raise OSError(code, os.strerror(code), str(temporary))
    with pytest.raises(rundir.WriteFailed, match=rf"{path}.*{os.strerror(code)}"):
        rundir.write_atomic(path, fail)
    assert os.listdir(tmp_path) == ["state.npz"] and path.read_text() == "last save"


@pytest.mark.slow
def test_a_full_disk_under_tensorboard_is_a_write_failure_not_memory(tmp_path, monkeypatch,
                                                                     capsys):
    def full(*args, **kwargs):   # what TensorFlow raises when its events file cannot grow
        raise tf.errors.ResourceExhaustedError(None, None, "events.out.tfevents; No space left "
                                               "on device\n\tCould not flush events file.")
    monkeypatch.setattr(tf.summary, "scalar", full)
    out = tmp_path / "run"
    assert scriptrun.run(RunRequest(VAEConfig(**TINY_VAE, out=str(out)), resume=False)) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"cannot write {out / 'tensorboard'} (No space left on device)" \
        in lines[0], lines


@pytest.mark.parametrize("script,flag,value", [
    ("train_vae.py", "--seed", "-1"),
    ("train_avb.py", "--seed", str(SEED_MAX + 1)),
    ("train_avb.py", "--steps", str(INT32_MAX + 1)),
    ("train_vae.py", "--batch-size", str(10 ** 12)),
    ("train_avb.py", "--posterior-samples", str(2 ** 63)),
    ("train_avb.py", "--adversary-width", str(INT32_MAX + 1)),
    ("compare.py", "--seeds", "-1"),
    ("compare.py", "--train-steps", str(INT32_MAX + 1)),
])
def test_values_out_of_range_are_usage_errors(tmp_path, capsys, script, flag, value):
    result = call_main(capsys, script, flag, value, "--out", tmp_path / "run")
    assert_usage_error(result, flag, value)
    assert not (tmp_path / "run").exists()


def test_a_batch_beyond_memory_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    result = call_main(capsys, "train_vae.py", "--batch-size", "2000000000", "--out", out)
    assert_one_line(result, 1, "not enough memory", "--batch-size 2000000000", "GiB")
    assert rundir.is_empty(out)


@pytest.mark.slow
def test_tensorflow_running_out_of_memory_is_one_line_and_no_crash(tmp_path):
    """Past the estimate (told there is memory enough), TensorFlow's own allocation fails: one
    line, exit status 1, and no abort in TensorFlow's teardown ("double free or corruption")."""
    code = ("from harness import startup\n"
            "startup.import_tensorflow()   # first, as the scripts do: quietly\n"
            "from harness import memory, scriptrun\n"
            "from configs import VAEConfig\n"
            "from harness.runstart import RunRequest\n"
            "memory.available_memory = lambda: 2 ** 60\n"
            f"config = VAEConfig(steps=10, batch_size=2000000000, out={str(tmp_path)!r})\n"
            "startup.end_process(scriptrun.run(RunRequest(config, resume=False)))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert_one_line(result, 1, "out of memory", "nothing of the run")


def test_held_back_stderr_is_dropped_on_success_and_shown_on_failure(capfd):
    with startup.stderr_held_back():
        os.write(2, b"start-up noise\n")
    with pytest.raises(ImportError):
        with startup.stderr_held_back():
            os.write(2, b"why it failed\n")
            raise ImportError("no tensorflow")
    assert capfd.readouterr().err == "why it failed\n"

"""Bad input, existing runs, interruption by real signals, NaN, atomic writes, resuming."""

import json
import os
import signal

import keras
import numpy as np
import pytest

from harness import rundir
from harness import training
from configs import VAEConfig
from tests.conftest import (FAST, assert_usage_error, call_main, copy_run, saved_step,
                            snapshot_files, start_training, wait_for_rows)
from harness.rundir import read_history

STOP_TIMEOUT = 120      # seconds a stopped run may take to save and exit before it counts as hung


@pytest.mark.parametrize("flag,value,words", [
    ("--dataset", "10px", ["4px", "9px"]),
    ("--steps", "0", ["--steps", "positive integer"]),
    ("--steps", "-5", ["--steps", "positive integer"]),
    ("--batch-size", "many", ["--batch-size", "positive integer"]),
    ("--log-every", "0", ["--log-every", "positive integer"]),
    ("--learning-rate", "-0.1", ["--learning-rate", "positive"]),
    ("--adversary-learning-rate", "nan", ["--adversary-learning-rate", "positive"]),
    ("--learning-rate", "fast", ["--learning-rate", "positive"]),
])
def test_bad_values_are_one_line_usage_errors(capsys, flag, value, words):
    assert_usage_error(call_main(capsys, "train_avb.py", flag, value), *words)


def test_out_through_a_file_or_unwritable_is_refused(tmp_path, capsys):
    (tmp_path / "a_file").write_text("keep")
    assert_usage_error(call_main(capsys, "train_vae.py", "--out", tmp_path / "a_file" / "run"),
                       "is a file")
    # /sys refuses new entries even to root, unlike a directory without write permission.
    assert_usage_error(call_main(capsys, "train_vae.py", "--out", "/sys/run"), "cannot write")
    assert (tmp_path / "a_file").read_text() == "keep"


@pytest.fixture
def finished_run(trained_run, tmp_path):
    """A finished tiny VAE run (a copy of the cached one)."""
    return copy_run(trained_run, "vae-4px-seed0", tmp_path / "runs")


@pytest.mark.slow
def test_existing_run_is_kept_unless_overwrite(finished_run, tmp_path, capsys):
    before = snapshot_files(finished_run)
    assert_usage_error(call_main(capsys, "train_vae.py", *FAST, "--out", finished_run),
                       "--overwrite", "--resume")
    assert snapshot_files(finished_run) == before

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("not a run")
    assert_usage_error(call_main(capsys, "train_vae.py", *FAST, "--overwrite", "--out", notes),
                       "holds no run")
    assert [p.name for p in notes.iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_overwrite_replaces_the_run(finished_run, capsys):
    out = finished_run
    (out / "notes.txt").write_text("mine")
    result = call_main(capsys, "train_vae.py", *FAST, "--steps", "50", "--overwrite", "--out",
                       out)
    assert result.returncode == 0, result.stderr
    assert [row["step"] for row in read_history(out / "history.csv")] == [50]
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_resume_refuses_changed_settings_and_missing_state(finished_run, tmp_path, capsys):
    before = snapshot_files(finished_run)
    result = call_main(capsys, "train_vae.py", "--resume", "--steps", "500", "--seed", "7",
                       "--learning-rate", "0.01", "--out", finished_run)
    assert_usage_error(result, "seed: 0 -> 7", "learning_rate: 0.003 -> 0.01")
    assert_usage_error(call_main(capsys, "train_vae.py", "--resume", "--out", finished_run),
                       "already at step 30")
    assert snapshot_files(finished_run) == before
    assert_usage_error(call_main(capsys, "train_vae.py", "--resume", "--out", tmp_path / "none"),
                       "no saved run state")


@pytest.mark.slow
def test_resume_finishes_a_run_stopped_before_its_final_evaluation(finished_run, capsys):
    out = finished_run
    (out / "metrics.json").unlink()
    history = (out / "history.csv").read_bytes()
    result = call_main(capsys, "train_vae.py", "--resume", "--out", out)
    assert result.returncode == 0, result.stderr
    assert (out / "history.csv").read_bytes() == history
    assert json.loads((out / "metrics.json").read_text())["steps"] == saved_step(out)


def assert_consistent(out):
    """history.csv, posterior.npz, state.npz and the networks all stop at one step."""
    history_steps = [int(row["step"]) for row in read_history(out / "history.csv")]
    with np.load(out / "posterior.npz") as posterior:
        assert posterior["steps"].tolist() == history_steps
        assert len(posterior["z"]) == len(history_steps)
    assert saved_step(out) == history_steps[-1]
    for name in ["encoder", "decoder", "adversary"]:
        keras.models.load_model(out / f"{name}.keras")
    return history_steps[-1]


def stop_with(signum, out):
    """Starts a long run, sends it signum once it has logged, and checks what it left."""
    process = start_training(out, "--steps", "1000000")
    wait_for_rows(out / "history.csv", 1, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=STOP_TIMEOUT)   # guards a hang, times nothing
    assert process.returncode == 128 + signum
    assert "--resume --out" in stderr and "Traceback" not in stderr
    return assert_consistent(out)


@pytest.mark.slow
def test_sigterm_stops_the_run_and_saves_it(tmp_path):
    stop_with(signal.SIGTERM, tmp_path / "stopped")


@pytest.mark.slow
def test_sigint_stops_and_the_run_resumes_as_if_never_stopped(tmp_path, capsys):
    out = tmp_path / "stopped"
    stopped_at = stop_with(signal.SIGINT, out)
    total = str(stopped_at + 100)
    resumed = call_main(capsys, "train_avb.py", "--resume", "--steps", total, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    # The same settings as start_training's, trained here without a stop.
    reference = tmp_path / "reference"
    assert call_main(capsys, "train_avb.py", *FAST, "--schedule", "constant",
                     "--adversary-steps", "1", "--steps", total,
                     "--out", reference).returncode == 0

    def without_seconds(path):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in read_history(path)]
    assert without_seconds(out / "history.csv") == without_seconds(reference / "history.csv")
    for name in ["decoder", "adversary"]:
        weights = [keras.models.load_model(d / f"{name}.keras").get_weights()
                   for d in (out, reference)]
        for resumed_w, reference_w in zip(*weights):
            np.testing.assert_array_equal(resumed_w, reference_w)


@pytest.mark.slow
def test_a_killed_run_leaves_whole_files_and_resumes(tmp_path, capsys):
    out = tmp_path / "killed"
    # A kill can land inside a file's write: the file under its own name is then the old
    # whole one, and its temporary name is left until the resume's claim removes it.
    process = start_training(out, "--steps", "1000000", "--log-every", "10",
                             "--adversary-steps", "2")
    wait_for_rows(out / "history.csv", 30, process)
    process.kill()
    process.wait()
    history = read_history(out / "history.csv")
    assert all("" not in (row["step"], row["elbo"]) for row in history)
    step = saved_step(out)
    assert step <= int(history[-1]["step"])
    resumed = call_main(capsys, "train_avb.py", "--resume", "--steps", step + 20, "--log-every",
                        "10", "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert assert_consistent(out) == step + 20
    assert not list(out.glob(rundir.TEMPORARY_GLOB))


@pytest.mark.slow
def test_nan_stops_the_run_and_keeps_the_last_finite_weights(tmp_path, capsys):
    # At this learning rate the second Adam step overflows the VAE's weights.
    config = VAEConfig(steps=100, log_every=1, batch_size=32, posterior_samples=4,
                       encoder_width=8, decoder_width=8, learning_rate=1e30,
                       out=str(tmp_path / "nan"))
    with pytest.raises(training.NonFiniteError, match=r"elbo.* at step \d+"):
        training.train(config, progress=False)
    out = tmp_path / "nan"
    last_step = int(read_history(out / "history.csv")[-1]["step"])
    assert saved_step(out) == last_step
    weights = keras.models.load_model(out / "decoder.keras").get_weights()
    assert all(np.isfinite(w).all() for w in weights)

    result = call_main(capsys, "train_vae.py", *FAST, "--learning-rate", "1e30", "--out",
                       tmp_path / "nan_script")
    assert result.returncode == 1 and "NaN or Inf at step" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_writer_removes_what_a_killed_writer_left_half_written(tmp_path):
    (tmp_path / "history.csv").write_text("whole")
    (tmp_path / ".history.tmp.csv").write_text("ha")
    (tmp_path / ".encoder.tmp.keras").write_text("")
    with rundir.writing(tmp_path):
        assert sorted(os.listdir(tmp_path)) == [rundir.LOCK_FILE, "history.csv"]
    assert (tmp_path / "history.csv").read_text() == "whole"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("old")

    def fail_halfway(temporary):
        temporary.write_text("half")
        raise OSError("disk full")
    with pytest.raises(OSError):
        rundir.write_atomic(path, fail_halfway)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["history.csv"]

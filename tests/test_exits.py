"""One mapping from the ways a run or a script ends to exit statuses (harness/exits.py), and
every entry point following it: a NaN in a run that compare.py trains exits 1."""

import signal

import pytest

import compare
from harness import exits, memory, rundir, training


@pytest.mark.parametrize("error, status", [
    (exits.NonFiniteError("elbo became NaN"), 1),
    (memory.OutOfMemory("not enough memory"), 1),
    (rundir.WriteFailed("cannot write x"), 1),
    (rundir.RunDirError("x holds another run"), 2),
    (rundir.RunLocked("x is being written"), 2),
    (exits.Refused("no node has 4 CPUs"), 2),
    (exits.Interrupted("stopped", signal.SIGINT), 130),
    (exits.Interrupted("stopped", signal.SIGTERM), 143),
    (KeyboardInterrupt(), 130)])
def test_each_way_a_run_ends_has_one_status(error, status):
    assert exits.status_of(error) == status


def test_an_unknown_failure_has_no_status():
    with pytest.raises(ValueError, match="no exit status for ZeroDivisionError"):
        exits.status_of(ZeroDivisionError())


def test_a_nan_in_a_run_compare_trains_exits_1_with_one_line(tmp_path, monkeypatch, capfd):
    def diverging(config, progress=True, resume=False):
        raise training.NonFiniteError("elbo became NaN or Inf at step 7; the run in "
                                      f"{config.out} keeps its save at step 0")
    monkeypatch.setattr(training, "train", diverging)
    with pytest.raises(SystemExit) as ended:
        compare.main(["--runs-root", str(tmp_path), "--models", "vae", "--train-steps", "10"])
    assert ended.value.code == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "failed: elbo became NaN or Inf at step 7" in err[0], err

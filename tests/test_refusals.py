"""What every entry point refuses, and how: a value its flag's type refuses, a path the
operating system refuses, a resource a sweep cannot get, each one line and exit status 2
before anything is written, Ray starts or TensorFlow loads; and a stop signal at any moment of
a sweep's start, which it obeys with exit status 130, resumable by the same command."""

import signal
import subprocess
import sys
import time

import pytest

import registry
from harness import rundir
import sweep
from configs import SEED_MAX
from tests.conftest import ROOT, SWEEP_TINY, assert_refused, call_main, fresh_python

LONG_NAME = "x" * 300          # longer than any file system's name limit (255 bytes)
@pytest.mark.parametrize("script,flag", [
    ("train_vae.py", "--out"), ("train_avb.py", "--out"), ("compare.py", "--runs-root"),
    ("compare.py", "--out"), ("compare.py", "--runs"), ("sweep.py", "--out"),
    ("benchmarks/bench.py", "--out")])
def test_a_name_too_long_is_one_line_for_every_entry_point(tmp_path, capsys, script, flag):
    path = tmp_path / LONG_NAME / "run"
    assert_refused(call_main(capsys, script, flag, path), flag, "File name too long")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script,flag", [
    ("sweep.py", "--out"), ("benchmarks/bench.py", "--out"), ("compare.py", "--runs")])
def test_a_path_through_a_file_is_one_line(tmp_path, capsys, script, flag):
    (tmp_path / "a_file").write_text("keep")
    path = tmp_path / "a_file" / "run"
    ended = call_main(capsys, script, flag, path)
    assert_refused(ended, flag, str(path))
    assert "is a file" in ended.stderr or "Not a directory" in ended.stderr
    assert (tmp_path / "a_file").read_text() == "keep"


@pytest.mark.parametrize("args,words", [
    (["--seeds", "-1"], ["--seeds", "-1"]),
    (["--seeds", "0", str(SEED_MAX + 1)], ["--seeds", str(SEED_MAX + 1)]),
    (["--cpus-per-run", "64"], ["--cpus-per-run 64", "CPUs"]),
    (["--cpus-per-run", "0"], ["--cpus-per-run", "positive integer"]),
])
def test_sweep_refuses_bad_seeds_and_cpus_before_ray_starts(tmp_path, capsys, args, words):
    out = tmp_path / "sweep"
    assert_refused(call_main(capsys, "sweep.py", *args, "--out", out), *words)
    assert not out.exists()


def test_bench_refuses_a_bad_duration(capsys):
    assert_refused(call_main(capsys, "benchmarks/bench.py", "--seconds", "0"), "--seconds",
                   "positive")


def fresh_cases(tmp_path) -> dict:
    """For each entry point: its --help, then usage errors of several kinds (a value, a data
    set, a data file, a path, a grid), as the tests in this process check them one by one."""
    out, absent = str(tmp_path / "out"), str(tmp_path / "absent.npz")
    implicit = tmp_path / "avb"
    implicit.mkdir()
    (implicit / "config.json").write_text(
        '{"model": "avb", "dataset": "4px", "seed": 0, "steps": 1, "n_points": 4, '
        '"image_shape": [2, 2]}')
    return {
        "train_vae.py": [["--dataset", "10px"], ["--latent-dim", "0", "--out", out],
                         ["--dataset", "mnist", "--data-file", absent, "--out", out],
                         ["--out", str(tmp_path / LONG_NAME / "run")]],
        "train_avb.py": [["--steps", "0"], ["--ais-start", "middle", "--out", out],
                         ["--seed", str(SEED_MAX + 1), "--out", out]],
        "compare.py": [["--dataset", "fashion", "--runs-root", out],
                       ["--dataset", "mnist", "--data-file", absent, "--runs-root", out]],
        "sweep.py": [["--seeds", "-1", "--out", out], ["--grid", "no_such_setting=1"],
                     ["--cpus-per-run", "64", "--out", out],
                     ["--datasets", "mnist", "--data-file", absent, "--models", "vae",
                      "--seeds", "0", "--out", out]],
        "benchmarks/bench.py": [["--seconds", "0"]],
        "critic_check.py": [[str(implicit)]]}


@pytest.mark.parametrize("script", ["train_vae.py", "train_avb.py", "compare.py", "sweep.py",
                                    "benchmarks/bench.py", "critic_check.py"])
def test_help_and_usage_errors_load_neither_tensorflow_nor_ray(tmp_path, script):
    """In one fresh Python per entry point: --help and each usage error end as they should
    (exit 0; exit 2 and one line), and neither TensorFlow nor Ray was loaded by the end, nor
    anything written."""
    cases = fresh_cases(tmp_path)[script]
    listed = {"train_vae.py": [["--print-config", "--out", str(tmp_path / "out")],
                               ["--list-models"]],
              "train_avb.py": [["--list-models"]], "compare.py": [["--list-models"]]}
    listed = listed.get(script, [])
    ended, ray, tensorflow = fresh_python(script, ["--help"], *listed, *cases)
    help_, ok, errors = ended[0], ended[1:1 + len(listed)], ended[1 + len(listed):]
    assert help_.returncode == 0 and "--help" in help_.stdout, help_
    for args, ended in zip(listed, ok):
        assert ended.returncode == 0, ended
        if args[0] == "--print-config":       # every setting listed, nothing trained
            assert ended.stdout.startswith("model: vae"), ended
        else:                                 # each model the script trains, a line each
            trained = [s.name for s in registry.specs()
                       if script == "compare.py" or registry.script_of(s) == script]
            names = [line.split()[0] for line in ended.stdout.splitlines()
                     if not line.startswith(" ")]
            assert names == trained, ended
    for args, ended in zip(cases, errors):
        assert_refused(ended)
    assert (ray, tensorflow) == (False, False)
    assert not (tmp_path / "out").exists()


class FakeRay:
    """What check_resources asks of Ray: its nodes and the CPUs free now."""

    def __init__(self, node_cpus, free):
        self.node_cpus, self.free = node_cpus, free

    def nodes(self):
        return [{"Alive": True, "Resources": {"CPU": n}} for n in self.node_cpus] + [
            {"Alive": False, "Resources": {"CPU": 64.0}}]

    def available_resources(self):
        return {"CPU": self.free}


def test_a_cluster_without_a_node_big_enough_is_refused_and_a_busy_one_is_waited_for(capsys):
    with pytest.raises(sweep.Unschedulable, match=r"--cpus-per-run 8: .* nodes have 4, 2"):
        sweep.check_resources(FakeRay([4.0, 2.0], free=6.0), 8)
    sweep.check_resources(FakeRay([4.0, 2.0], free=1.0), 2)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "waiting for 2 free CPUs per run: 1 of" in out
    sweep.check_resources(FakeRay([4.0, 2.0], free=6.0), 2)
    assert capsys.readouterr().out == ""


# A stop signal at several moments of a sweep's start. Each moment is counted from the sweep's
# first line (printed once its plan is checked and its signal handling is in place), so that a
# slow machine shifts the moments and not what they fall on: before Ray starts, while it starts,
# and while its tasks start. The first history row (a run in training) is test_sweep's.
STOP_DELAYS = (0.0, 1.5, 5.0)


@pytest.mark.slow
@pytest.mark.parametrize("delay", STOP_DELAYS)
def test_a_stop_signal_during_the_sweeps_start_exits_130_and_the_same_command_resumes(
        tmp_path, delay):
    out = tmp_path / "out"
    args = ["--models", "vae", "--datasets", "4px", "--seeds", "0", "--steps", "1000000",
            "--out", str(out), *(f"--grid={k}={v[0]}" for k, v in SWEEP_TINY.items())]
    process = subprocess.Popen([sys.executable, "sweep.py", *args], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first_line = process.stdout.readline()
    assert "runs in" in first_line, process.communicate(timeout=120)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=180)      # guards a hang, times nothing
    assert process.returncode == 130, stderr
    assert "run the same command again" in stderr and "Traceback" not in stderr
    plans = sweep.plan_runs(sweep.sweep_from_args(sweep.build_parser(), args))
    [(plan, _, resume)] = sweep.pending_runs(sweep.sweep_from_args(sweep.build_parser(), args),
                                             plans)
    state = rundir.run_state(plan.path, plan.config(1000000))
    assert state.kind in (rundir.NEW, rundir.UNSAVED, rundir.UNFINISHED)
    assert resume == (state.kind == rundir.UNFINISHED)
    assert not (out / "failed.json").exists()

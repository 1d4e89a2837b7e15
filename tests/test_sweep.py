"""sweep.py: runs as Ray tasks through the scripts' training path, idempotent re-runs, a
failing run among good ones, Ctrl-C, and usage errors before Ray starts."""

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from figures import plots, sweep_summary
from harness import rundir
import sweep
from configs import VAEConfig
from tests.conftest import ROOT, SWEEP_TINY, TINY_SETTINGS, cached_config, call_main

# Its module fixture is built once: the module's tests run on one worker.
pytestmark = pytest.mark.xdist_group("test_sweep")

GOOD_RATE, DIVERGING_RATE = 3e-3, 1e30
STEPS = TINY_SETTINGS["steps"]


def history_without_seconds(path):
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in rundir.read_history(path / rundir.HISTORY_FILE)]


# The module's one Ray start: a sweep of the VAE on a local Ray instance, on 4px and on
# digits, at a good learning rate and at one so large that training diverges.
@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    config = sweep.Sweep(models=("vae",), datasets=("4px", "digits"), seeds=(0,), steps=STEPS,
                         grid={"learning_rate": (GOOD_RATE, DIVERGING_RATE), **SWEEP_TINY},
                         out=str(tmp_path_factory.mktemp("sweep") / "out"))
    return config, sweep.run_sweep(config)


def plan_of(config, rate, dataset="4px"):
    return next(p for p in sweep.plan_runs(config)
                if dict(p.settings)["learning_rate"] == rate and p.dataset == dataset)


@pytest.mark.slow
def test_a_swept_run_equals_the_scripts_run(swept, trained_run):
    """The good 4px run has the cached tiny run's settings: the same history, step for step,
    as training.train gave that run in another process."""
    config, result = swept
    plan = plan_of(config, GOOD_RATE)
    assert result.outcomes[plan.path.name]["status"] == "finished"
    assert result.ray_startup > 0
    saved = json.loads((plan.path / rundir.CONFIG_FILE).read_text())
    assert saved["model"] == "vae" and saved["learning_rate"] == GOOD_RATE
    direct = trained_run("vae-4px-seed0")
    assert dataclasses.replace(plan.config(STEPS), out="") == dataclasses.replace(
        cached_config("vae-4px-seed0", direct), out="")
    history = history_without_seconds(plan.path)
    assert [row["step"] for row in history] == [10, 20, 30]
    assert history == history_without_seconds(direct)


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_others_finish(swept):
    config, result = swept
    failed = plan_of(config, DIVERGING_RATE)
    assert result.outcomes[failed.path.name]["status"] == "failed"
    assert "NaN or Inf" in result.outcomes[failed.path.name]["error"]
    with open(config.out_dir() / "summary.csv") as f:
        rows = {(row["dataset"], row["learning_rate"]): row for row in csv.DictReader(f)}
    assert rows["4px", str(DIVERGING_RATE)]["status"] == "failed"
    assert "NaN or Inf" in rows["4px", str(DIVERGING_RATE)]["error"]
    good = rows["4px", str(GOOD_RATE)]
    assert good["status"] == "finished" and float(good["log_px"]) < 0
    assert float(good["optimum_log_px"]) == pytest.approx(-1.3862944, abs=1e-6)
    assert good["elbo_converged"] == "True"    # a VAE's ELBO is exact
    assert "| VAE | 4px | 0 |" in (config.out_dir() / "summary.md").read_text()
    assert (config.out_dir() / "robustness-vae.png").stat().st_size > 0
    assert (config.out_dir() / "scaling.png").stat().st_size > 0    # two data sets


@pytest.mark.slow
def test_a_sweep_trains_on_digits(swept):
    config, result = swept
    plan = plan_of(config, GOOD_RATE, "digits")
    assert result.outcomes[plan.path.name]["status"] == "finished", result.outcomes
    assert "| VAE | digits |" in (config.out_dir() / "summary.md").read_text()


def test_scaling_is_drawn_only_when_more_than_one_data_set_is_swept(tmp_path):
    rows = [fake_row("9px", s, 1e-3, 8, -2.3) for s in (0, 1)]
    grid = {"adversary_learning_rate": (1e-3,), "adversary_width": (8,)}
    sweep_summary.write_figures(tmp_path, rows, grid, {"avb": list(grid)})
    assert not (tmp_path / "scaling.png").exists()
    sweep_summary.write_figures(tmp_path, [*rows, fake_row("4px", 0, 1e-3, 8, -1.4)], grid,
                                {"avb": list(grid)})
    assert (tmp_path / "scaling.png").stat().st_size > 0


@pytest.mark.slow
def test_running_the_sweep_again_trains_nothing(swept):
    config, _ = swept
    history = plan_of(config, GOOD_RATE).path / rundir.HISTORY_FILE
    before = history.stat().st_mtime_ns
    again = sweep.run_sweep(config)
    assert again.outcomes == {} and again.ray_startup == 0.0
    assert history.stat().st_mtime_ns == before
    assert "failed" in (config.out_dir() / "summary.md").read_text()


def test_bad_grid_is_one_line_before_ray_starts(capsys):
    """(That it loads neither Ray nor TensorFlow: test_refusals, in a fresh Python.)"""
    for grid, expected in (["no_such_setting=1"], "not a setting"), \
            (["learning_rate=fast"], "positive number"), \
            (["activation=tanh"], "invalid choice"), (["learning_rate"], "SETTING=VALUE"):
        result = call_main(capsys, "sweep.py", "--grid", *grid)
        assert result.returncode == 2 and expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_ctrl_c_saves_the_running_runs_for_the_same_command(tmp_path):
    """SIGINT to the sweep cancels its tasks; a run in training saves, as on SIGINT to a
    script, and the same sweep then resumes it."""
    out = tmp_path / "out"
    args = ["--models", "vae", "--datasets", "4px", "--seeds", "0", "--steps", "1000000",
            "--out", str(out), *(f"--grid={k}={v[0]}" for k, v in SWEEP_TINY.items())]
    process = subprocess.Popen([sys.executable, "sweep.py", *args], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    history = next(iter(sweep.plan_runs(sweep_of(args)))).path / rundir.HISTORY_FILE
    deadline = time.monotonic() + 120
    while not history.is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "run the same command again" in stderr
    [(plan, config, resume)] = sweep.pending_runs(sweep_of(args), sweep.plan_runs(sweep_of(args)))
    assert resume and rundir.is_unfinished(plan.path, "vae") and rundir.saved_step(plan.path) > 0


def sweep_of(args):
    return sweep.sweep_from_args(sweep.build_parser(), args)


def test_a_run_with_other_settings_in_the_way_is_refused(tmp_path):
    config = sweep.Sweep(models=("vae",), datasets=("4px",), seeds=(0,), out=str(tmp_path))
    [plan] = sweep.plan_runs(config)
    plan.path.mkdir()
    rundir.write_json(plan.path / rundir.CONFIG_FILE, {
        "model": "vae", **dataclasses.asdict(VAEConfig(learning_rate=1.0)),
        "n_points": 4, "image_shape": [2, 2]})
    rundir.write_state(plan.path, [], 10)
    with pytest.raises(rundir.RunDirError, match="learning_rate"):
        sweep.pending_runs(config, [plan])


def fake_row(dataset, seed, rate, width, log_px, status="finished"):
    n = int(dataset[:-2])
    return {"model": "avb", "dataset": dataset, "n_points": n, "seed": seed,
            "adversary_learning_rate": rate, "adversary_width": width, "log_px": log_px,
            "optimum_log_px": -float(np.log(n)), "elbo": log_px - 0.1, "posterior_gap": 0.1,
            "status": status}


def test_figures_of_every_shape_are_drawn(tmp_path):
    rows = [fake_row(d, s, r, w, -np.log(int(d[:-2])) - 0.01 * s - r)
            for d in ("4px", "9px") for s in (0, 1) for r in (1e-3, 5e-3) for w in (8, 16)]
    rows[-1] = {**rows[-1], "status": "failed", "log_px": "", "elbo": ""}
    rows[0] = {**rows[0], "elbo_converged": False}
    grid = {"adversary_learning_rate": (1e-3, 5e-3), "adversary_width": (8, 16)}
    finished = [r for r in rows if r["status"] == "finished"]
    paths = [plots.plot_scaling(finished, grid, tmp_path / "scaling.png"),
             plots.plot_robustness("avb", rows, list(grid), tmp_path / "map.png"),
             plots.plot_robustness("avb", rows, list(grid)[:1], tmp_path / "line.png")]
    assert all(path.stat().st_size > 0 for path in paths)


def test_maps_count_runs_whose_elbo_estimate_diverged():
    rows = [{**fake_row("9px", s, 1e-3, 8, -2.3), "elbo_converged": converged}
            for s, converged in enumerate([True, False, False, ""])]
    rows.append({**fake_row("9px", 4, 1e-3, 8, 0.0), "status": "failed", "elbo_converged": ""})
    assert plots.diverging(rows, "elbo") == 2
    assert plots.diverging(rows, "log_px") == 0      # log p(x) is exact: nothing to mark

"""Smoke runs of the training scripts with tiny settings, and what a run directory holds."""

import json

import numpy as np
import pytest

import registry
from harness import rundir
from harness import training
from harness.rundir import read_history
from tests.conftest import TINY, cached_config, call_main, loaded_input_counts, run_script

NETWORK_INPUTS = {"vae": {"encoder": 1, "decoder": 1},                  # x; z
                  "avb": {"encoder": 2, "decoder": 1, "adversary": 2}}  # [x, eps]; z; [x, z]


@pytest.mark.slow
@pytest.mark.parametrize("model,extra", [("vae", []), ("avb", ["--adversary-width", "8",
                                                               "--noise-dim", "3",
                                                               "--adversary-steps", "1"])])
def test_script_writes_a_complete_run(tmp_path, model, extra):
    out = tmp_path / model
    result = run_script(f"train_{model}.py", *TINY, *extra, "--dataset", "9px", "--out", str(out),
                        "--eval-every", "20")
    assert result.returncode == 0, result.stderr
    assert "exact log p(x)" in result.stdout
    # Output to pipes: no TensorFlow start-up lines, and plain progress lines, not a bar.
    assert result.stderr == "" and "\r" not in result.stdout
    assert [line.split()[3] for line in result.stdout.splitlines() if " step " in line] == [
        "10/30", "20/30", "30/30"]
    spec = registry.get(model)
    assert {*rundir.RUN_FILES, *(f"{name}.keras" for name in spec.networks)} <= {
        p.name for p in out.iterdir()}

    config = json.loads((out / "config.json").read_text())
    assert config["model"] == model and config["dataset"] == "9px" and config["steps"] == 30
    assert {"tensorflow", "keras", "numpy"} <= set(config["versions"])

    history = read_history(out / "history.csv")
    assert list(history[0]) == ["step", "seconds", *spec.metric_names, "log_px"]
    assert [row["step"] for row in history] == [10, 20, 30]
    assert all(np.isfinite(float(v)) for row in history for v in row.values() if v != "")
    assert [row["log_px"] != "" for row in history] == [False, True, True]   # --eval-every 20

    posterior = np.load(out / "posterior.npz")
    np.testing.assert_array_equal(posterior["steps"], [10, 20, 30])
    assert posterior["z"].shape == (3, 9, 8, 2)
    assert posterior["reconstructions"].shape == (3, 9, 9)
    assert posterior["prior_images"].shape == (3, rundir.PRIOR_IMAGES, 9)

    assert set(NETWORK_INPUTS[model]) == set(spec.networks)

    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["log_px_per_point"]) == 9
    # An AVB in 2-D maps its adversary's error at each of the 9 points (critic.npz).
    assert (out / rundir.CRITIC_FILE).is_file() == (model == "avb")
    if model == "avb":
        critic = rundir.read_critic(out)
        assert list(critic["points"]) == list(range(9)) and critic["log_q"].shape[0] == 9
        assert metrics["critic_kl_bias"] == pytest.approx(np.mean(critic["kl_bias"]))
    assert metrics["log_px"] < 0 and metrics["optimum_log_px"] == pytest.approx(-np.log(9))
    assert np.isfinite(metrics["elbo"]) and len(metrics["posterior_gap_per_point"]) == 9
    # The coarser grid that tracks log p(x) during training agrees with the final evaluation.
    assert float(history[-1]["log_px"]) == pytest.approx(metrics["log_px"], abs=1e-3)


@pytest.mark.slow
def test_saved_networks_load_without_the_project(trained_run, tmp_path):
    """Each model's saved networks, loaded in one Python that cannot see this project's
    modules, take the inputs the model gives them."""
    paths = [trained_run(f"{model}-4px-seed0") / f"{name}.keras"
             for model, inputs in NETWORK_INPUTS.items() for name in inputs]
    assert loaded_input_counts(paths, tmp_path) == [
        n for inputs in NETWORK_INPUTS.values() for n in inputs.values()]


@pytest.mark.parametrize("script", ["train_vae.py", "train_avb.py"])
def test_help_explains_flags(capsys, script):
    """(That --help loads no TensorFlow: test_refusals, in a fresh Python.)"""
    text = call_main(capsys, script, "--help").stdout
    for flag in ["--dataset", "--steps", "--batch-size", "--seed", "--log-every", "--out",
                 "--learning-rate", "--encoder-width", "--decoder-depth"]:
        assert flag in text
    if script == "train_avb.py":
        for flag in ["--noise-dim", "--adversary-width", "--adversary-depth",
                     "--adversary-learning-rate", "--adversary-steps"]:
            assert flag in text


def test_bad_flag_values_are_usage_errors(capsys):
    result = call_main(capsys, "train_avb.py", "--steps", "0")
    assert result.returncode == 2 and "positive integer" in result.stderr
    result = call_main(capsys, "train_vae.py", "--dataset", "10px")
    assert result.returncode == 2 and "10 is not a perfect square" in result.stderr


def without_seconds(path):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in read_history(path)]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vae", "avb"])
def test_same_seed_gives_the_same_history(tmp_path, trained_run, model):
    """A run trained here repeats, row for row, the cached run of its settings (trained by
    whichever process asked first); the cached run of the next seed differs."""
    training.train(cached_config(f"{model}-4px-seed0", tmp_path / "again"), progress=False)
    history = without_seconds(trained_run(f"{model}-4px-seed0") / "history.csv")
    assert without_seconds(tmp_path / "again" / "history.csv") == history
    other = without_seconds(trained_run(f"{model}-4px-seed1") / "history.csv")
    assert other[-1]["elbo"] != history[-1]["elbo"]

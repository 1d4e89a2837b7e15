"""Latent spaces of any dimension: every model trains, is evaluated by AIS and is compared with
D = 3; old runs read as D = 2; the D-dimensional nearest-neighbour entropy; the projection of
the latent picture; and what the new flags refuse."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from evaluation import ais
import compare
from evaluation import entropy
from figures import plots
import registry
from harness import rundir
from harness import sweep_grid
from harness import training
from tests.conftest import call_main

# Its module fixture is built once: the module's tests run on one worker.
pytestmark = pytest.mark.xdist_group("test_latent_dim")

D = 3
TINY_AIS = {"ais_steps": 20, "ais_chains": 4, "bdmc_points": 4}
TINY = {"steps": 20, "log_every": 10, "batch_size": 32, "posterior_samples": 8,
        "encoder_width": 8, "decoder_width": 8, **TINY_AIS}
MODELS = ("vae", "iwae", "flow", "avb", "avb-ac")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny run of every model with a 3-D latent, trained here: name -> run directory."""
    root = tmp_path_factory.mktemp("latent3")
    paths = {}
    for name in MODELS:
        config = registry.default_config(name, latent_dim=D, out=str(root / name), **TINY)
        training.train(config, progress=False)
        paths[name] = root / name
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains_with_a_three_dimensional_latent(runs, name):
    run = rundir.read_run(runs[name])
    assert run.config["latent_dim"] == D
    assert run.posterior["z"].shape[-1] == D
    m = run.metrics
    assert m["log_px_method"] == "ais"
    assert np.isfinite(m["log_px"]) and m["log_px_stderr"] > 0
    assert len(m["log_px_ess_per_point"]) == 4
    assert all(1 <= ess <= TINY_AIS["ais_chains"] + 1e-6 for ess in m["log_px_ess_per_point"])
    assert np.isfinite(m["bdmc_gap"]) and m["ais"]["steps"] == TINY_AIS["ais_steps"]
    assert m["bdmc_gap_stderr"] > 0
    # log p(x) >= ELBO for every q; AIS is a stochastic lower bound, hence the room.
    if registry.get(name).exact_log_q:
        assert m["log_px"] > m["elbo"] - 0.5
    history = rundir.read_history(runs[name] / rundir.HISTORY_FILE)
    assert all(row["log_px"] == "" for row in history)      # nothing tracked where D > 2


@pytest.mark.slow
def test_compare_shows_the_method_and_the_gap(runs, tmp_path, capsys):
    out = tmp_path / "compared"
    compare.main(["--runs", *map(str, runs.values()), "--out", str(out)])
    table = (out / "results.md").read_text()
    assert table.count("AIS, BDMC gap") == len(MODELS)
    assert "| 3 |" in table
    assert all((out / f"latent-{name}.png").stat().st_size > 0 for name in MODELS)
    assert not list(out.glob("posterior-*.png"))     # no exact posterior where D > 2


def test_compare_finds_and_names_runs_by_their_latent_dimension(tmp_path):
    [spec] = compare.run_specs(compare.CompareConfig(latent_dim=8, models=("vae",),
                                                     runs_root=str(tmp_path)))
    assert spec.path.name == "vae-4px-latent_dim=8-seed0" and spec.latent_dim == 8
    [spec] = compare.run_specs(compare.CompareConfig(models=("vae",), runs_root=str(tmp_path)))
    assert spec.path.name == "vae-4px-seed0"


def test_a_sweep_grid_over_the_latent_dimension(tmp_path):
    grid = sweep_grid.parse_grid([("latent_dim", ["2", "8"])], ("vae", "avb"))
    assert grid == {"latent_dim": (2, 8)}
    with pytest.raises(ValueError, match="latent_dim"):
        sweep_grid.parse_grid([("latent_dim", ["0"])], ("vae",))


@pytest.mark.slow
def test_a_run_saved_without_a_latent_dimension_reads_as_two(runs, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    record = json.loads((runs["vae"] / rundir.CONFIG_FILE).read_text())
    for name in ("latent_dim", "log_px", "ais_steps"):
        record.pop(name)
    (old / rundir.CONFIG_FILE).write_text(json.dumps(record))
    read = rundir.read_config(old / rundir.CONFIG_FILE)
    assert read["latent_dim"] == 2 and read["log_px"] == "auto" and read["ais_steps"] == 1000


@pytest.mark.slow
def test_nonfinite_ais_weights_stop_the_run_naming_the_data_point(tmp_path, monkeypatch):
    likelihood_fn = ais.bernoulli_log_likelihood_fn

    def nan_at_point_2(decoder):
        log_likelihood = likelihood_fn(decoder)

        def spoilt(z, x):
            bad = tf.one_hot(2, tf.shape(x)[0], on_value=np.nan, off_value=0.0)
            return log_likelihood(z, x) + bad
        return spoilt
    monkeypatch.setattr(ais, "bernoulli_log_likelihood_fn", nan_at_point_2)
    config = registry.default_config("vae", latent_dim=D, out=str(tmp_path / "nan"), **TINY)
    with pytest.raises(training.NonFiniteError, match="data point 2.*keeps its save at step 20"):
        training.train(config, progress=False)
    assert rundir.run_state(tmp_path / "nan", config).kind == rundir.UNFINISHED


@pytest.mark.parametrize("d", [2, 4, 8])
def test_knn_entropy_of_a_gaussian_in_d_dimensions(d):
    """Measured bias on N(0, I_D) with 8000 samples: -0.02, -0.04, -0.03 nats at D = 2, 4, 8
    (README); the tolerance leaves room for the sample."""
    z = np.random.default_rng(d).standard_normal((8000, d))
    truth = 0.5 * d * math.log(2 * math.pi * math.e)
    assert entropy.knn_entropy(z) == pytest.approx(truth, abs=entropy.ENTROPY_TOLERANCE
                                                      + 0.03)


def test_the_unit_ball_volume():
    assert math.exp(entropy.log_unit_ball_volume(1)) == pytest.approx(2.0)
    assert math.exp(entropy.log_unit_ball_volume(2)) == pytest.approx(math.pi)
    assert math.exp(entropy.log_unit_ball_volume(3)) == pytest.approx(4 * math.pi / 3)


def test_the_projection_finds_the_widest_axes_and_keeps_two_dimensions_as_they_are():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2000, 5)) * np.array([0.1, 3.0, 0.2, 1.5, 0.1])
    projection = plots.latent_projection(z[None])
    np.testing.assert_allclose(np.abs(projection.axes[[1, 3]]), np.eye(2), atol=0.02)
    assert "principal axis 1" in projection.labels[0]
    flat = plots.latent_projection(z[None, :, :2])
    np.testing.assert_array_equal(flat(z[:, :2]), z[:, :2])


BAD_INPUTS = [
    ("train_vae.py", ["--latent-dim", "0"], "--latent-dim"),
    ("train_vae.py", ["--latent-dim", "-3"], "--latent-dim"),
    ("train_avb.py", ["--latent-dim", "100000"], "--latent-dim"),
    ("train_avb.py", ["--latent-dim", "eight"], "--latent-dim"),
    ("train_vae.py", ["--ais-steps", "0"], "--ais-steps"),
    ("train_vae.py", ["--ais-chains", "-1"], "--ais-chains"),
    ("train_vae.py", ["--ais-leapfrog-steps", "1.5"], "--ais-leapfrog-steps"),
    ("train_vae.py", ["--ais-schedule", "cubic"], "--ais-schedule"),
    ("train_vae.py", ["--bdmc-points", "0"], "--bdmc-points"),
    ("train_vae.py", ["--log-px", "quadrature", "--latent-dim", "3"], "--log-px quadrature"),
    ("train_avb.py", ["--ais-start", "middle"], "--ais-start"),
    ("compare.py", ["--latent-dim", "1"], "--latent-dim"),
]


def test_bad_latent_and_ais_settings_are_one_line(tmp_path, capsys):
    """Each main() exits 2 with one line on stderr, writing nothing (that none loads
    TensorFlow: test_refusals, in a fresh Python)."""
    for script, args, words in BAD_INPUTS:
        ended = call_main(capsys, script, *args, "--out", tmp_path / "x")
        lines = ended.stderr.strip().splitlines()
        assert ended.returncode == 2 and len(lines) == 1 and words in lines[0], (script, args)
    assert not (tmp_path / "x").exists()

"""The semi-implicit posterior (sivi.py): known answers where its mixing is Gaussian (q is then
Gaussian in closed form: the estimate of log q converges to it from above, the bound rises
with the mixing draws to the closed-form ELBO), the scripts' selection of it, and a smoke run
whose evaluation reports the bound, its convergence and the nearest-neighbour cross-check."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import registry
import train_vae
from data import load
from densities import bernoulli_log_likelihood, gaussian_log_density, standard_normal_log_density
from tests.conftest import TINY, call_main, loaded_input_counts

X = tf.constant(load("4px").x[1:2])
SIGMA = 0.3                      # q's Gaussian noise around its mixing means
SPREAD = np.array([1.0, 0.5])    # mu(x, eps) = m(x) + SPREAD * eps: the mixing's scales
SAMPLES = 4096


@pytest.fixture(scope="module")
def gaussian_mixing():
    """A SIVI model whose mixing is linear in eps, so q(z|x) = N(m(x), diag(SIGMA^2 +
    SPREAD^2)); returns (model, m, the variance)."""
    config = registry.default_config("sivi", mixing_depth=0, mixing_dim=2, basis_size=1,
                                     encoder_width=8, decoder_width=8)
    keras.utils.set_random_seed(0)
    model = registry.get("sivi").build(config, 4)
    model.basis.get_layer("v").set_weights([np.eye(2, dtype=np.float32),     # v(eps) = eps
                                            np.zeros(2, np.float32)])
    for name, bias in (("a", SPREAD), ("z_log_var", np.full(2, 2 * math.log(SIGMA)))):
        layer = model.coefficients.get_layer(name)                            # constants
        layer.set_weights([np.zeros_like(layer.get_weights()[0]), bias.astype(np.float32)])
    m = model.coefficients(X)[0]
    return model, m, SIGMA ** 2 + SPREAD ** 2


def test_the_estimate_of_log_q_falls_to_the_closed_form_as_the_draws_grow(gaussian_mixing):
    model, m, variance = gaussian_mixing
    z, mu, log_var, mixture = model.draw(X, tf.constant([1, 2]), SAMPLES)
    exact = gaussian_log_density(z, m, tf.math.log(tf.constant(variance, tf.float32)))
    excess = [float(tf.reduce_mean(model.log_q_estimate(z, mu, log_var, mixture, draws,
                                                        tf.constant([3, draws])) - exact))
              for draws in (4, 64, 1024, 16384)]
    # It overestimates log q (so the ELBO it gives is a lower bound), by less and less.
    assert all(a > b for a, b in zip(excess, excess[1:])), excess
    assert excess[0] > 0.1 and 0 <= excess[-1] < 0.01, excess


def test_the_bound_rises_with_the_draws_to_the_closed_form_elbo(gaussian_mixing):
    model, m, variance = gaussian_mixing
    z = m + tf.sqrt(tf.constant(variance, tf.float32)) * tf.random.stateless_normal(
        [SAMPLES, 2], [4, 5])
    log_joint = (bernoulli_log_likelihood(X, model.decoder(z))
                 + standard_normal_log_density(z)).numpy()
    entropy = 0.5 * float(np.sum(np.log(2 * math.pi * math.e * variance)))
    closed_form, stderr = log_joint.mean() + entropy, log_joint.std() / math.sqrt(SAMPLES)
    bounds = [float(model.elbo_bound(X, tf.constant([6, 7]), SAMPLES, draws)[0])
              for draws in (0, 4, 64, 1024, 16384)]
    assert all(a < b for a, b in zip(bounds, bounds[1:])), bounds
    assert bounds[-1] == pytest.approx(closed_form, abs=3 * stderr + 0.01), (bounds,
                                                                             closed_form)


def test_the_scripts_select_it_by_its_posterior_or_its_own_settings(capsys):
    for flags in (["--posterior", "sivi"], ["--sivi-samples", "4"], ["--model", "sivi"]):
        ended = call_main(capsys, "train_vae.py", *flags, "--print-config")
        assert ended.returncode == 0 and ended.stdout.startswith("model: sivi (SIVI)"), ended
    conflict = call_main(capsys, "train_vae.py", "--posterior", "sivi",
                         "--importance-samples", "4")
    assert conflict.returncode == 2 and "sivi" in conflict.stderr


@pytest.mark.slow
def test_a_sivi_run_is_evaluated_by_its_bound_with_a_cross_check(tmp_path):
    out = tmp_path / "sivi"
    with pytest.raises(SystemExit) as done:
        train_vae.main([*TINY, "--posterior", "sivi", "--sivi-samples", "4", "--mixing-width",
                        "8", "--out", str(out)])
    assert done.value.code == 0
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["model"] == "sivi" and config["sivi_samples"] == 4
    assert metrics["elbo_method"] == "lower bound from 4096 mixing draws"
    assert set(metrics["elbo_by_draws"]) == {"1024", "4096"}
    assert isinstance(metrics["elbo_converged"], bool)
    assert metrics["elbo"] == pytest.approx(np.mean(metrics["elbo_per_point"]))
    # A lower bound: below log p(x), and (in 2-D) near the nearest-neighbour estimate.
    assert metrics["posterior_gap"] > -0.01 and np.isfinite(metrics["elbo_nearest_neighbour"])
    assert abs(metrics["elbo_nearest_neighbour"] - metrics["elbo"]) < 0.1
    assert loaded_input_counts([out / "encoder.keras"], tmp_path) == [2]    # [x, eps]

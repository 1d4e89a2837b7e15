"""The IWAE and the flow posterior: known answers (the K = 1 bound is the ELBO, the bound rises
with K to log p(x) by quadrature; the flow's density integrates to 1 and its log-determinant
is the Jacobian's), a cross-check of the flow's exact ELBO against the nearest-neighbour
estimate, and smoke runs of both flags."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from evaluation import final, quadrature
import iwae as iwae_module
import registry
import train_vae
from configs import AVBConfig, VAEConfig
from registry import make_config
from harness.runstart import parse_run
from data import load
from tests.conftest import ENTROPY_TOLERANCE, TINY, loaded_input_counts

# Its module fixture is built once: the module's tests run on one worker.
pytestmark = pytest.mark.xdist_group("test_baselines")

X_4PX = tf.constant(load("4px").x)
SHARPNESS = 3.0      # logit scale of the soft quadrant decoder


def soft_quadrant_decoder(z):
    """Lights pixel i of the 2x2 image mostly where z lies in quadrant i: a smooth decoder
    whose log p(x) the quadrature gives."""
    s = tf.tanh(SHARPNESS * z)
    scores = tf.stack([s[:, 0] + s[:, 1], s[:, 0] - s[:, 1], -s[:, 0] + s[:, 1],
                       -s[:, 0] - s[:, 1]], 1)
    return SHARPNESS * (scores - 1.0)


def tiny_model(**settings):
    config = make_config(VAEConfig, **{"encoder_width": 8, "decoder_width": 8, **settings})
    keras.utils.set_random_seed(0)
    return registry.spec_for(config).build(config, 4)


def test_model_names_of_the_variants():
    def model_name(config):
        return registry.spec_for(config).name
    assert model_name(make_config(VAEConfig)) == "vae"
    assert model_name(make_config(VAEConfig, importance_samples=2)) == "iwae"
    assert model_name(make_config(VAEConfig, posterior="flow")) == "flow"
    for name in ("iwae", "flow"):
        assert model_name(registry.default_config(name)) == name
    with pytest.raises(ValueError, match="iwae .* takes --posterior gaussian only, not flow"):
        make_config(VAEConfig, importance_samples=2, posterior="flow")


def test_labels_name_the_settings_of_the_run():
    iwae = registry.get("iwae")
    assert iwae.run_label({"importance_samples": 4}) == "IWAE (K=4)"
    assert iwae.run_label(registry.default_config("iwae")) == \
        f"IWAE (K={iwae_module.DEFAULT_SAMPLES})"
    assert iwae.run_label({}) == "IWAE (K=?)"
    assert registry.get("flow").run_label({"posterior": "flow"}) == "flow VAE"


def test_variant_defaults_apply_only_to_their_variant_and_yield_to_flags():
    assert make_config(VAEConfig, importance_samples=4).batch_size == 128
    assert make_config(VAEConfig, importance_samples=4, batch_size=64).batch_size == 64
    assert make_config(VAEConfig).batch_size == 512
    assert make_config(VAEConfig, posterior="flow", dataset="9px").steps == 12000
    assert make_config(VAEConfig, dataset="9px").steps == 6000
    ac_4px = make_config(AVBConfig, contrast="adaptive", dataset="4px")
    assert (ac_4px.learning_rate, ac_4px.adversary_steps, ac_4px.schedule) == (5e-4, 2, "cosine")
    assert make_config(AVBConfig, dataset="4px").learning_rate == 2e-3
    assert make_config(AVBConfig, dataset="9px").schedule == "cosine"
    assert make_config(AVBConfig, contrast="adaptive", dataset="9px",
                       schedule="constant").schedule == "constant"


def test_help_says_a_variant_default_of_the_largest_measured_set_holds_beyond_it():
    flags = registry.build_parser("train_avb.py", "")._option_string_actions
    assert "0.0005 for avb-ac on 4px)" in flags["--learning-rate"].help
    flags = registry.build_parser("train_vae.py", "")._option_string_actions
    assert "128 for iwae on 9px and larger Npx sets" in flags["--batch-size"].help


def test_iwae_and_flow_together_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_run("train_vae.py", "", ["--importance-samples", "2", "--posterior", "flow"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "--importance-samples" in err and "flow" in err


def test_iwae_bound_with_one_sample_is_the_elbo():
    iwae = tiny_model(importance_samples=4)
    terms, bound = iwae.importance_terms(X_4PX, tf.constant([1, 2]), 1)
    np.testing.assert_array_equal(bound.numpy(), terms.elbo[0].numpy())
    np.testing.assert_array_equal(terms.elbo[0].numpy(),
                                  iwae.terms(X_4PX, tf.constant([1, 2])).elbo.numpy())


def test_iwae_bound_rises_with_k_towards_exact_log_px():
    """On a fixed decoder, with q near the prior (an untrained encoder): the mean K-sample bound
    over 65536 samples per point (standard error about 0.005) climbs from the ELBO to log p(x)."""
    iwae = tiny_model(importance_samples=2)
    iwae.decoder = soft_quadrant_decoder
    log_px = quadrature.exact_log_px(soft_quadrant_decoder, X_4PX).mean()
    bounds = []
    for k in (1, 4, 32, 1024):
        _, bound = iwae.importance_terms(tf.repeat(X_4PX, 65536 // k, 0), tf.constant([7, k]), k)
        bounds.append(float(tf.reduce_mean(bound)))
    assert bounds == sorted(bounds) and bounds[1] - bounds[0] > 1.0
    assert log_px - bounds[0] > 2.0 and bounds[-1] == pytest.approx(log_px, abs=0.02)


@pytest.fixture(scope="module")
def trained_flow():
    """A small flow posterior trained for a few hundred steps on 4px, so that its couplings
    bend q(z|x) away from a Gaussian."""
    flow = tiny_model(posterior="flow", flow_layers=4, flow_width=16, encoder_width=16,
                      decoder_width=16, schedule="constant")

    @tf.function(jit_compile=True)
    def train(steps):
        for step in tf.range(steps):
            flow.train_step(tf.tile(X_4PX, [32, 1]), tf.stack([tf.constant(0, tf.int64),
                                                               tf.cast(step, tf.int64)]))
    train(tf.constant(400))
    return flow


def coupling_log_scale(flow, x, eps):
    """sum_l s_l per row: the couplings' part of log |det dz/deps| (the base's removed)."""
    z_log_var = flow.base(x)[2]
    return tf.reduce_sum(flow.posterior([x, eps])[1] - 0.5 * z_log_var, -1)


def test_flow_density_integrates_to_one(trained_flow):
    grid = quadrature.latent_grid()
    cell_area = (2.0 * quadrature.GRID_EXTENT / quadrature.GRID_POINTS) ** 2
    eps = tf.random.stateless_normal([1000, 2], [3, 3])
    for i in range(4):
        x = tf.repeat(X_4PX[i:i + 1], grid.z.shape[0], 0)
        mass = float(tf.reduce_sum(tf.exp(trained_flow.log_q(x, grid.z)))) * cell_area
        assert mass == pytest.approx(1.0, abs=1e-3)
        # Not a Gaussian in disguise: the couplings change the density's log-determinant.
        bend = coupling_log_scale(trained_flow, tf.repeat(X_4PX[i:i + 1], 1000, 0), eps)
        assert float(tf.reduce_mean(tf.abs(bend))) > 0.05


def test_flow_log_q_at_its_samples_matches_the_inverse(trained_flow):
    x = tf.repeat(X_4PX, 64, 0)
    terms = trained_flow.terms(x, tf.constant([4, 4]))
    z = trained_flow.sample_posterior(x, tf.constant([4, 4]))
    np.testing.assert_allclose(trained_flow.log_q(x, z).numpy(), terms.log_qz_given_x.numpy(),
                               atol=1e-4)


def test_flow_log_determinant_matches_finite_differences(trained_flow):
    eps, step = tf.random.stateless_normal([4, 2], [5, 5]), 1e-3
    columns = [(trained_flow.encoder([X_4PX, eps + step * e])
                - trained_flow.encoder([X_4PX, eps - step * e])) / (2 * step)
               for e in tf.eye(2)]
    jacobian = np.stack([c.numpy() for c in columns], -1)      # [batch, dz_i, deps_j]
    log_det = np.log(np.abs(np.linalg.det(jacobian.astype(np.float64))))
    _, log_scale = trained_flow.posterior([X_4PX, eps])
    np.testing.assert_allclose(tf.reduce_sum(log_scale, -1).numpy(), log_det, atol=2e-3)


def test_flow_exact_elbo_agrees_with_the_nearest_neighbour_estimate(trained_flow):
    for i in (0, 3):
        x = X_4PX[i:i + 1]
        exact = float(final.explicit_elbo(trained_flow, x, tf.constant([2, i])))
        estimate = final.implicit_elbo(trained_flow, x, tf.constant([3, i]))
        assert estimate.entropy.converged
        assert estimate.value == pytest.approx(exact, abs=ENTROPY_TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("model,flags", [("iwae", ["--importance-samples", "4"]),
                                         ("flow", ["--posterior", "flow", "--flow-width", "4",
                                                   "--flow-layers", "2"])])
def test_train_vae_smoke_runs_of_the_baselines(tmp_path, model, flags):
    out = tmp_path / model
    with pytest.raises(SystemExit) as done:
        train_vae.main([*TINY, *flags, "--out", str(out)])
    assert done.value.code == 0
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["model"] == model
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert header[2:-1] == list(registry.get(model).metric_names)
    assert np.isfinite(metrics["elbo"]) and metrics["posterior_gap"] > -0.05
    if model == "iwae":
        assert metrics["importance_samples"] == 4 and len(metrics["iwae_bound_per_point"]) == 4
        assert metrics["elbo"] - 0.05 < metrics["iwae_bound"] < metrics["log_px"] + 0.05
    else:
        assert loaded_input_counts([out / "encoder.keras"], tmp_path) == [2]    # [x, eps]

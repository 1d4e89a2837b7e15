"""AIS started near the posterior for every model: an implicit q (the AVB's) starts at the
Gaussian with the mean and variance of its own draws per data point."""

import numpy as np
import tensorflow as tf

import registry
from configs import AVBConfig
from densities import gaussian_log_density
from evaluation import final


def test_an_implicit_q_starts_at_the_gaussian_of_its_moments(tmp_path):
    config = registry.make_config(AVBConfig, dataset="4px", latent_dim=3, ais_start="posterior",
                                  ais_chains=5, out=str(tmp_path))
    model = registry.spec_for(config).build(config, 4)
    x = tf.constant(np.eye(4, dtype=np.float32))
    start = final.ais_start(model, x, config)
    draws = model.sample_posterior(tf.tile(x, [final.MOMENT_SAMPLES, 1]),
                                   tf.constant([config.seed, final.MOMENT_SEED], tf.int64))
    draws = tf.reshape(draws, [final.MOMENT_SAMPLES, 4, 3]).numpy()
    mean, variance = draws.mean(0), draws.var(0)
    z = start.sample(tf.constant([1, 2], tf.int64))
    assert z.shape == (5, 4, 3)
    expected = gaussian_log_density(z, mean, np.log(variance + final.MIN_START_VARIANCE))
    log_prob = final.ais_annealer(model, config).start_log_prob(z, x, start.params)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(start.sample(tf.constant([3, 4], tf.int64)).numpy().mean((0, 1)),
                               mean.mean(0), atol=5 * np.sqrt(variance.max() / 20))

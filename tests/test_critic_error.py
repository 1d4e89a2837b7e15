"""The adversary-error map against closed forms: a critic that knows log q exactly has no
error, one that is off by a constant has that constant as its KL bias, everywhere."""

import math

import numpy as np
import pytest
import tensorflow as tf

from evaluation.critic_error import HISTOGRAM_SAMPLES, critic_map, histogram_log_q
from avb import GaussianContrast
from densities import gaussian_log_density

MEAN, STD = np.array([0.7, -1.2], np.float32), np.array([0.3, 0.05], np.float32)


class GaussianQ:
    """q(z|x) = N(MEAN, diag(STD^2)) with a critic whose estimate of log q is off by `offset`
    (a contrast like AVB+AC's is passed through, as the models do)."""

    def __init__(self, offset: float):
        self.offset = offset

    def sample_posterior(self, x, seed):
        return MEAN + STD * tf.random.stateless_normal([tf.shape(x)[0], 2], seed)

    def contrast(self, x, seeds):
        return GaussianContrast(tf.constant([[0.0]]), tf.constant([[1.0]]))   # one row

    def critic_log_q(self, x, z, contrast):
        assert contrast.mean.shape[0] == z.shape[0]     # repeated for every row by critic_map
        log_var = tf.constant(2.0 * np.log(STD))
        return gaussian_log_density(z, MEAN, log_var) + self.offset


@pytest.mark.parametrize("offset", [0.0, 0.3])
def test_the_kl_bias_of_a_critic_off_by_a_constant_is_that_constant(offset):
    result = critic_map(GaussianQ(offset), np.zeros((1, 4), np.float32), tf.constant([1, 2]))
    assert result.kl_bias == pytest.approx(offset, abs=0.02)
    assert result.kept_mass > 0.95
    kept = np.isfinite(result.log_q)
    # Where cells hold many samples the histogram matches the density: the error is the
    # offset, up to the counts' noise (at most 1/sqrt(400) = 5 %, so 0.2 is 4 sd).
    counts = np.exp(result.log_q) * np.prod(np.diff(result.edges[:, :2])) * HISTOGRAM_SAMPLES
    dense = kept & (counts > 400)
    assert dense.sum() > 50
    np.testing.assert_allclose(result.difference[dense], offset, atol=0.2)


def test_the_histogram_of_a_gaussian_has_its_density():
    z = np.random.default_rng(0).normal(size=(HISTOGRAM_SAMPLES, 2)) * STD + MEAN
    edges, log_q, counts = histogram_log_q(z)
    assert counts.sum() > 0.99 * len(z)
    centres = [(e[1:] + e[:-1]) / 2 for e in edges]
    z1, z2 = np.meshgrid(*centres, indexing="ij")
    exact = (-np.log(2 * math.pi) - np.log(STD).sum()
             - 0.5 * (((z1 - MEAN[0]) / STD[0]) ** 2 + ((z2 - MEAN[1]) / STD[1]) ** 2))
    dense = counts > 1000
    np.testing.assert_allclose(log_q[dense], exact[dense], atol=0.1)

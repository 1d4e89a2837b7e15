import math

import numpy as np
import pytest
import tensorflow as tf

from avb import adversary_accuracy, adversary_loss
from densities import (bernoulli_log_likelihood, gaussian_kl_to_standard_normal,
                       gaussian_log_density, standard_normal_log_density)
import registry
from configs import VAEConfig


def test_bernoulli_log_likelihood_sums_over_pixels():
    x = np.array([[1.0, 0.0, 0.0, 1.0]], np.float32)
    logits = np.array([[2.0, -1.0, 0.5, -3.0]], np.float32)
    sigmoid = 1 / (1 + np.exp(-logits[0].astype(np.float64)))
    by_hand = (np.log(sigmoid[0]) + np.log(1 - sigmoid[1]) + np.log(1 - sigmoid[2])
               + np.log(sigmoid[3]))
    np.testing.assert_allclose(bernoulli_log_likelihood(x, logits).numpy(), [by_hand], rtol=1e-6)


def test_bernoulli_log_likelihood_is_finite_for_extreme_logits():
    x = np.array([[1.0, 0.0]], np.float32)
    value = bernoulli_log_likelihood(x, np.array([[-200.0, 200.0]], np.float32)).numpy()
    np.testing.assert_allclose(value, [-400.0], rtol=1e-6)


def test_gaussian_log_density_at_known_point():
    z = np.array([[1.0, -1.0]], np.float32)
    mean = np.array([[0.5, 0.0]], np.float32)
    log_var = np.log(np.array([[4.0, 0.25]], np.float32))
    by_hand = (-0.5 * (0.5 ** 2 / 4.0 + 1.0 / 0.25) - 0.5 * math.log(4.0 * 0.25)
               - math.log(2 * math.pi))
    np.testing.assert_allclose(gaussian_log_density(z, mean, log_var).numpy(), [by_hand],
                               rtol=1e-6)
    np.testing.assert_allclose(standard_normal_log_density(np.zeros((1, 2), np.float32)),
                               [-math.log(2 * math.pi)], rtol=1e-6)


def test_closed_form_kl_matches_monte_carlo():
    mean = tf.constant([[0.7, -1.2]])
    log_var = tf.math.log(tf.constant([[0.3, 2.0]]))
    z = mean + tf.exp(0.5 * log_var) * tf.random.stateless_normal([200000, 2], [3, 4])
    monte_carlo = tf.reduce_mean(gaussian_log_density(z, mean, log_var)
                                 - standard_normal_log_density(z)).numpy()
    closed_form = gaussian_kl_to_standard_normal(mean, log_var).numpy()[0]
    # Standard error of the 200k-sample mean is about 0.003 here.
    assert monte_carlo == pytest.approx(closed_form, abs=0.015)


def test_vae_elbo_is_the_sum_of_its_terms():
    vae = registry.get("vae").build(VAEConfig(encoder_width=8, decoder_width=8), 4)
    terms = vae.terms(np.eye(4, dtype=np.float32), [1, 2])
    np.testing.assert_allclose(terms.elbo, terms.log_px_given_z + terms.log_pz
                               - terms.log_qz_given_x, rtol=1e-6)


def test_adversary_loss_treats_q_samples_as_positive():
    t_q = tf.constant([3.0, 50.0])
    t_p = tf.constant([-3.0, -50.0])
    assert tf.reduce_max(adversary_loss(t_q, t_p)).numpy() < 0.1
    assert tf.reduce_min(adversary_loss(t_p, t_q)).numpy() > 3.0
    assert adversary_accuracy(t_q, t_p).numpy() == 1.0
    assert adversary_accuracy(t_p, t_q).numpy() == 0.0
    assert np.isfinite(adversary_loss(tf.constant([-1e4]), tf.constant([1e4])).numpy()).all()

"""The exact posterior on the grid against closed forms: a decoder that ignores z leaves the
prior; one that reads only z1 leaves z2's prior; the regions hold the mass they are drawn for."""

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import norm

from evaluation import quadrature
from evaluation.exact_posterior import HDR_MASSES, grid_posterior, hdr_level

X = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], np.float32)
POINTS = 200          # a coarser grid than the evaluation's keeps the test quick


def constant_decoder(z):
    return tf.broadcast_to(tf.constant([[2.0, -1.0, 0.5]]), [tf.shape(z)[0], 3])


def z1_decoder(z):
    """Logits that depend on z1 alone (steep, so the posterior is far from the prior in z1)."""
    return tf.stack([4.0 * z[:, 0], -3.0 * z[:, 0] + 1.0, tf.zeros_like(z[:, 0])], axis=1)


def prior_cell_mass(centres):
    width = centres[1] - centres[0]
    one_axis = norm.cdf(centres + width / 2) - norm.cdf(centres - width / 2)
    mass = np.outer(one_axis, one_axis)
    return mass / mass.sum()


def test_a_decoder_that_ignores_z_leaves_the_prior():
    posterior = grid_posterior(constant_decoder, X, points=POINTS)
    assert posterior.mass.shape == (2, POINTS, POINTS)
    np.testing.assert_allclose(posterior.mass.sum(axis=(1, 2)), 1.0, rtol=1e-6)
    # The midpoint rule's cell masses agree with the exact ones to second order in the width.
    np.testing.assert_allclose(posterior.mass[0], prior_cell_mass(posterior.centres),
                               atol=2e-6)
    expected_log_px = np.sum(X * [2.0, -1.0, 0.5] - np.logaddexp(0.0, [2.0, -1.0, 0.5]), 1)
    np.testing.assert_allclose(posterior.log_px, expected_log_px, atol=1e-4)


def test_a_decoder_of_z1_alone_leaves_z2_its_prior():
    posterior = grid_posterior(z1_decoder, X, points=POINTS)
    z2_marginal = posterior.mass.sum(axis=1)                # [N, K] over z1
    prior_z2 = prior_cell_mass(posterior.centres).sum(axis=0)
    for n in range(len(X)):
        np.testing.assert_allclose(z2_marginal[n], prior_z2, atol=1e-5)
    # ...while z1 moves: the first point (pixel 0 on, 4 z1 in the logit) prefers z1 > 0.
    z1_marginal = posterior.mass[0].sum(axis=1)
    assert z1_marginal[posterior.centres > 0].sum() > 0.9


def test_log_px_is_the_evaluations_quadrature():
    grid_points = quadrature.GRID_POINTS
    posterior = grid_posterior(z1_decoder, X, points=grid_points)
    np.testing.assert_allclose(posterior.log_px, quadrature.exact_log_px(z1_decoder, X),
                               atol=1e-4)


@pytest.mark.parametrize("region_mass", HDR_MASSES)
def test_a_region_of_the_prior_is_the_disc_holding_its_mass(region_mass):
    posterior = grid_posterior(constant_decoder, X[:1], points=POINTS)
    level = posterior.levels(0)[HDR_MASSES.index(region_mass)]
    inside = posterior.mass[0] >= level
    held = posterior.mass[0][inside].sum()
    assert region_mass <= held < region_mass + 0.01
    # N(0, I) in 2-D: the disc of radius sqrt(-2 log(1 - m)) holds mass m.
    radius = math.sqrt(-2.0 * math.log(1.0 - region_mass))
    z1, z2 = np.meshgrid(posterior.centres, posterior.centres, indexing="ij")
    r = np.hypot(z1, z2)
    assert r[inside].max() == pytest.approx(radius, abs=posterior.width)
    assert r[~inside].min() == pytest.approx(radius, abs=posterior.width)


def test_hdr_level_on_a_hand_computed_example():
    mass = np.array([0.4, 0.05, 0.3, 0.25])
    assert hdr_level(mass, 0.5) == 0.3          # 0.4 + 0.3 >= 0.5
    assert hdr_level(mass, 0.4) == 0.4
    assert hdr_level(mass, 0.96) == 0.05        # all four are needed

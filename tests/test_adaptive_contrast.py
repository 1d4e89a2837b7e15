"""AVB with adaptive contrast: with a Gaussian q(z|x) the optimal T(x, z_bar) is zero, so a
trained T must give the closed-form KL(q(z|x) || p(z)) through T + log r - log p."""

import keras
import numpy as np
import tensorflow as tf

import data
import registry
from avb import GaussianContrast, PriorContrast
from configs import AVBConfig
from densities import gaussian_kl_to_standard_normal

MEANS = np.array([[1.5, 0.0], [0.0, 1.0], [-1.0, -0.5], [0.3, -2.0]], np.float32)
STDS = np.array([[0.5, 0.2], [0.3, 0.3], [1.0, 0.4], [0.2, 0.6]], np.float32)
STEPS = 1500


def constant_dense(units: int, kernel) -> keras.layers.Dense:
    return keras.layers.Dense(units, use_bias=False, trainable=False,
                              kernel_initializer=keras.initializers.Constant(kernel))


def gaussian_structured_encoder(noise_dim: int) -> tuple:
    """The structured encoder z = a_0(x) + a_1(x) * v_1(eps) with a_0 = mean(x), a_1 = std(x)
    and v_1 = eps[:2]: a Gaussian q with known moments, in the form AVB+AC takes them from."""
    x, eps = keras.Input((4,)), keras.Input((noise_dim,))
    a_0, a = constant_dense(2, MEANS)(x), constant_dense(2, STDS)(x)
    v = constant_dense(2, np.eye(noise_dim, 2))(eps)
    z = keras.layers.Add()([a_0, keras.layers.Multiply()([a, v])])
    return keras.Model([x, eps], z), keras.Model(x, [a_0, a]), keras.Model(eps, v)


def test_trained_adaptive_contrast_gives_the_closed_form_kl():
    config = AVBConfig(contrast="adaptive", basis_size=1, adversary_width=32,
                       adversary_learning_rate=3e-3, steps=STEPS, batch_size=256)
    model = registry.spec_for(config).build(config, 4)
    model.encoder, model.coefficients, model.basis = gaussian_structured_encoder(
        config.noise_dim)
    x_all = tf.constant(data.load("4px").x)

    @tf.function(jit_compile=True)
    def train_adversary():
        def body(i):
            seeds = tf.random.experimental.stateless_split(tf.stack([5, tf.cast(i, tf.int64)]), 3)
            x = data.sample_batch(x_all, config.batch_size, seeds[0])
            model.adversary_step(x, seeds[1], model.moments(x, seeds[2]))
            return (i + 1,)
        tf.while_loop(lambda i: i < STEPS, body, (tf.constant(0, tf.int64),))

    train_adversary()
    x = tf.repeat(x_all, 4000, axis=0)
    terms = model.terms(x, tf.constant([1, 2]))
    kl_estimate = tf.reduce_mean(tf.reshape(terms.log_qz_given_x - terms.log_pz, [4, -1]), 1)
    closed_form = gaussian_kl_to_standard_normal(MEANS, 2 * np.log(STDS)).numpy()
    # The KL spreads over about 2 nats between the points; a T that ignored the contrast's
    # log r, or normalised with the wrong moments, errs by far more than 0.05.
    assert closed_form.max() - closed_form.min() > 1.0
    np.testing.assert_allclose(kl_estimate.numpy(), closed_form, atol=0.05)


def test_the_contrast_values_normalise_z_and_know_their_log_density():
    z = tf.constant([[0.5, -1.0], [2.0, 0.0]])
    prior = PriorContrast()
    np.testing.assert_array_equal(prior.normalise(z), z)
    np.testing.assert_allclose(prior.log_density(z), -0.5 * np.sum(z.numpy() ** 2, 1)
                               - np.log(2 * np.pi), rtol=1e-6)
    assert prior.repeat(5) is prior
    mean, std = tf.constant([[1.0, -1.0]]), tf.constant([[2.0, 0.5]])
    gaussian = GaussianContrast(mean, std).repeat(2)
    assert gaussian.mean.shape == (2, 2)
    z_bar = gaussian.normalise(z).numpy()
    np.testing.assert_allclose(z_bar, (z.numpy() - mean.numpy()) / std.numpy(), rtol=1e-6)
    # log N(z; m, s^2) = log N(z_bar; 0, I) - sum log s
    np.testing.assert_allclose(gaussian.log_density(z), prior.log_density(z_bar)
                               - np.sum(np.log(std.numpy())), rtol=1e-5)


def test_the_contrasts_standard_deviation_is_qs_with_the_variance_floor_added():
    # The Gaussian encoder of known moments: sigma_d(x)^2 = STDS^2 (Cov[v] estimated from
    # many draws of eps), and the contrast's sigma is sqrt(STDS^2 + floor).
    for floor in (1e-6, 0.25):
        config = AVBConfig(contrast="adaptive", basis_size=1, moment_samples=200000,
                           contrast_variance_floor=floor)
        model = registry.spec_for(config).build(config, 4)
        model.encoder, model.coefficients, model.basis = gaussian_structured_encoder(
            config.noise_dim)
        contrast = model.moments(tf.constant(data.load("4px").x), tf.constant([3, 4]))
        np.testing.assert_allclose(contrast.mean.numpy(), MEANS, atol=0.01)
        np.testing.assert_allclose(contrast.std.numpy(), np.sqrt(STDS ** 2 + floor), rtol=0.01)

"""The validation figure a run selects its best step by: the mean over the validation images
(data.py's split of the training images, never trained on) of an importance-sampling
estimate of log p(x), got the same way for every model from what every model has, draws of
q(z|x) and the decoder:

    log p(x) ~ log (1/S) sum_s p(x|z_s) p(z_s) / r(z_s|x),   z_s ~ r(z|x),
    r(z|x) = (1 - PRIOR_WEIGHT) N(z; m(x), diag s(x)^2) + PRIOR_WEIGHT N(z; 0, I),

m and s the mean and standard deviation of FIT_DRAWS draws of q(z|x), S = DRAWS. The prior's
share bounds the weights where q is narrower than the posterior or misplaced. In expectation
the estimate lies below log p(x) and rises to it as S grows. Every evaluation of a run draws
the same noise, so that its steps differ by their networks alone. The test images take no
part.
"""

import math

import tensorflow as tf

from densities import bernoulli_log_likelihood, gaussian_log_density, standard_normal_log_density

DRAWS = 256             # importance draws per image
FIT_DRAWS = 64          # draws of q per image whose mean and variance centre r
PRIOR_WEIGHT = 0.2      # the prior's share of r
VARIANCE_FLOOR = 1e-6   # added to the fitted variance: q may put its draws on a point
POINTS = 1000           # validation images evaluated at most (the first of the split's order)
CHUNK = 32              # images per compiled call

METHOD = (f"importance sampling, {DRAWS} draws per image from a Gaussian fitted to "
          f"{FIT_DRAWS} draws of q, mixed with the prior ({PRIOR_WEIGHT:g})")


def log_px(model, x, seed):
    """The estimate per row of x [N, P]: shape [N]."""
    n, latent_dim = tf.shape(x)[0], model.latent_dim
    fit_seed, pick_seed, z_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    z_q = tf.reshape(model.sample_posterior(tf.repeat(x, FIT_DRAWS, 0), fit_seed),
                     [n, FIT_DRAWS, latent_dim])
    mean, variance = tf.nn.moments(z_q, axes=[1])                                  # [N, D]
    log_var = tf.math.log(variance + VARIANCE_FLOOR)
    eps = tf.random.stateless_normal([DRAWS, n, latent_dim], z_seed)
    from_prior = tf.random.stateless_uniform([DRAWS, n, 1], pick_seed) < PRIOR_WEIGHT
    z = tf.where(from_prior, eps, mean + tf.exp(0.5 * log_var) * eps)         # z ~ r(z|x)
    log_r = tf.reduce_logsumexp(tf.stack([                                   # log r(z|x)
        math.log(1 - PRIOR_WEIGHT) + gaussian_log_density(z, mean, log_var),
        math.log(PRIOR_WEIGHT) + standard_normal_log_density(z)]), 0)
    logits = tf.reshape(model.decoder(tf.reshape(z, [-1, latent_dim])), [DRAWS, n, -1])
    log_joint = bernoulli_log_likelihood(x, logits) + standard_normal_log_density(z)
    return tf.reduce_logsumexp(log_joint - log_r, 0) - math.log(DRAWS)


def make_estimator(model, x_valid, seed):
    """A function () -> the mean estimate over the first POINTS rows of x_valid [N, P], in
    compiled calls of CHUNK images (the last padded with repeats, which are left out of the
    mean), each chunk with a seed of its own drawn from seed [2] int64."""
    x_valid = x_valid[:POINTS]
    n = len(x_valid)
    starts = range(0, n, CHUNK)
    chunks = [tf.constant(x_valid[[min(i, n - 1) for i in range(start, start + CHUNK)]])
              for start in starts]
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, len(chunks)))
    estimate = tf.function(lambda x, chunk_seed: log_px(model, x, chunk_seed), jit_compile=True)

    def mean_log_px() -> float:
        total = sum(float(tf.reduce_sum(estimate(x, s)[:min(CHUNK, n - start)]))
                    for x, s, start in zip(chunks, seeds, starts))
        return total / n

    return mean_log_px

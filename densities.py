"""Per-sample log densities shared by training and evaluation. Each returns shape [batch]."""

import math

from model import lazy_module

tf = lazy_module("tensorflow")

LOG_2PI = math.log(2.0 * math.pi)


def bernoulli_log_likelihood(x, logits):
    """log p(x|z) = sum over pixels of x log sigmoid(l) + (1 - x) log sigmoid(-l).

    Written as x l - softplus(l), which is the same sum, stable for any l, and broadcasts.
    """
    return tf.reduce_sum(x * logits - tf.nn.softplus(logits), -1)


def bernoulli_log_likelihood_table(x, logits):
    """[N, G]: log p(x_n|z_g) of every data point x [N, P] under every decoding logits [G, P],
    the sum of bernoulli_log_likelihood as matrix products: x l - softplus(l) summed over the
    pixels is x @ l^T minus each row of l's softplus sum."""
    return (tf.matmul(x, logits, transpose_b=True)
            - tf.reduce_sum(tf.nn.softplus(logits), -1)[None, :])


def standard_normal_log_density(z):
    """log N(z; 0, I)."""
    return -0.5 * tf.reduce_sum(tf.square(z) + LOG_2PI, -1)


def gaussian_log_density(z, mean, log_var):
    """log N(z; mean, diag(exp(log_var)))."""
    return -0.5 * tf.reduce_sum(tf.square(z - mean) * tf.exp(-log_var) + log_var + LOG_2PI, -1)


def gaussian_kl_to_standard_normal(mean, log_var):
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) in closed form."""
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, -1)


def flow_log_density(eps, log_scale):
    """log q(z|x) of z = f(eps) with eps ~ N(0, I) and f invertible with a triangular Jacobian
    whose log-diagonal sums over f's layers to log_scale [batch, D]: the change of variables
    log q(z|x) = log N(eps; 0, I) - log |det dz/deps|."""
    return standard_normal_log_density(eps) - tf.reduce_sum(log_scale, -1)

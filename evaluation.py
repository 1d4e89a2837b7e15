"""True quantities of a trained model, beside the training-time estimates.

Exact log p(x) integrates p(x|z) p(z) over the 2-D latent space with the midpoint rule on a
square grid. The prior puts under 1e-8 of its mass outside [-6, 6]^2, and a 400 x 400 grid
(cell width 0.03) resolves decoder boundaries far sharper than those a trained decoder draws.
The even point count keeps the axes on cell edges, so a decoder that switches on the sign of a
coordinate is integrated exactly.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from densities import bernoulli_log_likelihood, standard_normal_log_density

GRID_EXTENT = 6.0
GRID_POINTS = 400
ELBO_SAMPLES = 4096


class LatentGrid(NamedTuple):
    z: tf.Tensor            # [G, 2] cell centres
    log_weight: tf.Tensor   # [G] log p(z) + log(cell area)


def latent_grid(extent: float = GRID_EXTENT, points: int = GRID_POINTS) -> LatentGrid:
    width = 2.0 * extent / points
    centres = np.linspace(-extent + width / 2, extent - width / 2, points, dtype=np.float32)
    z = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    z = tf.constant(z)
    return LatentGrid(z, standard_normal_log_density(z) + 2.0 * np.log(width))


def exact_log_px(decoder, x, grid: LatentGrid | None = None) -> np.ndarray:
    """log p(x) = log sum over grid cells of p(x|z) p(z) dz, for each row of x: shape [N]."""
    grid = grid or latent_grid()
    logits = decoder(grid.z)                                             # [G, P]
    log_px_given_z = bernoulli_log_likelihood(
        tf.constant(x)[:, None, :], logits[None, :, :])                  # [N, G]
    return tf.reduce_logsumexp(log_px_given_z + grid.log_weight[None, :], axis=1).numpy()


def evaluate_run(model, dataset, seed: int) -> dict:
    """Exact log p(x) and the model's ELBO, each per data point and as a mean."""
    log_px = exact_log_px(model.decoder, dataset.x)
    x = tf.repeat(tf.constant(dataset.x), ELBO_SAMPLES, axis=0)
    seed = tf.constant([seed, 1], tf.int64)
    metrics = {"log_px": float(log_px.mean()), "log_px_per_point": log_px.tolist(),
               "optimum_log_px": dataset.optimum_log_px}
    if hasattr(model, "elbo_terms"):
        elbo = tf.reshape(model.elbo_terms(x, seed).elbo, [dataset.n_points, -1])
        per_point = tf.reduce_mean(elbo, 1).numpy()
        metrics.update(elbo=float(per_point.mean()), elbo_per_point=per_point.tolist(),
                       posterior_gap=float((log_px - per_point).mean()))
    else:
        elbo_t = tf.reshape(model.terms(x, seed).elbo, [dataset.n_points, -1])
        per_point = tf.reduce_mean(elbo_t, 1).numpy()
        metrics.update(elbo_estimated_by_T=float(per_point.mean()),
                       elbo_estimated_by_T_per_point=per_point.tolist())
    return metrics

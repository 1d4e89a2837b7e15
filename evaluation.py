"""True quantities of a trained model, beside the training-time estimates.

- Exact log p(x) integrates p(x|z) p(z) over the 2-D latent space with the midpoint rule on a
square grid. The prior puts under 1e-8 of its mass outside [-6, 6]^2, and a 400 x 400 grid
(cell width 0.03) resolves decoder boundaries far sharper than those a trained decoder draws.
The even point count keeps the axes on cell edges, so a decoder that switches on the sign of a
coordinate is integrated exactly.
- During training, log p(x) is tracked on a 200 x 200 grid (cell width 0.06), about 8 times
  cheaper; on the trained default decoders it agrees with the final grid to about 1e-4, and
  the smoke tests check that it agrees to 1e-3.
- A model with a density for q (spec.exact_log_q: the VAE) has its ELBO averaged over many z,
  with its exact log q.
- An implicit q(z|x) (the AVB's) has no density to evaluate, so its true ELBO
  = E_q[log p(x|z) + log p(z)] + H(q) takes the entropy H(q) = -E_q[log q(z|x)] from the
  Kozachenko-Leonenko nearest-neighbour estimator on fresh posterior samples. It assumes no shape for q, and its error can have either sign; with
  8000 samples and the 5th neighbour it is within about 0.02 nats on a Gaussian of any scale and
  on q's with corners (a quadrant, a narrow wedge), which the tests check.
- The posterior gap KL(q(z|x) || p(z|x)) = log p(x) - ELBO.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from densities import bernoulli_log_likelihood, standard_normal_log_density

GRID_EXTENT = 6.0
GRID_POINTS = 400
TRACKING_GRID_POINTS = 200
ELBO_SAMPLES = 4096
KNN_SAMPLES = 8000
KNN_NEIGHBOUR = 5
KNN_CHUNK = 1000          # rows of the pairwise distance matrix held at once
MIN_SQ_DIST = 1e-300      # keeps log finite when samples coincide


class LatentGrid(NamedTuple):
    z: tf.Tensor            # [G, 2] cell centres
    log_weight: tf.Tensor   # [G] log p(z) + log(cell area)


def latent_grid(extent: float = GRID_EXTENT, points: int = GRID_POINTS) -> LatentGrid:
    width = 2.0 * extent / points
    centres = np.linspace(-extent + width / 2, extent - width / 2, points, dtype=np.float32)
    z = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    z = tf.constant(z)
    return LatentGrid(z, standard_normal_log_density(z) + 2.0 * np.log(width))


def log_px_on_grid(decoder, x, grid: LatentGrid) -> tf.Tensor:
    """log p(x) = log sum over grid cells of p(x|z) p(z) dz, for each row of x: shape [N]."""
    log_px_given_z = bernoulli_log_likelihood(
        tf.convert_to_tensor(x)[:, None, :], decoder(grid.z)[None, :, :])   # [N, G]
    return tf.reduce_logsumexp(log_px_given_z + grid.log_weight[None, :], axis=1)


def exact_log_px(decoder, x, grid: LatentGrid | None = None) -> np.ndarray:
    """log p(x) for each row of x, on the evaluation grid unless another is given: shape [N]."""
    return log_px_on_grid(decoder, x, grid or latent_grid()).numpy()


def make_log_px_tracker(decoder, x):
    """A compiled function giving the mean log p(x) over the rows of x on the coarser tracking
    grid, cheap enough to call during training."""
    grid = latent_grid(points=TRACKING_GRID_POINTS)
    return tf.function(lambda: tf.reduce_mean(log_px_on_grid(decoder, x, grid)),
                       jit_compile=True)


def knn_entropy(z: np.ndarray, k: int = KNN_NEIGHBOUR) -> float:
    """Kozachenko-Leonenko estimate of the differential entropy of the 2-D samples z [n, 2]:
    H = psi(n) - psi(k) + log(pi) + mean log r_k^2, with r_k each sample's distance to its k-th
    nearest other sample (pi r^2 is the area of the 2-D ball)."""
    z = np.asarray(z, np.float64)
    z = z - z.mean(0)
    sq_norm = np.sum(z ** 2, 1)
    kth_sq_dist = []
    for start in range(0, len(z), KNN_CHUNK):
        rows = slice(start, start + KNN_CHUNK)
        sq_dist = sq_norm[rows, None] + sq_norm[None, :] - 2.0 * z[rows] @ z.T
        kth_sq_dist.append(np.partition(sq_dist, k, axis=1)[:, k])   # column 0 is the sample itself
    psi_n_minus_psi_k = np.sum(1.0 / np.arange(k, len(z)))
    return float(psi_n_minus_psi_k + np.log(np.pi)
                 + np.mean(np.log(np.maximum(np.concatenate(kth_sq_dist), MIN_SQ_DIST))))


def implicit_elbo(model, x, seed) -> float:
    """E_q[log p(x|z) + log p(z)] + H(q) for one data point x [1, P], over KNN_SAMPLES fresh
    posterior samples, with the entropy H(q) = -E_q[log q(z|x)] from their nearest neighbours."""
    z = model.sample_posterior(tf.repeat(x, KNN_SAMPLES, 0), seed)
    log_joint = bernoulli_log_likelihood(x, model.decoder(z)) + standard_normal_log_density(z)
    return float(tf.reduce_mean(log_joint)) + knn_entropy(z.numpy())


def evaluate_run(model, dataset, seed: int) -> dict:
    """True quantities of a trained model, per data point and as means; see the module doc."""
    x_all = tf.constant(dataset.x)
    log_px = exact_log_px(model.decoder, dataset.x)
    seed = tf.constant([seed, 1], tf.int64)
    point_seeds = tf.unstack(tf.random.experimental.stateless_split(seed, dataset.n_points))
    point_elbo = explicit_elbo if model.spec.exact_log_q else implicit_elbo
    elbo = np.array([point_elbo(model, x_all[i:i + 1], s) for i, s in enumerate(point_seeds)])
    metrics = {"log_px": float(log_px.mean()), "log_px_per_point": log_px.tolist(),
               "optimum_log_px": dataset.optimum_log_px,
               "elbo": float(elbo.mean()), "elbo_per_point": elbo.tolist(),
               "posterior_gap": float((log_px - elbo).mean()),
               "posterior_gap_per_point": (log_px - elbo).tolist()}
    x = tf.repeat(x_all, ELBO_SAMPLES, axis=0)
    if "elbo" in model.spec.critic_estimates:
        metrics.update(critic_elbo(model, x, seed, dataset.n_points))
    metrics.update(model.evaluation_extras(x, seed))
    return metrics


def critic_elbo(model, x, seed, n_points: int) -> dict:
    """The critic's estimate of the ELBO (what the model optimises), beside the true one."""
    per_point = tf.reduce_mean(tf.reshape(model.terms(x, seed).elbo, [n_points, -1]), 1).numpy()
    return {"elbo_estimated_by_T": float(per_point.mean()),
            "elbo_estimated_by_T_per_point": per_point.tolist()}


def explicit_elbo(model, x, seed) -> float:
    """The ELBO of a model with a density for q, for one data point x [1, P], averaged over
    ELBO_SAMPLES draws of z."""
    return float(tf.reduce_mean(model.terms(tf.repeat(x, ELBO_SAMPLES, 0), seed).elbo))

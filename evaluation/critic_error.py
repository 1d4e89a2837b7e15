"""The adversary's error in a 2-D latent space: T's estimate of log q(z|x) against log q(z|x)
itself, estimated from many samples of q.

The AVB's T(x, z) learns log q(z|x) - log p(z), so its estimate of log q is T + log p(z); the
AVB+AC's T(x, z_bar) learns log q_bar(z_bar|x) - log N(z_bar; 0, I) for the normalised z_bar, so
its estimate is T + log r(z|x) (avb.py, critic_log_q). Either way the difference between the
estimate and the true log q(z|x) equals T's error against the log-ratio it learns, and its
q-weighted mean E_q[critic log q - log q] is T's bias in the KL: the critic's ELBO is the true
ELBO minus it, so a negative bias puts the critic's ELBO above the truth.

log q(z|x) comes from a histogram of HISTOGRAM_SAMPLES draws on HISTOGRAM_BINS x HISTOGRAM_BINS
cells over the samples' central range (the mass between the HISTOGRAM_RANGE quantiles of each
axis, widened by RANGE_ROOM): log q(cell) = log(count / (samples * cell area)), left out where
a cell holds under MIN_COUNT samples (its estimate is noise). The bias is measured at the
samples themselves: the mean over the samples in kept cells of the critic's log q at the
sample minus the histogram's log q of its cell.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

HISTOGRAM_SAMPLES = 200_000
HISTOGRAM_BINS = 48
HISTOGRAM_RANGE = (0.001, 0.999)   # quantiles of each axis the histogram spans
RANGE_ROOM = 0.1                   # the span widened by this fraction on each side
MIN_COUNT = 30                     # samples a cell needs for its log q to be kept (~18 % noise)


class CriticMap(NamedTuple):
    """T's estimate of log q(z|x) against a histogram of q, for one data point."""
    edges: np.ndarray          # [2, bins + 1] cell edges along z1 and z2
    log_q: np.ndarray          # [bins, bins] the histogram's log q; NaN under MIN_COUNT
    critic_log_q: np.ndarray   # [bins, bins] T's estimate at the cell centres
    kl_bias: float             # E_q[critic log q - log q] over the samples in kept cells
    kept_mass: float           # the fraction of samples in kept cells

    @property
    def difference(self) -> np.ndarray:
        return self.critic_log_q - self.log_q


def histogram_log_q(z: np.ndarray, bins: int = HISTOGRAM_BINS) -> tuple:
    """(edges [2, bins + 1], log q [bins, bins] with NaN under MIN_COUNT, counts) of samples
    z [n, 2]."""
    low, high = np.quantile(z, HISTOGRAM_RANGE, axis=0)
    room = RANGE_ROOM * (high - low)
    edges = np.stack([np.linspace(a, b, bins + 1) for a, b in zip(low - room, high + room)])
    counts, _, _ = np.histogram2d(z[:, 0], z[:, 1], bins=edges)
    area = (edges[0, 1] - edges[0, 0]) * (edges[1, 1] - edges[1, 0])
    with np.errstate(divide="ignore"):
        log_q = np.log(counts / (len(z) * area))
    return edges, np.where(counts >= MIN_COUNT, log_q, np.nan), counts


def cell_of(z: np.ndarray, edges: np.ndarray) -> tuple:
    """(i, j, inside): the histogram cell of each sample, and whether it lies in the range."""
    bins = edges.shape[1] - 1
    index = [np.searchsorted(edges[a], z[:, a], side="right") - 1 for a in range(2)]
    inside = (index[0] >= 0) & (index[0] < bins) & (index[1] >= 0) & (index[1] < bins)
    return np.clip(index[0], 0, bins - 1), np.clip(index[1], 0, bins - 1), inside


def critic_map(model, x, seed, samples: int = HISTOGRAM_SAMPLES,
               bins: int = HISTOGRAM_BINS) -> CriticMap:
    """The critic's error for one data point x [1, P] of a model with an adversary
    (model.critic_log_q, and model.contrast, the value T contrasts q with, avb.py) and a 2-D
    latent space."""
    sample_seed, contrast_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    x_samples = tf.repeat(tf.convert_to_tensor(x), samples, 0)
    z = model.sample_posterior(x_samples, sample_seed)
    contrast = model.contrast(x_samples[:1], [contrast_seed])
    critic_at_samples = model.critic_log_q(x_samples, z, contrast.repeat(samples)).numpy()
    z = z.numpy().astype(np.float64)
    edges, log_q, counts = histogram_log_q(z, bins)
    i, j, inside = cell_of(z, edges)
    kept = inside & np.isfinite(log_q[i, j])
    centres = [(e[1:] + e[:-1]) / 2 for e in edges]
    grid = np.stack(np.meshgrid(*centres, indexing="ij"), -1).reshape(-1, 2)
    critic_on_grid = model.critic_log_q(
        x_samples[:len(grid)], tf.constant(grid, tf.float32),
        contrast.repeat(len(grid))).numpy().reshape(bins, bins)
    return CriticMap(edges, log_q, critic_on_grid,
                     float(np.mean(critic_at_samples[kept] - log_q[i[kept], j[kept]])),
                     float(kept.mean()))

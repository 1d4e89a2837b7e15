"""The exact posterior of a trained model with a 2-D latent space, where each q is measured
against it: p(z|x) = p(x|z) p(z) / p(x) on evaluation.py's quadrature grid, and its
highest-density regions.

On the grid, the posterior mass of cell g is p(x|z_g) p(z_g) dz / sum over the cells of the
same, exact up to the grid's resolution (400 x 400 cells of width 0.03 over [-6, 6]^2, which
hold all but 1e-8 of the prior). The highest-density region of mass m is the set of cells of
largest mass that together hold at least m: its edge is the level a contour of the density
draws (HDR_MASSES).
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from densities import bernoulli_log_likelihood_table
from evaluation.quadrature import GRID_EXTENT, GRID_POINTS, GRID_ROWS, LatentGrid, latent_grid

HDR_MASSES = (0.5, 0.9)      # the regions the figures draw


class GridPosterior(NamedTuple):
    """The exact posterior of N data points on a square grid of K x K cells."""
    centres: np.ndarray       # [K] cell centres along either axis
    mass: np.ndarray          # [N, K, K] posterior mass per cell, [n, i, j] at
                              # (centres[i], centres[j]); each point's sums to 1
    log_px: np.ndarray        # [N] log p(x), the normaliser (as evaluation.exact_log_px)
    masses: tuple = HDR_MASSES   # the highest-density regions the figures draw

    def levels(self, k: int) -> np.ndarray:
        """[len(masses)]: the k-th point's cell mass at the edge of each highest-density
        region (hdr_level)."""
        return np.array([hdr_level(self.mass[k], mass) for mass in self.masses])

    @property
    def width(self) -> float:
        return float(self.centres[1] - self.centres[0])


def hdr_level(mass: np.ndarray, region_mass: float) -> float:
    """The cell mass t such that the cells of mass >= t, the largest ones, hold at least
    region_mass of the total (which is 1) and no cell smaller than t is needed for it."""
    descending = np.sort(mass, axis=None)[::-1]
    needed = np.searchsorted(np.cumsum(descending), region_mass * descending.sum())
    return float(descending[min(needed, descending.size - 1)])


def grid_posterior(decoder, x, extent: float = GRID_EXTENT,
                   points: int = GRID_POINTS) -> GridPosterior:
    """The exact posterior p(z|x) of each row of x [N, P] under a decoder of z [G, 2] -> logits
    [G, P] and the prior N(0, I), on the grid of evaluation.latent_grid."""
    grid: LatentGrid = latent_grid(extent, points)
    logits = decoder(grid.z)
    log_joint = np.concatenate([
        (bernoulli_log_likelihood_table(tf.constant(x[i:i + GRID_ROWS], tf.float32), logits)
         + grid.log_weight[None, :]).numpy() for i in range(0, len(x), GRID_ROWS)])
    log_px = np.logaddexp.reduce(log_joint.astype(np.float64), axis=1)
    mass = np.exp(log_joint - log_px[:, None]).reshape(len(x), points, points)
    centres = grid.z.numpy()[::points, 0]
    return GridPosterior(centres, mass, log_px)

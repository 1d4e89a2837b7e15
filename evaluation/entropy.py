"""The differential entropy of an implicit q(z|x) from its samples: the Kozachenko-Leonenko
nearest-neighbour estimator, with the check that it converged.

It assumes no shape for q, and its error can have either sign; in 2-D, with 8000 samples and
the 5th neighbour it is within about 0.02 nats on a Gaussian of any scale and on q's with
corners (a quadrant, a narrow wedge), which the tests check. An implicit q need not have a
density at all: a ReLU encoder can map sets of noise of positive probability onto lines or
points. Then H(q) is minus infinity, while every finite sample gives a finite estimate that
keeps falling as the sample grows; so the estimate is made on nested samples and
EntropyCheck.converged says whether it settled.
"""

import math
from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from evaluation.sizes import KNN_SAMPLE_SIZES

KNN_NEIGHBOUR = 5
# A point's entropy estimate counts as converged when it moves by at most this between the
# sample sizes: the estimator's noise on a density is about 0.01 nats, and a q that puts mass w
# on lines moves by about w log 4 from 8000 to 32000 samples, so w >= 4 % is caught.
ENTROPY_TOLERANCE = 0.05
# The mean entropy over held-out images counts as converged when it moves by at most this
# between the sample sizes: a mean over hundreds of images has noise near 0.002 nats, and a fall
# of 0.02 is about 1.5 % of q's mass on lines on average.
MEAN_ENTROPY_TOLERANCE = 0.02
COINCIDENT_DISTANCE = 1e-6   # relative to the samples' spread: twins closer than this
COINCIDENT_LIMIT = 1e-3      # fraction of samples with a twin above which q has atoms
MIN_SPREAD = 1e-30
MIN_SQ_DIST = 1e-300      # keeps log finite when samples coincide


def log_unit_ball_volume(d: int) -> float:
    """log of the volume pi^(d/2) / Gamma(d/2 + 1) of the unit ball in d dimensions."""
    return (d / 2) * math.log(math.pi) - math.lgamma(d / 2 + 1)


def knn_entropy(z: np.ndarray, k: int = KNN_NEIGHBOUR) -> float:
    """Kozachenko-Leonenko estimate of the differential entropy of the samples z [n, D]:
    H = psi(n) - psi(k) + log V_D + (D / 2) mean log r_k^2, with r_k each sample's distance to
    its k-th nearest other sample and V_D the volume of the unit D-ball (V_2 = pi)."""
    d = z.shape[1]
    kth_distance = nearest_distances(z, k)[:, -1]
    psi_n_minus_psi_k = np.sum(1.0 / np.arange(k, len(z)))
    return float(psi_n_minus_psi_k + log_unit_ball_volume(d)
                 + np.mean((d / 2) * np.log(np.maximum(kth_distance ** 2, MIN_SQ_DIST))))


def nearest_distances(z: np.ndarray, k: int) -> np.ndarray:
    """[n, k]: each sample's distances to its k nearest other samples, by a k-d tree (exact;
    queried on every core)."""
    z = np.asarray(z, np.float64)
    return cKDTree(z).query(z, k + 1, workers=-1)[0][:, 1:]   # column 0 is the sample itself


def coincident_fraction(z: np.ndarray) -> float:
    """The fraction of samples with another sample closer than COINCIDENT_DISTANCE times the
    samples' spread: zero for a density, the mass of the atoms where q has atoms."""
    z = np.asarray(z, np.float64)
    spread = max(float(np.sqrt(np.sum(np.var(z, 0)))), MIN_SPREAD)
    return float(np.mean(nearest_distances(z, 1)[:, 0] < COINCIDENT_DISTANCE * spread))


class EntropyCheck(NamedTuple):
    """Nearest-neighbour entropy estimates of one q at growing nested sample sizes."""
    by_sample_size: dict          # n -> entropy estimate on the first n samples
    coincident_fraction: float    # of the largest sample

    @property
    def converged(self) -> bool:
        """Whether the estimate has settled: a density's estimate moves by little more than
        its noise between sample sizes; a q with mass on lines or points (no density, entropy
        minus infinity) keeps falling, by about log 4 times that mass per 4 times the samples."""
        estimates = list(self.by_sample_size.values())
        return (max(estimates) - min(estimates) <= ENTROPY_TOLERANCE
                and self.coincident_fraction <= COINCIDENT_LIMIT)


def entropy_check(z: np.ndarray, sample_sizes: tuple = KNN_SAMPLE_SIZES) -> EntropyCheck:
    """Entropy estimates on the first n of the samples z, for each n in sample_sizes."""
    return EntropyCheck({n: knn_entropy(z[:n]) for n in sample_sizes}, coincident_fraction(z))


"""The one-hot pixel data sets: k x k binary images with exactly one pixel on."""

from typing import NamedTuple

import numpy as np

from configs import dataset_side


class Dataset(NamedTuple):
    name: str
    x: np.ndarray            # [n_points, n_pixels] float32 in {0, 1}, row i has pixel i on
    image_shape: tuple       # (k, k), for plotting

    @property
    def n_points(self) -> int:
        return self.x.shape[0]

    @property
    def n_pixels(self) -> int:
        return self.x.shape[1]

    @property
    def optimum_log_px(self) -> float:
        """The best mean log-likelihood any model can reach: every point gets mass 1/N."""
        return -float(np.log(self.n_points))


def one_hot_pixels(side: int) -> Dataset:
    """All side x side images with exactly one pixel on, one per data point."""
    if side < 1:
        raise ValueError(f"side must be at least 1, got {side}")
    n = side * side
    return Dataset(f"{n}px", np.eye(n, dtype=np.float32), (side, side))


def load(name: str) -> Dataset:
    """The data set named Npx (N = k * k >= 4); ValueError for any other name."""
    return one_hot_pixels(dataset_side(name))


def sample_batch(x, batch_size: int, seed):
    """Data points drawn uniformly at random with replacement (stateless, graph-friendly)."""
    import tensorflow as tf

    index = tf.random.stateless_uniform([batch_size], seed, 0, tf.shape(x)[0], dtype=tf.int32)
    return tf.gather(x, index)

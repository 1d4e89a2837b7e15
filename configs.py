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


def _setting(default, help_text, **extra):
    return field(default=default, metadata={"help": help_text, **extra})


@dataclass
class TrainConfig:
    """Settings every run shares."""

    dataset: str = _setting("4px", "which data set: Npx for k x k images with one pixel on, "
                                   "N = k * k >= 4 (4px, 9px, 16px, 25px, ...)",
                            type=dataset_name)
    steps: int = _setting(6000, "number of training iterations")
    batch_size: int = _setting(512, "data points per training iteration")
    seed: int = _setting(0, "seed for weights, batches and noise; equal seeds give equal runs",
                         type=int)
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
    """A Gaussian-encoder VAE with a Bernoulli decoder."""

    encoder_width: int = _setting(64, "hidden units per encoder layer")
    encoder_depth: int = _setting(2, "hidden layers in the encoder")
    decoder_width: int = _setting(64, "hidden units per decoder layer")
    decoder_depth: int = _setting(2, "hidden layers in the decoder")
    learning_rate: float = _setting(3e-3, "Adam learning rate of encoder and decoder")

    def model_name(self) -> str:
        return "vae"


@dataclass
class AVBConfig(TrainConfig):
    """Adversarial Variational Bayes: implicit encoder, adversary T(x, z)."""

    dataset_defaults: ClassVar[dict] = {
        "4px": {"steps": 10000, "batch_size": 256, "schedule": "cosine"},
        "9px": {"steps": 20000, "batch_size": 128, "schedule": "constant"}}

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

    def model_name(self) -> str:
        return "avb"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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


def dataset_settings(config_class, dataset: str) -> dict:
    """The defaults of one data set that differ from the class defaults. A data set whose
    defaults were not measured takes those of the largest smaller measured one, with the steps
    scaled by the ratio of their sizes: each data point is drawn as often over the run."""
    measured = measured_datasets(config_class)
    if dataset in measured:
        return config_class.dataset_defaults.get(dataset, {})
    n_points = dataset_side(dataset) ** 2
    base = [name for name, n in measured.items() if n < n_points][-1]
    settings = config_class.dataset_defaults.get(base, {})
    steps = settings.get("steps", config_class.steps) * n_points / measured[base]
    return {**settings, "steps": math.ceil(steps / STEP_ROUNDING) * STEP_ROUNDING}


def make_config(config_class, **settings):
    """A config from the given settings; unset ones take the data set's default, else the
    class default."""
    dataset = settings.get("dataset", config_class.dataset)
    return config_class(**{**dataset_settings(config_class, dataset), **settings})


def _default_text(config_class, f) -> str:
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
    config = make_config(config_class, **given)
    out = Path(default_out_dir(config))
    try:
        if resume:
            config = resumed_config(config_class, out, given)
        else:
            rundir.check_new_run(out, overwrite)
    except rundir.RunDirError as error:
        parser.error(str(error))
    return RunRequest(config, resume)


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

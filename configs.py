"""Run settings of every model, and the command-line flags built from them.

This module must not import TensorFlow: `--help` reads only what is here.
"""

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, NamedTuple

import rundir

DATASET_NAMES = ("4px", "9px")
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
    """Settings every run shares."""

    dataset: str = _setting("4px", "which data set: 4px (2x2 images) or 9px (3x3 images)",
                            choices=DATASET_NAMES)
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

    def model_name(self) -> str:
        """The registered model these settings describe (registry.py)."""
        raise NotImplementedError


@dataclass
class VAEConfig(TrainConfig):
    """A Gaussian-encoder VAE with a Bernoulli decoder."""

    dataset_defaults: ClassVar[dict] = {}

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


def default_out_dir(config: TrainConfig) -> str:
    return config.out or f"runs/{config.model_name()}-{config.dataset}-seed{config.seed}"


def make_config(config_class, **settings):
    """A config from the given settings; unset ones take the data set's default, else the
    class default."""
    dataset = settings.get("dataset", config_class.dataset)
    return config_class(**{**config_class.dataset_defaults.get(dataset, {}), **settings})


def _default_text(config_class, f) -> str:
    per_dataset = {name: d[f.name] for name, d in config_class.dataset_defaults.items()
                   if f.name in d}
    if not per_dataset:
        return f"default: {f.metadata.get('shown_default', f.default)}"
    return "default: " + ", ".join(f"{v} on {name}" for name, v in per_dataset.items())


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
        kwargs = {"type": f.metadata.get("type", _FLAG_TYPES[f.type]),
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

"""The run directory's files: which files a run holds, how each is written and read back,
and the checks that a run read back is complete."""

import csv
import io
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

import configs
import registry
from harness.rundir.files import (RunDirError, first_line, read_text, write_atomic, write_csv,
                                  write_json, write_npz)
from harness.rundir.layout import (CONFIG_FILE, CRITIC_FILE, HISTORY_FILE, METRICS_FILE,
                                   NETWORK_SUFFIX, POSTERIOR_FILE, STATE_FILE)
from harness.rundir.paths import is_run_dir, refusals

PRIOR_IMAGES = 16         # fixed prior draws decoded at every log step (posterior.npz)
UNCHECKED_ON_RESUME = ("steps", "out")     # settings a resumed run may change
NOT_SETTINGS = ("model", "seed", "out", "versions")   # config.json keys besides the settings
CONFIG_KEYS = ("model", "dataset", "seed", "steps", "n_points", "image_shape")
FINAL_METRICS = ("log_px", "optimum_log_px", "elbo", "posterior_gap", "train_seconds", "steps",
                 "steps_per_second")
OPTIONAL_METRICS = ("optimum_log_px",)   # null where not known
CRITIC_ELBO = "elbo_estimated_by_T"


class Snapshot(NamedTuple):
    """The model's state at one log step, kept in posterior.npz."""
    z: object                 # [shown images, samples, D] posterior samples of each
    reconstructions: object   # [points, pixels] p(x|z) means at each point's first sample
    prior_images: object      # [prior images, pixels] p(x|z) means at fixed prior draws


class DataRecord(NamedTuple):
    """What config.json records of a run's data set, beside its settings."""
    n_points: int          # training images
    image_shape: tuple
    n_test: int            # held-out images (0: none held out; evaluated on the n_points)
    split: str             # how the training and test images were chosen
    shown_labels: list     # the class of each image posterior.npz snapshots (its colour)


class Run(NamedTuple):
    """A finished run as read back and checked by read_run."""
    path: Path
    config: dict        # config.json
    history: dict       # history.csv: column -> float array, NaN for empty cells
    metrics: dict       # metrics.json
    posterior: dict     # posterior.npz: steps, z and, in newer runs, the decoded images


def write_config(out: Path, model_name: str, settings: dict, data_record: DataRecord,
                 versions: dict) -> None:
    record = {"model": model_name, **settings, "out": str(out),
              **data_record._replace(image_shape=list(data_record.image_shape))._asdict(),
              "versions": versions}
    write_json(out / CONFIG_FILE, record)


VALIDATION_COLUMN = "valid_log_px"     # history.csv's validation figure, where there is one
EVALUATED_COLUMNS = ("log_px", VALIDATION_COLUMN)   # empty on rows without an evaluation


def history_fields(metric_names, validation: bool = False) -> list:
    return ["step", "seconds", *metric_names, "log_px", *[VALIDATION_COLUMN][:validation]]


def write_history(out: Path, metric_names, rows: list, validation: bool = False) -> None:
    write_csv(out / HISTORY_FILE, history_fields(metric_names, validation), rows)


def write_posterior(out: Path, rows: list, snapshots: list, x_shown) -> None:
    """The snapshots of the logged steps, one per history row, and the images snapshotted."""
    arrays = {field: np.asarray([getattr(s, field) for s in snapshots], np.float32)
              for field in Snapshot._fields}
    write_npz(out / POSTERIOR_FILE, steps=np.asarray([row["step"] for row in rows], np.int64),
              shown_images=np.asarray(x_shown, np.float32), **arrays)


def write_critic(out: Path, maps: list) -> None:
    """critic.npz: the adversary's error maps [(shown image index, critic_error.CriticMap)]."""
    write_npz(out / CRITIC_FILE, points=np.array([n for n, _ in maps], np.int64),
              **{field: np.stack([np.asarray(getattr(m, field)) for _, m in maps])
                 for field in ("edges", "log_q", "critic_log_q", "kl_bias", "kept_mass")})


def read_critic(run_path: Path) -> dict | None:
    """critic.npz of a run as arrays, or None where the run has none (no critic, D > 2, or
    older than the file)."""
    path = Path(run_path) / CRITIC_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as error:
        raise RunDirError(f"{path} is not a readable .npz file ({first_line(error)})")


class Best(NamedTuple):
    """The best step so far by the validation figure, and the networks' weights there."""
    step: int
    valid_log_px: float
    weights: list


def write_state(out: Path, values: list, step: int, best: Best | None = None) -> None:
    """state.npz: the step, the values v0, v1, ..., and the best step's record (best_step,
    best_valid_log_px, its weights b0, b1, ...) where there is one: one file, so that a resume
    finds the two of one save."""
    kept = {} if best is None else {
        "best_step": np.int64(best.step), "best_valid_log_px": np.float64(best.valid_log_px),
        **{f"b{i}": w for i, w in enumerate(best.weights)}}
    write_npz(out / STATE_FILE, step=np.int64(step),
              **{f"v{i}": v for i, v in enumerate(values)}, **kept)


def write_network(out: Path, name: str, network) -> None:
    write_atomic(out / f"{name}{NETWORK_SUFFIX}", network.save)


def write_metrics(out: Path, metrics: dict) -> None:
    write_json(out / METRICS_FILE, metrics)


# What a resumed run reads back.

def saved_settings(out: Path) -> dict:
    """config.json of the run in out, for --resume. Raises RunDirError if there is none."""
    if not is_run_dir(out) or not (out / STATE_FILE).is_file():
        raise RunDirError(f"--resume: {out} holds no saved run state to resume; "
                          "start a new run without --resume")
    try:
        record = json.loads((out / CONFIG_FILE).read_text())
    except (OSError, ValueError) as error:
        raise RunDirError(f"--resume: cannot read {out / CONFIG_FILE}: {error}")
    if not isinstance(record, dict):
        raise RunDirError(f"--resume: {out / CONFIG_FILE} does not hold a JSON object")
    return record


def saved_step(out: Path) -> int:
    try:
        with np.load(out / STATE_FILE) as state:
            return int(state["step"])
    except (OSError, ValueError, KeyError) as error:
        raise RunDirError(f"--resume: cannot read {out / STATE_FILE}: {error}")


def read_state(out: Path, n_values: int) -> tuple:
    """(step, the first n_values saved values) of state.npz."""
    with np.load(out / STATE_FILE) as state:
        return int(state["step"]), [state[f"v{i}"] for i in range(n_values)]


def read_best(out: Path, n_weights: int) -> Best | None:
    """The best step's record in state.npz; None where it holds none."""
    with np.load(out / STATE_FILE) as state:
        if "best_step" not in state.files:
            return None
        return Best(int(state["best_step"]), float(state["best_valid_log_px"]),
                    [state[f"b{i}"] for i in range(n_weights)])


def changed_settings(saved: dict, given: dict) -> list:
    """'name: saved -> given' for each setting given on the command line that differs."""
    return [f"{name}: {saved[name]!r} -> {value!r}" for name, value in given.items()
            if name in saved and name not in UNCHECKED_ON_RESUME and saved[name] != value]


def read_record_upto(out: Path, step: int) -> tuple:
    """(history rows, snapshots) of the logged steps up to step, for a resumed run."""
    rows = [row for row in read_history(out / HISTORY_FILE) if row["step"] <= step]
    with np.load(out / POSTERIOR_FILE) as posterior:
        kept = posterior["steps"] <= step
        snapshots = [Snapshot(*values) for values in
                     zip(*(posterior[field][kept] for field in Snapshot._fields))]
    return rows, snapshots


def read_record(path: Path, keys) -> dict:
    """A JSON object holding at least the given keys."""
    try:
        record = json.loads(read_text(path))
    except ValueError as error:
        raise RunDirError(f"{path} is not valid JSON ({first_line(error)})")
    if not isinstance(record, dict):
        raise RunDirError(f"{path} does not hold a JSON object")
    missing = [key for key in keys if key not in record]
    if missing:
        raise RunDirError(f"{path} lacks {', '.join(missing)}")
    return record


def read_config(path: Path) -> dict:
    """config.json of a run of a registered model; one saved before data sets held images
    out reads as trained and evaluated on all its n_points images, each its own class."""
    config = read_record(path, CONFIG_KEYS)
    try:
        spec = registry.get(config["model"])
    except registry.UnknownModel as error:
        raise RunDirError(f"{path}: {error}")
    data_record = {"n_test": 0, "split": "none: every image is trained on and evaluated",
                   "shown_labels": list(range(config["n_points"])), **config}
    return configs.settings_of_record(spec.config_class, data_record)


def read_metrics(path: Path, spec) -> dict:
    keys = FINAL_METRICS + ((CRITIC_ELBO,) if "elbo" in spec.critic_estimates else ())
    metrics = read_record(path, keys)
    bad = [key for key in keys if not (key in OPTIONAL_METRICS and metrics[key] is None)
           and (isinstance(metrics[key], bool) or not isinstance(metrics[key], (int, float)))]
    if bad:
        raise RunDirError(f"{path}: {', '.join(bad)} not a number")
    return metrics


def parse_csv(path: Path) -> tuple:
    """The header and the rows of a CSV file that ends with a complete line."""
    text = read_text(path)
    if not text.endswith("\n"):
        raise RunDirError(f"{path} ends in the middle of a row: truncated")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise RunDirError(f"{path} holds no rows")
    if any(len(row) != len(rows[0]) for row in rows[1:]):
        raise RunDirError(f"{path} has rows of the wrong length: truncated or garbled")
    return rows[0], rows[1:]


def read_history(path: Path, metric_names=()) -> list:
    """history.csv as a list of rows: steps as ints, other numbers as floats, empty cells as ''.
    Only the evaluated columns (log_px, valid_log_px) may be empty; the given metric columns
    must be there; steps must increase."""
    header, cells = parse_csv(path)
    required = ("step", "seconds", *metric_names)
    missing = [name for name in required if name not in header]
    if missing:
        raise RunDirError(f"{path} lacks the column(s) {', '.join(missing)}")
    try:
        rows = [{k: (v if v == "" else int(v) if k == "step" else float(v))
                 for k, v in zip(header, row)} for row in cells]
    except ValueError:
        raise RunDirError(f"{path} holds a cell that is not a number: garbled")
    if any(row[k] == "" for row in rows for k in header if k not in EVALUATED_COLUMNS):
        raise RunDirError(f"{path} has empty cells: garbled")
    if any(b["step"] <= a["step"] for a, b in zip(rows, rows[1:])):
        raise RunDirError(f"{path}: steps do not increase: garbled")
    return rows


def history_columns(rows: list) -> dict:
    """Rows of read_history as column -> float array, NaN for empty cells."""
    return {k: np.array([np.nan if row[k] == "" else float(row[k]) for row in rows])
            for k in rows[0]}


def read_posterior(path: Path, config: dict) -> dict:
    if not path.is_file():
        raise RunDirError(f"{path} is missing: {path.parent} is not a complete run")
    try:
        with np.load(path) as npz:
            posterior = {name: npz[name] for name in npz.files}
    except Exception as error:
        raise RunDirError(f"{path} is not a readable .npz file ({first_line(error)})")
    check_posterior_shapes(path, posterior, config)
    return posterior


def check_posterior_shapes(path: Path, posterior: dict, config: dict) -> None:
    """z, and the decoded images where the run has them, hold one entry per logged step and
    shown image."""
    if "steps" not in posterior or "z" not in posterior:
        raise RunDirError(f"{path} lacks the arrays steps and z")
    n_logs, n_pixels = len(posterior["steps"]), math.prod(config["image_shape"])
    n_shown = len(config["shown_labels"])
    expected = {"z": (n_logs, n_shown, None, config["latent_dim"]),
                "reconstructions": (n_logs, n_shown, n_pixels),
                "prior_images": (n_logs, None, n_pixels), "shown_images": (n_shown, n_pixels)}
    for name, shape in expected.items():
        array = posterior.get(name)
        if array is not None and (array.ndim != len(shape) or any(
                n is not None and n != m for n, m in zip(shape, array.shape))):
            raise RunDirError(f"{path}: {name} has shape {array.shape}, expected "
                              f"{tuple('any' if n is None else n for n in shape)}")


def check_complete(run: Run) -> None:
    """History, posterior snapshots and final evaluation all end at the run's last step."""
    last = {HISTORY_FILE: run.history["step"][-1],
            POSTERIOR_FILE: run.posterior["steps"][-1] if len(run.posterior["steps"]) else -1,
            METRICS_FILE: run.metrics["steps"]}
    if len(set(last.values())) > 1:
        found = ", ".join(f"{name} at step {int(step)}" for name, step in last.items())
        raise RunDirError(f"{run.path} is inconsistent ({found}): truncated or from different "
                          "runs")


def read_run(path) -> Run:
    """Everything a finished run holds but its networks, checked (check_networks loads those,
    which needs TensorFlow)."""
    path = Path(path)
    with refusals("run directory", path):
        if not path.is_dir():
            raise RunDirError(f"{path}: no such run directory")
    config = read_config(path / CONFIG_FILE)
    spec = registry.get(config["model"])
    history = history_columns(read_history(path / HISTORY_FILE, spec.metric_names))
    run = Run(path, config, history, read_metrics(path / METRICS_FILE, spec),
              read_posterior(path / POSTERIOR_FILE, config))
    check_complete(run)
    return run


def check_networks(run: Run) -> None:
    """Each saved network of the run loads with Keras."""
    import keras   # here, not at the top: the other checks run before TensorFlow loads

    for name in registry.get(run.config["model"]).networks:
        path = run.path / f"{name}{NETWORK_SUFFIX}"
        if not path.is_file():
            raise RunDirError(f"{path} is missing: {run.path} is not a complete run")
        try:
            keras.models.load_model(path, compile=False)
        except Exception as error:
            raise RunDirError(f"{path} cannot be loaded as a Keras model ({first_line(error)})")


def final_metrics(path: Path) -> dict:
    """metrics.json of the run in path, or {} while the run has not finished."""
    metrics = Path(path) / METRICS_FILE
    return json.loads(metrics.read_text()) if metrics.is_file() else {}


def elbo_converged(metrics: dict) -> bool:
    """Whether metrics.json's true ELBO is a converged value (runs made before the check
    existed hold no flag: their ELBO is shown as it was)."""
    return bool(metrics.get("elbo_converged", True))


def elbo_text(metrics: dict) -> str:
    """metrics.json's ELBO as a line shows it: '>= value' where it is a lower bound (a
    semi-implicit q's, evaluation/final.py)."""
    return (">= " if metrics.get("elbo_lower_bound") else "") + f"{metrics['elbo']:.4f}"


def settings_of(run: Run) -> dict:
    """The settings a run was made with, besides its model and seed."""
    return {k: v for k, v in run.config.items() if k not in NOT_SETTINGS}



"""The run directory: the one module that knows which files a run holds and how each is written,
read back and checked. Training writes through it, compare.py and resuming read through it.

It also owns run names (run_name, run_dir) and what state a run directory is in
(run_state): new, unfinished, finished, in progress, or holding other settings; the scripts,
compare.py and sweep.py all decide by it.

No TensorFlow here: the checks run before it is imported (a saved network is loaded with Keras
only by check_networks).

A run directory holds:
- config.json: the model's name, every setting, the data set's size and the package versions;
- history.csv: one row per log step: step, seconds, the model's metrics, log_px (empty on rows
  without an exact evaluation);
- posterior.npz: per log step, `steps`, posterior samples `z` [logs, points, samples, 2], and
  the decoded `reconstructions` [logs, points, pixels] and `prior_images` [logs, 16, pixels];
- state.npz: the step and every weight and optimiser value, for resuming;
- <network>.keras for each of the model's networks; metrics.json: the final evaluation;
- tensorboard/: the metrics as TensorBoard scalars;
- .lock: the writer lock (below), holding the process id and host of its last holder.

One process writes a run at a time: every writer holds an exclusive lock (flock) on .lock for
as long as it writes, which the operating system releases when the process ends, however it
ends. Readers never take it.
"""

import contextlib
import csv
import dataclasses
import fcntl
import io
import json
import math
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

import configs
import registry

RUNS_ROOT = "runs"        # where a run lands when no --out is given
PRIOR_IMAGES = 16         # fixed prior draws decoded at every log step (posterior.npz)
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
POSTERIOR_FILE = "posterior.npz"
STATE_FILE = "state.npz"
CRITIC_FILE = "critic.npz"
NETWORK_SUFFIX = ".keras"
RUN_FILES = (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, POSTERIOR_FILE, STATE_FILE)
OPTIONAL_RUN_FILES = (CRITIC_FILE,)      # written by some runs only (AVBs where D = 2)
RUN_DIRS = ("tensorboard",)
UNCHECKED_ON_RESUME = ("steps", "out")     # settings a resumed run may change
NOT_SETTINGS = ("model", "seed", "out", "versions")   # config.json keys besides the settings
LOCK_FILE = ".lock"
LOCK_RETRY_SECONDS = 0.5   # how long a writer retries a lock held, perhaps by a reader's probe
LOCK_RETRY_INTERVAL = 0.01
CONFIG_KEYS = ("model", "dataset", "seed", "steps", "n_points", "image_shape")
FINAL_METRICS = ("log_px", "optimum_log_px", "elbo", "posterior_gap", "train_seconds", "steps",
                 "steps_per_second")
OPTIONAL_METRICS = ("optimum_log_px",)   # null where not known
CRITIC_ELBO = "elbo_estimated_by_T"


class RunDirError(Exception):
    """A run directory that cannot be used as asked; the message says why and what to do."""


class RunLocked(RunDirError):
    """Another process is writing the run."""


class WriteFailed(OSError):
    """A file of the run could not be written; the message names the file and the cause."""


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


# Writing: every file goes to a temporary name and is renamed into place.

TEMPORARY_GLOB = ".*.tmp*"      # the names write_atomic writes to before renaming


def temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def remove_leftovers(out: Path) -> list:
    """Removes the temporary files a writer killed inside a write left in out (call it with
    the run's writer lock held, so that no live writer owns them); returns their names."""
    left = sorted(p for p in Path(out).glob(TEMPORARY_GLOB) if p.is_file())
    for p in left:
        p.unlink(missing_ok=True)
    return [p.name for p in left]


def write_atomic(path: Path, write) -> None:
    """Calls write(temporary_path), then renames the result onto path, so that a reader or a
    kill at any moment sees the old file or the new one, never half of one. A kill inside
    write() can leave the temporary file; the next writer's remove_leftovers clears it."""
    path = Path(path)
    temporary = temporary_path(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise WriteFailed(f"cannot write {path} ({error.strerror or first_line(error)})") \
            from error
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def write_json(path: Path, record: dict) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))


def write_csv(path: Path, fieldnames, rows) -> None:
    def write(p):
        with open(p, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames)
            writer.writeheader()
            writer.writerows(rows)
    write_atomic(path, write)


def write_npz(path: Path, **arrays) -> None:
    def write(p):
        with open(p, "wb") as f:
            np.savez(f, **arrays)
    write_atomic(path, write)


def write_config(out: Path, model_name: str, settings: dict, data_record: DataRecord,
                 versions: dict) -> None:
    record = {"model": model_name, **settings, "out": str(out),
              **data_record._replace(image_shape=list(data_record.image_shape))._asdict(),
              "versions": versions}
    write_json(out / CONFIG_FILE, record)


def history_fields(metric_names) -> list:
    return ["step", "seconds", *metric_names, "log_px"]


def write_history(out: Path, metric_names, rows: list) -> None:
    write_csv(out / HISTORY_FILE, history_fields(metric_names), rows)


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


def write_state(out: Path, values: list, step: int) -> None:
    write_npz(out / STATE_FILE, step=np.int64(step), **{f"v{i}": v for i, v in enumerate(values)})


def write_network(out: Path, name: str, network) -> None:
    write_atomic(out / f"{name}{NETWORK_SUFFIX}", network.save)


def write_metrics(out: Path, metrics: dict) -> None:
    write_json(out / METRICS_FILE, metrics)


# The writer lock: one process writes a run at a time.

_held_locks = {}   # run directory (resolved) -> [open lock file, holds in this process]


def _holder(lock_file) -> str:
    lock_file.seek(0)
    text = lock_file.read().split()
    return f"process {text[0]} on {text[1]}" if len(text) == 2 else "another process"


def _try_lock(lock_file, mode: int) -> bool:
    try:
        fcntl.flock(lock_file, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def acquire_lock(out: Path) -> None:
    """Takes the writer lock of the run directory out (which must exist), or raises RunLocked
    naming its holder. Holds in one process nest: each needs a release_lock. The lock file is
    left as it was until sign_lock, so a writer refused after taking it changes nothing."""
    key = Path(out).resolve()
    if key in _held_locks:
        _held_locks[key][1] += 1
        return
    try:
        lock_file = open(os.open(key / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644), "r+")
    except OSError as error:
        raise RunDirError(f"cannot write {key / LOCK_FILE} ({error.strerror})")
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    while not _try_lock(lock_file, fcntl.LOCK_EX):
        if time.monotonic() > deadline:
            holder = _holder(lock_file)
            lock_file.close()
            raise RunLocked(f"{out} is being written by {holder}; wait for it to finish, "
                            "or stop it, before writing this run")
        time.sleep(LOCK_RETRY_INTERVAL)
    _held_locks[key] = [lock_file, 1]


def sign_lock(out: Path) -> None:
    """Writes this process's id and host into the lock it holds on out, for others' messages."""
    lock_file = _held_locks[Path(out).resolve()][0]
    with contextlib.suppress(OSError):   # the holder's name is only for messages
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"{os.getpid()} {socket.gethostname()}\n")
        lock_file.flush()


def release_lock(out: Path) -> None:
    key = Path(out).resolve()
    _held_locks[key][1] -= 1
    if not _held_locks[key][1]:
        _held_locks.pop(key)[0].close()


@contextlib.contextmanager
def writing(out: Path):
    """Holds the writer lock of out (made if missing) while the block runs, having removed
    what a killed writer left half written."""
    Path(out).mkdir(parents=True, exist_ok=True)
    acquire_lock(out)
    remove_leftovers(out)
    sign_lock(out)
    try:
        yield
    finally:
        release_lock(out)


def writer_of(path: Path) -> str | None:
    """'process PID on HOST' if another process is writing the run in path, else None. Probes
    with a shared lock held for an instant (a writer retries for LOCK_RETRY_SECONDS)."""
    if Path(path).resolve() in _held_locks:
        return None
    try:
        lock_file = open(Path(path) / LOCK_FILE)
    except OSError:
        return None
    with lock_file:
        if _try_lock(lock_file, fcntl.LOCK_SH):
            return None
        return _holder(lock_file)


def check_not_in_progress(path: Path) -> None:
    holder = writer_of(path)
    if holder is not None:
        raise RunLocked(f"{path} is in progress: being written by {holder}; run again once "
                        "it has finished")


# Checks made before a run starts.

def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def is_empty(path: Path) -> bool:
    """Missing, or holding nothing but a writer lock (as a run refused at its start leaves)."""
    return not path.exists() or (path.is_dir() and
                                 all(p.name == LOCK_FILE for p in path.iterdir()))


@contextlib.contextmanager
def refusals(flag: str, path: Path):
    """Turns any refusal of the operating system inside the block (a name too long, a
    component that is a file, no permission, a read-only file system, no such device) into a
    RunDirError naming the flag, the path and the reason."""
    try:
        yield
    except OSError as error:
        where = f" ({error.filename})" if error.filename and str(error.filename) != str(path) \
            else ""
        raise RunDirError(f"{flag} {path}: {error.strerror or first_line(error)}{where}") \
            from None


def deepest_existing(paths, flag: str, given: Path) -> Path | None:
    """The first of paths that exists (None if none does); RunDirError, naming the flag and
    the path given, if it is a file where a directory must be."""
    for path in paths:
        if path.exists():
            if not path.is_dir():
                raise RunDirError(f"{flag} {given}: {path} is a file, not a directory")
            return path
    return None


def check_writable(out: Path, flag: str = "--out", file: bool = False) -> None:
    """Raises RunDirError, naming the flag that gave out, if out (a directory, or with file a
    file to write) or a parent of it is a file, or if nothing can be created in the deepest of
    them that exists (tried, not guessed from permission bits), or if the operating system
    refuses the path itself."""
    out = Path(out)
    with refusals(flag, out):
        parent = deepest_existing([*([] if file else [out]), *out.parents], flag, out)
        if parent is not None:
            try:
                os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".write-test-"))
            except OSError as error:
                raise RunDirError(f"{flag} {out}: cannot write in {parent} ({error.strerror})")


def check_readable(path: Path, flag: str, what: str = "file or directory") -> None:
    """Raises RunDirError, naming the flag, if path (a `what`) cannot be read: missing, or
    refused by the operating system."""
    path = Path(path)
    with refusals(flag, path):
        if not path.exists():
            deepest_existing(path.parents, flag, path)
            raise RunDirError(f"{flag} {path}: no such {what}")
        if path.is_dir():
            os.listdir(path)
        else:
            with open(path, "rb"):
                pass


def clear_run(out: Path) -> None:
    """Removes the files of an old run (only those: nothing else in the directory)."""
    for path in [*(out / name for name in (*RUN_FILES, *OPTIONAL_RUN_FILES)),
                 *out.glob(f"*{NETWORK_SUFFIX}")]:
        path.unlink(missing_ok=True)
    for name in RUN_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)


# What a resumed run reads back.

def saved_settings(out: Path, field_names) -> dict:
    """The settings of the run in out, for --resume. Raises RunDirError if there is none."""
    if not is_run_dir(out) or not (out / STATE_FILE).is_file():
        raise RunDirError(f"--resume: {out} holds no saved run state to resume; "
                          "start a new run without --resume")
    try:
        record = json.loads((out / CONFIG_FILE).read_text())
    except (OSError, ValueError) as error:
        raise RunDirError(f"--resume: cannot read {out / CONFIG_FILE}: {error}")
    return {name: record[name] for name in field_names if name in record}


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


# Reading and checking a run.

def first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def read_text(path: Path) -> str:
    if not path.is_file():
        raise RunDirError(f"{path} is missing: {path.parent} is not a complete run")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path} cannot be read ({first_line(error)})")


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
    Only log_px may be empty; the given metric columns must be there; steps must increase."""
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
    if any(row[k] == "" for row in rows for k in header if k != "log_px"):
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


def settings_of(run: Run) -> dict:
    """The settings a run was made with, besides its model and seed."""
    return {k: v for k, v in run.config.items() if k not in NOT_SETTINGS}


# Run names and run states.

def run_name(model: str, dataset: str, seed: int, settings: tuple = ()) -> str:
    """<model>-<dataset>[-<setting>=<value>...]-seed<seed>: a run's directory name."""
    return "-".join([model, dataset, *(f"{k}={v}" for k, v in settings), f"seed{seed}"])


def named_settings(latent_dim: int, binarisation: str = configs.TrainConfig.binarisation
                   ) -> tuple:
    """The settings a run's default directory name shows besides its model, data set and seed:
    the latent dimension and the binarisation where they are not the defaults, so that runs
    made with the defaults keep their names."""
    named = {"latent_dim": latent_dim, "binarisation": binarisation}
    return tuple((name, value) for name, value in named.items()
                 if value != getattr(configs.TrainConfig, name))


def run_dir(config) -> Path:
    """The directory of a run: its --out, else
    runs/<model>-<dataset>[-latent_dim=D][-binarisation=dynamic]-seed<seed>."""
    if config.out:
        return Path(config.out)
    name = run_name(registry.spec_for(config).name, config.dataset, config.seed,
                    named_settings(config.latent_dim, config.binarisation))
    return Path(RUNS_ROOT) / name


NEW = "new"                        # nothing there, or only a lock a refused start left
NOT_A_RUN = "not a run"            # a directory holding other things
UNSAVED = "unsaved"                # config.json but no saved state: nothing to resume
UNFINISHED = "unfinished"          # a saved state to resume, no final evaluation at its end
FINISHED = "finished"              # trained to its steps and evaluated
IN_PROGRESS = "in progress"        # another process is writing it
OTHER_SETTINGS = "other settings"  # a run of another model or with other settings


class RunState(NamedTuple):
    kind: str
    reason: str = ""   # IN_PROGRESS: the writer; OTHER_SETTINGS: 'setting: saved -> asked'
    step: int = 0      # the saved step where there is a saved state


def run_state(path: Path, config=None, model: str | None = None) -> RunState:
    """What the directory path holds, for a run of `model` (or of the model config describes)
    with the settings of config, where given (all but --steps and --out must match; a saved
    step beyond config.steps is other settings). RunDirError if state.npz, or config.json
    where it is compared, cannot be read."""
    path = Path(path)
    holder = writer_of(path)
    if holder is not None:
        return RunState(IN_PROGRESS, holder)
    if is_empty(path):
        return RunState(NEW)
    if not is_run_dir(path):
        return RunState(NOT_A_RUN)
    if not (path / STATE_FILE).is_file():
        return RunState(UNSAVED)
    step = saved_step(path)
    changed = []
    if model or config:
        asked = {"model": model or registry.spec_for(config).name,
                 **(dataclasses.asdict(config) if config else {})}
        changed = changed_settings(read_config(path / CONFIG_FILE), asked)
    if config is not None and step > config.steps:
        changed.append(f"steps: {step} -> {config.steps}")
    if changed:
        return RunState(OTHER_SETTINGS, "; ".join(changed), step)
    finished = (path / METRICS_FILE).is_file() and (config is None or step == config.steps)
    return RunState(FINISHED if finished else UNFINISHED, step=step)


def is_unfinished(path: Path, model_name: str) -> bool:
    """A run of the named model stopped before its final evaluation, which can resume."""
    return run_state(path, model=model_name).kind == UNFINISHED


def kept_save(out_dir: Path) -> str:
    """What a failed run left behind, and how to continue it."""
    try:
        step = saved_step(out_dir)
    except RunDirError:
        return f"nothing of the run in {out_dir} was saved"
    return (f"the run in {out_dir} keeps its save at step {step}; continue it with --resume "
            f"--out {out_dir}")

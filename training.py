"""The training loop both scripts share: many steps per compiled call, metrics to the host
only at log steps, and a run directory with everything needed to evaluate and plot the run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses
import platform
import signal
import sys
import time
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

import data
import evaluation
import rundir
from avb import AVB
from configs import TrainConfig, default_out_dir
from networks import LATENT_DIM
from vae import VAE

MODELS = {"vae": VAE, "avb": AVB}
PRIOR_IMAGES = 16           # fixed prior draws decoded at every log step
CHECKPOINT_SECONDS = 30     # longest wall time between saves of the whole run
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Snapshot(NamedTuple):
    """The model's state at one log step, kept in posterior.npz."""
    z: tf.Tensor                # [points, samples, 2] posterior samples of every data point
    reconstructions: tf.Tensor  # [points, pixels] p(x|z) means at each point's first sample
    prior_images: tf.Tensor     # [PRIOR_IMAGES, pixels] p(x|z) means at fixed prior draws


class RunResult(NamedTuple):
    out_dir: Path
    history: list           # one dict per log step
    metrics: dict           # the final evaluation, as in metrics.json


class Chunk(NamedTuple):
    """What one compiled call of many train steps returns."""
    means: tf.Tensor            # [metrics] each metric averaged over the steps run
    snapshot: Snapshot          # after the last step
    first_nonfinite: tf.Tensor  # [metrics] first step (within the chunk) where a metric was
                                # NaN or Inf; the chunk's length where none was, and then
    weights_finite: tf.Tensor   # whether every weight is finite after the last step


class RunRecord(NamedTuple):
    """What the run has logged so far: one history row and one Snapshot per log step."""
    history: list
    snapshots: list


class NonFiniteError(Exception):
    """Training produced NaN or Inf; the run was saved at the last finite log step."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run; it was saved at its last log step."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


def make_chunk_runner(model, x_all, config: TrainConfig):
    """A compiled function running `n_steps` train steps from `first_step` in one XLA call.

    It stops early at a step whose metrics are not finite. All randomness is keyed on
    (seed, step), so a run is fixed by its seed, however its steps are split into chunks.
    """
    n_points, k = x_all.shape[0], config.posterior_samples
    x_repeated = tf.repeat(x_all, k, axis=0)
    z_prior = tf.random.stateless_normal([PRIOR_IMAGES, LATENT_DIM], [config.seed, PRIOR_IMAGES])
    weights = network_weights(model)

    @tf.function(jit_compile=True)
    def run_chunk(first_step, n_steps):
        def body(i, sums, first_nonfinite):
            step_key = tf.stack([tf.constant(config.seed, tf.int64),
                                 tf.cast(first_step + i, tf.int64)])
            batch_seed, step_seed = tf.unstack(tf.random.experimental.stateless_split(step_key, 2))
            metrics = model.train_step(data.sample_batch(x_all, config.batch_size, batch_seed),
                                       step_seed)
            values = tf.stack([metrics[name] for name in model.metric_names])
            nonfinite_at = tf.where(tf.math.is_finite(values), n_steps, i)
            return i + 1, sums + values, tf.minimum(first_nonfinite, nonfinite_at)

        def all_finite_so_far(i, sums, first_nonfinite):
            return tf.logical_and(i < n_steps, tf.reduce_all(first_nonfinite == n_steps))

        n_metrics = len(model.metric_names)
        n_run, sums, first_nonfinite = tf.while_loop(
            all_finite_so_far, body,
            (tf.constant(0), tf.zeros([n_metrics]), tf.fill([n_metrics], n_steps)))
        snapshot_key = tf.stack([tf.constant(config.seed, tf.int64),
                                 -tf.cast(first_step + n_steps, tf.int64)])
        z = tf.reshape(model.sample_posterior(x_repeated, snapshot_key), [n_points, k, -1])
        snapshot = Snapshot(z, tf.sigmoid(model.decoder(z[:, 0])),
                            tf.sigmoid(model.decoder(z_prior)))
        weights_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(w)) for w in weights])
        return Chunk(sums / tf.cast(n_run, tf.float32), snapshot, first_nonfinite,
                     weights_finite)

    return run_chunk


def package_versions() -> dict:
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def write_config(out_dir: Path, model_name: str, config: TrainConfig, dataset) -> None:
    record = {"model": model_name, **dataclasses.asdict(config), "out": str(out_dir),
              "n_points": dataset.n_points, "image_shape": list(dataset.image_shape),
              "versions": package_versions()}
    rundir.write_json(out_dir / "config.json", record)


def network_weights(model) -> list:
    return [w for network in model.networks.values() for w in network.weights]


def state_variables(model) -> list:
    """Everything a resumed run needs: the weights and the optimisers' slots and step counts."""
    return network_weights(model) + [v for optimizer in model.optimizers for v in
                                     optimizer.variables]


def make_state_reader(model):
    """A function returning the values of state_variables(model) as numpy arrays, read in
    one call rather than one eager read per variable."""
    read = tf.function(lambda: [tf.identity(v) for v in state_variables(model)],
                       autograph=False)
    return lambda: [value.numpy() for value in read()]


def save_state(out_dir: Path, values: list, step: int) -> None:
    rundir.write_npz(out_dir / rundir.STATE_FILE, step=np.int64(step),
                     **{f"v{i}": v for i, v in enumerate(values)})


def restore_state(out_dir: Path, model) -> int:
    """Loads state.npz into the model; returns its step."""
    variables = state_variables(model)
    with np.load(out_dir / rundir.STATE_FILE) as state:
        for i, variable in enumerate(variables):
            variable.assign(state[f"v{i}"])
        return int(state["step"])


def save_run(out_dir: Path, model, state: list, metric_fields: list, record: RunRecord) -> None:
    """Writes history.csv, posterior.npz, state.npz (from `state`, the model's state values)
    and the networks for the last logged step, each file atomically."""
    step = record.history[-1]["step"] if record.history else 0
    save_state(out_dir, state, step)
    for name, network in model.networks.items():
        rundir.write_atomic(out_dir / f"{name}.keras", network.save)
    arrays = {field: np.asarray([getattr(s, field) for s in record.snapshots], np.float32)
              for field in Snapshot._fields}
    rundir.write_npz(out_dir / "posterior.npz",
                     steps=np.asarray([row["step"] for row in record.history], np.int64), **arrays)
    rundir.write_csv(out_dir / "history.csv", metric_fields, record.history)


def start_record(out_dir: Path, model, model_name: str, config: TrainConfig,
                 dataset, resume: bool) -> RunRecord:
    """A fresh run directory, or the record of the run being resumed up to its saved step
    (history written after the last saved state, as after a kill, is dropped)."""
    if not resume:
        out_dir.mkdir(parents=True, exist_ok=True)
        rundir.clear_run(out_dir)
        write_config(out_dir, model_name, config, dataset)
        return RunRecord([], [])
    step = restore_state(out_dir, model)
    (out_dir / "metrics.json").unlink(missing_ok=True)
    history = [row for row in rundir.read_history(out_dir / "history.csv") if row["step"] <= step]
    with np.load(out_dir / "posterior.npz") as posterior:
        kept = posterior["steps"] <= step
        snapshots = [Snapshot(*values) for values in
                     zip(*(posterior[field][kept] for field in Snapshot._fields))]
    write_config(out_dir, model_name, config, dataset)
    return RunRecord(history, snapshots)


class StopSignals:
    """While active, SIGINT and SIGTERM only record that a stop was asked for."""

    def __enter__(self):
        self.signum = None
        self.previous = {s: signal.signal(s, self._request) for s in STOP_SIGNALS}
        return self

    def _request(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def nonfinite_message(model, chunk: Chunk, first_step: int, n_steps: int) -> str:
    first = chunk.first_nonfinite.numpy()
    if first.min() < n_steps:
        names = [name for name, at in zip(model.metric_names, first) if at == first.min()]
        return f"{', '.join(names)} became NaN or Inf at step {first_step + first.min() + 1}"
    return f"a weight became NaN or Inf by step {first_step + n_steps}"


def train(model_name: str, config: TrainConfig, progress: bool = True,
          resume: bool = False) -> RunResult:
    """Trains a model as configured, saving the run in its directory as it goes; with resume,
    continues the run already there. Raises Interrupted or NonFiniteError after saving."""
    out_dir = Path(default_out_dir(model_name, config))
    dataset = data.load(config.dataset)
    keras.utils.set_random_seed(config.seed)
    model = MODELS[model_name](config, dataset.n_pixels)
    record = start_record(out_dir, model, model_name, config, dataset, resume)
    metric_fields = ["step", "seconds", *model.metric_names, "log_px"]
    run_chunk = make_chunk_runner(model, tf.constant(dataset.x), config)
    track_log_px = evaluation.make_log_px_tracker(model.decoder, tf.constant(dataset.x))
    step = record.history[-1]["step"] if record.history else 0
    elapsed = record.history[-1]["seconds"] if record.history else 0.0
    read_state = make_state_reader(model)
    last_good = read_state()
    summary_writer = tf.summary.create_file_writer(str(out_dir / "tensorboard"))
    bar = tqdm(total=config.steps, initial=step, desc=f"{model_name} {config.dataset}",
               unit="step", disable=not progress, dynamic_ncols=True)
    start, last_save = time.perf_counter() - elapsed, -float("inf")
    try:
        with StopSignals() as stop:
            while step < config.steps and stop.signum is None:
                n = min(config.log_every, config.steps - step)
                chunk = run_chunk(tf.constant(step), tf.constant(n))
                if not (bool(chunk.weights_finite)
                        and (chunk.first_nonfinite.numpy() == n).all()):
                    for variable, value in zip(state_variables(model), last_good):
                        variable.assign(value)
                    save_run(out_dir, model, last_good, metric_fields, record)
                    raise NonFiniteError(
                        f"{nonfinite_message(model, chunk, step, n)}; the run in {out_dir} keeps "
                        f"the last finite weights, from step {step}")
                evaluate = (step + n) // config.eval_every > step // config.eval_every
                step += n
                row = {"step": step, "seconds": round(time.perf_counter() - start, 3),
                       **dict(zip(model.metric_names, chunk.means.numpy().tolist())),
                       "log_px": float(track_log_px()) if evaluate or step == config.steps
                       else ""}
                record.history.append(row)
                record.snapshots.append(Snapshot(*(t.numpy() for t in chunk.snapshot)))
                last_good = read_state()
                rundir.write_csv(out_dir / "history.csv", metric_fields, record.history)
                log_scalars(summary_writer, row)
                if time.perf_counter() - last_save > CHECKPOINT_SECONDS:
                    save_run(out_dir, model, last_good, metric_fields, record)
                    last_save = time.perf_counter()
                bar.update(n)
                bar.set_postfix({k: f"{row[k]:.3f}" for k in ("elbo", "log_px_given_z")})
            save_run(out_dir, model, last_good, metric_fields, record)
    finally:
        bar.close()
        summary_writer.close()
    if stop.signum is not None:
        raise Interrupted(f"stopped by {signal.Signals(stop.signum).name} at step {step} and "
                          f"saved; continue with --resume --out {out_dir}", stop.signum)
    metrics = evaluation.evaluate_run(model, dataset, config.seed)
    metrics.update(train_seconds=record.history[-1]["seconds"], steps=step,
                   steps_per_second=step / record.history[-1]["seconds"])
    rundir.write_json(out_dir / "metrics.json", metrics)
    return RunResult(out_dir, record.history, metrics)


def log_scalars(summary_writer, row: dict) -> None:
    with summary_writer.as_default(step=row["step"]):
        for name, value in row.items():
            if name not in ("step", "seconds") and value != "":
                tf.summary.scalar(name, value)


def report(result: RunResult) -> None:
    """A short summary of a finished run on stdout."""
    m = result.metrics
    print(f"exact log p(x) {m['log_px']:.4f}  (optimum {m['optimum_log_px']:.4f})")
    if "elbo" in m:
        print(f"ELBO {m['elbo']:.4f}  posterior gap {m['posterior_gap']:.4f}")
    if "elbo_estimated_by_T" in m:
        print(f"ELBO estimated by T {m['elbo_estimated_by_T']:.4f}  (biased estimate)")
    print(f"{m['steps']} steps in {m['train_seconds']:.1f} s ({m['steps_per_second']:.0f} steps/s)"
          f"; run saved in {result.out_dir}")


def run(request) -> int:
    """Trains and reports as a script does; returns the exit status."""
    try:
        report(train(request.model_name, request.config, resume=request.resume))
    except Interrupted as stopped:
        print(f"{request.model_name}: {stopped}", file=sys.stderr)
        return 128 + stopped.signum
    except NonFiniteError as error:
        print(f"{request.model_name}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{request.model_name}: interrupted outside the training loop; what the run "
              f"had saved is in {default_out_dir(request.model_name, request.config)}",
              file=sys.stderr)
        return 128 + signal.SIGINT
    return 0

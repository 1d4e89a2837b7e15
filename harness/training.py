"""The training loop both scripts share: many steps per compiled call, metrics to the host
only at log steps, and a run directory with everything needed to evaluate and plot the run."""

from harness import startup

startup.import_tensorflow()   # before Keras or TensorFlow load, to keep their start-up quiet

import dataclasses
import platform
import signal
import time
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from evaluation import ais
import data
from evaluation import final, quadrature, validation
import registry
from harness import rundir
from configs import TrainConfig
from harness.exits import Interrupted, NonFiniteError  # noqa: F401 (raised here, caught by callers)
from harness.memory import OutOfMemory, check_memory
from harness.monitor import EvaluationProgress, TensorBoardLog, progress_display
from harness.rundir import PRIOR_IMAGES, Snapshot

CHECKPOINT_SECONDS = 30     # longest wall time between saves of the whole run
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


def train_step_at(model, x_all, batch_size: int, seed, step, dynamic: bool = False):
    """Training iteration `step` as the loop runs it: its batch of x_all (binarised afresh
    where dynamic) and its noise are keyed on (seed, step), so it is the same however the run
    is split. seed and step are int64 and int32 scalar tensors: a compiled loop takes the seed
    as an input, not a constant, so that runs differing only in their seed share one compiled
    program."""
    step_key = tf.stack([seed, tf.cast(step, tf.int64)])
    batch_seed, step_seed = tf.unstack(tf.random.experimental.stateless_split(step_key, 2))
    return model.train_step(data.sample_batch(x_all, batch_size, batch_seed, dynamic),
                            step_seed)


def make_chunk_runner(model, x_all, x_shown, config: TrainConfig, dynamic: bool = False):
    """A compiled function running `n_steps` train steps from `first_step` in one XLA call,
    on batches of x_all, and snapshotting the posterior of the images x_shown after them.

    It stops early at a step whose metrics are not finite. All randomness is keyed on
    (seed, step), so a run is fixed by its seed, however its steps are split into chunks.
    """
    n_points, k = x_shown.shape[0], config.posterior_samples
    x_repeated = tf.repeat(x_shown, k, axis=0)
    z_prior = tf.random.stateless_normal([PRIOR_IMAGES, config.latent_dim],
                                         [config.seed, PRIOR_IMAGES])
    seed = tf.constant(config.seed, tf.int64)     # captured: an input of the compiled loop
    weights = network_weights(model)

    @tf.function(jit_compile=True)
    def run_chunk(first_step, n_steps):
        def body(i, sums, first_nonfinite):
            metrics = train_step_at(model, x_all, config.batch_size, seed, first_step + i,
                                    dynamic)
            values = tf.stack([metrics[name] for name in model.spec.metric_names])
            nonfinite_at = tf.where(tf.math.is_finite(values), n_steps, i)
            return i + 1, sums + values, tf.minimum(first_nonfinite, nonfinite_at)

        def all_finite_so_far(i, sums, first_nonfinite):
            return tf.logical_and(i < n_steps, tf.reduce_all(first_nonfinite == n_steps))

        n_metrics = len(model.spec.metric_names)
        n_run, sums, first_nonfinite = tf.while_loop(
            all_finite_so_far, body,
            (tf.constant(0), tf.zeros([n_metrics]), tf.fill([n_metrics], n_steps)))
        snapshot_key = tf.stack([seed, -tf.cast(first_step + n_steps, tf.int64)])
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


def assign_state(model, values: list) -> None:
    for variable, value in zip(state_variables(model), values):
        variable.assign(value)


def write_networks(out_dir: Path, model) -> None:
    for name, network in model.networks.items():
        rundir.write_network(out_dir, name, network)


def save_run(out_dir: Path, model, state: list, record: RunRecord, x_shown,
             best: rundir.Best | None = None, validated: bool = False) -> None:
    """Writes the networks, posterior.npz, history.csv and, last, state.npz (from `state`, the
    model's state values, with the best step's record) for the last logged step, each file
    atomically. A resume starts from state.npz and reads the others only up to its step, so a
    save that fails or is killed part way leaves the previous save whole and resumable."""
    step = record.history[-1]["step"] if record.history else 0
    write_networks(out_dir, model)
    rundir.write_posterior(out_dir, record.history, record.snapshots, x_shown)
    rundir.write_history(out_dir, model.spec.metric_names, record.history, validated)
    rundir.write_state(out_dir, state, step, best)


def start_record(out_dir: Path, model, config: TrainConfig, dataset, shown_labels,
                 resume: bool) -> RunRecord:
    """A fresh run directory, or the record of the run being resumed up to its saved step
    (history written after the last saved state, as after a kill, is dropped)."""
    if resume:
        step, values = rundir.read_state(out_dir, len(state_variables(model)))
        assign_state(model, values)
        for name in (rundir.METRICS_FILE, rundir.CRITIC_FILE):   # the final evaluation's
            (out_dir / name).unlink(missing_ok=True)
        record = RunRecord(*rundir.read_record_upto(out_dir, step))
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        rundir.clear_run(out_dir)
        record = RunRecord([], [])
    rundir.write_config(out_dir, model.spec.name, dataclasses.asdict(config),
                        rundir.DataRecord(dataset.n_points, dataset.image_shape, dataset.n_test,
                                          dataset.split, shown_labels.tolist()),
                        package_versions())
    return record


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
        names = [name for name, at in zip(model.spec.metric_names, first) if at == first.min()]
        return f"{', '.join(names)} became NaN or Inf at step {first_step + first.min() + 1}"
    return f"a weight became NaN or Inf by step {first_step + n_steps}"


class Trainer:
    """One run in training: the model, what it has logged, and its run directory. Whoever
    makes one holds the run's writer lock (train does)."""

    def __init__(self, config: TrainConfig, resume: bool):
        self.config = config
        self.out_dir = rundir.run_dir(config)
        self.dataset = dataset = data.load(config.dataset, config.data_options)
        self.x_shown, shown_labels = data.shown_points(dataset)
        x_test = data.test_images(dataset, config.evaluated_test_points)
        check_memory(config, dataset.n_pixels, len(self.x_shown), len(x_test))
        keras.utils.set_random_seed(config.seed)
        self.model = registry.spec_for(config).build(config, dataset.n_pixels)
        self.record = start_record(self.out_dir, self.model, config, dataset, shown_labels,
                                   resume)
        self.run_chunk = make_chunk_runner(self.model, tf.constant(dataset.x),
                                           tf.constant(self.x_shown), config, dataset.dynamic)
        self.track_log_px = quadrature.make_log_px_tracker(self.model.decoder, x_test,
                                                           config.latent_dim)
        self.validate = None if dataset.x_valid is None else validation.make_estimator(
            self.model, dataset.x_valid, config)
        self.n_weights = len(network_weights(self.model))
        self.best = rundir.read_best(self.out_dir, self.n_weights) if resume else None
        self.read_state = make_state_reader(self.model)
        self.last_good = self.read_state()

    @property
    def step(self) -> int:
        return self.record.history[-1]["step"] if self.record.history else 0

    @property
    def seconds(self) -> float:
        return self.record.history[-1]["seconds"] if self.record.history else 0.0

    def advance(self, n: int, start: float) -> dict:
        """Runs n steps in one compiled call and logs them; returns the new history row.
        Raises NonFiniteError, after saving the last finite state, if a value is not finite."""
        step, chunk = self.step, self.run_chunk(tf.constant(self.step), tf.constant(n))
        if not (bool(chunk.weights_finite) and (chunk.first_nonfinite.numpy() == n).all()):
            assign_state(self.model, self.last_good)
            self.save()
            raise NonFiniteError(
                f"{nonfinite_message(self.model, chunk, step, n)}; the run in {self.out_dir} "
                f"keeps the last finite weights, from step {step}")
        evaluate = ((step + n) // self.config.eval_every > step // self.config.eval_every
                    or step + n == self.config.steps)
        row = {"step": step + n, "seconds": round(time.perf_counter() - start, 3),
               **dict(zip(self.model.spec.metric_names, chunk.means.numpy().tolist())),
               "log_px": float(self.track_log_px())
               if evaluate and self.track_log_px is not None else ""}
        if self.validate is not None:
            row[rundir.VALIDATION_COLUMN] = self.validate() if evaluate else ""
        self.record.history.append(row)
        self.record.snapshots.append(rundir.Snapshot(*(t.numpy() for t in chunk.snapshot)))
        self.last_good = self.read_state()
        self.keep_if_best(row)
        rundir.write_history(self.out_dir, self.model.spec.metric_names, self.record.history,
                             self.validate is not None)
        return row

    def keep_if_best(self, row: dict) -> None:
        """Keeps the networks' weights of a step whose validation figure is the highest so far
        (the earliest of equal ones)."""
        value = row.get(rundir.VALIDATION_COLUMN, "")
        if value != "" and (self.best is None or value > self.best.valid_log_px):
            self.best = rundir.Best(row["step"], value, self.last_good[:self.n_weights])

    def save(self) -> None:
        save_run(self.out_dir, self.model, self.last_good, self.record, self.x_shown,
                 self.best, self.validate is not None)

    def restore_best(self) -> dict:
        """Puts the best step's weights in the networks (and their files, so that the run's
        networks are the ones evaluated) where there is a best step; the last step's stay in
        state.npz, for resuming. Returns metrics.json's entries on the choice."""
        if self.best is None:
            return {}
        for variable, value in zip(network_weights(self.model), self.best.weights):
            variable.assign(value)
        write_networks(self.out_dir, self.model)
        return {"best_step": self.best.step, "valid_log_px": self.best.valid_log_px,
                "validation_points": validation.points(self.config, self.dataset.n_valid),
                "validation_method": validation.method(self.config)}

    def loop(self, stop: StopSignals, bar, summary_writer) -> None:
        """Trains up to config.steps or until a stop signal, saving at least every
        CHECKPOINT_SECONDS and at the end."""
        start, last_save = time.perf_counter() - self.seconds, -float("inf")
        while self.step < self.config.steps and stop.signum is None:
            n = min(self.config.log_every, self.config.steps - self.step)
            row = self.advance(n, start)
            summary_writer.log(row)
            if time.perf_counter() - last_save > CHECKPOINT_SECONDS:
                self.save()
                last_save = time.perf_counter()
            bar.update(n)
            bar.set_postfix({k: f"{row[k]:.3f}" for k in ("elbo", "log_px_given_z")})
        self.save()

    def evaluate(self, progress=final.no_progress) -> dict:
        """The final evaluation of the best step (the last where there is no validation
        split), written to metrics.json; each phase reports to progress."""
        chosen = self.restore_best()
        try:
            metrics = final.evaluate_run(self.model, self.dataset, self.config, progress)
        except ais.NonFiniteWeights as error:
            raise NonFiniteError(f"{error}; {rundir.kept_save(self.out_dir)}") from None
        maps = final.critic_maps(self.model, self.dataset, self.config, progress)
        if maps:
            rundir.write_critic(self.out_dir, maps)
            metrics.update(final.critic_metrics(maps))
        metrics.update(train_seconds=self.seconds, steps=self.step,
                       steps_per_second=self.step / self.seconds, **chosen)
        rundir.write_metrics(self.out_dir, metrics)
        return metrics


def train(config: TrainConfig, progress: bool = True, resume: bool = False) -> RunResult:
    """Trains the model the config describes, saving the run in its directory as it goes; with
    resume, continues the run already there. Holds the run's writer lock throughout (raises
    rundir.RunLocked if another process holds it). Raises Interrupted or NonFiniteError after
    saving, rundir.WriteFailed if a file cannot be written and OutOfMemory if the run does not
    fit, each keeping the last complete save."""
    out_dir = rundir.run_dir(config)
    with rundir.writing(out_dir):
        try:
            return train_locked(config, progress, resume)
        except (tf.errors.ResourceExhaustedError, MemoryError) as error:
            startup.mark_teardown_unsafe()
            raise OutOfMemory(f"out of memory ({rundir.first_line(error)}); "
                              f"{rundir.kept_save(out_dir)}") from None


def train_locked(config: TrainConfig, progress: bool, resume: bool) -> RunResult:
    """train, for a caller holding the run's writer lock."""
    trainer = Trainer(config, resume)
    summary_writer = TensorBoardLog(trainer.out_dir / "tensorboard")
    bar = progress_display(f"{trainer.model.spec.name} {config.dataset}", config.steps,
                           trainer.step, progress)
    try:
        with StopSignals() as stop:
            trainer.loop(stop, bar, summary_writer)
    finally:
        bar.close()
        summary_writer.close()
    if stop.signum is not None:
        raise Interrupted(f"stopped by {signal.Signals(stop.signum).name} at step "
                          f"{trainer.step} and saved; continue with --resume --out "
                          f"{trainer.out_dir}", stop.signum)
    with StopSignals() as stop:
        def check(phase: str) -> None:
            if stop.signum is not None:
                raise Interrupted(
                    f"stopped by {signal.Signals(stop.signum).name} during the final evaluation "
                    f"({phase}); the training to step {trainer.step} is saved; evaluate it with "
                    f"--resume --out {trainer.out_dir}", stop.signum)
        phases = EvaluationProgress(f"{trainer.model.spec.name} {config.dataset}", progress,
                                    check)
        try:
            metrics = trainer.evaluate(phases)
        finally:
            phases.close()
    return RunResult(trainer.out_dir, trainer.record.history, metrics)



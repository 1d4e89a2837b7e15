"""The training loop both scripts share: many steps per compiled call, metrics to the host
only at log steps, and a run directory with everything needed to evaluate and plot the run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csv
import dataclasses
import json
import platform
import time
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

import data
import evaluation
from avb import AVB
from configs import TrainConfig, default_out_dir
from networks import LATENT_DIM
from vae import VAE

MODELS = {"vae": VAE, "avb": AVB}
PRIOR_IMAGES = 16           # fixed prior draws decoded at every log step


class Snapshot(NamedTuple):
    """The model's state at one log step, kept in posterior.npz."""
    z: tf.Tensor                # [points, samples, 2] posterior samples of every data point
    reconstructions: tf.Tensor  # [points, pixels] p(x|z) means at each point's first sample
    prior_images: tf.Tensor     # [PRIOR_IMAGES, pixels] p(x|z) means at fixed prior draws


class RunResult(NamedTuple):
    out_dir: Path
    history: list           # one dict per log step
    metrics: dict           # the final evaluation, as in metrics.json


def make_chunk_runner(model, x_all, config: TrainConfig):
    """A compiled function running `n_steps` train steps from `first_step` in one XLA call.

    It returns the metrics averaged over those steps and a Snapshot after the last one. All
    randomness is keyed on (seed, step), so a run is fixed by its seed.
    """
    n_points, k = x_all.shape[0], config.posterior_samples
    x_repeated = tf.repeat(x_all, k, axis=0)
    z_prior = tf.random.stateless_normal([PRIOR_IMAGES, LATENT_DIM], [config.seed, PRIOR_IMAGES])

    @tf.function(jit_compile=True)
    def run_chunk(first_step, n_steps):
        def body(i, sums):
            step_key = tf.stack([tf.constant(config.seed, tf.int64), tf.cast(first_step + i, tf.int64)])
            batch_seed, step_seed = tf.unstack(tf.random.experimental.stateless_split(step_key, 2))
            metrics = model.train_step(data.sample_batch(x_all, config.batch_size, batch_seed),
                                       step_seed)
            return i + 1, [s + metrics[name] for s, name in zip(sums, model.metric_names)]

        zeros = [tf.zeros([]) for _ in model.metric_names]
        _, sums = tf.while_loop(lambda i, _: i < n_steps, body, (tf.constant(0), zeros))
        snapshot_key = tf.stack([tf.constant(config.seed, tf.int64), -tf.cast(first_step + n_steps, tf.int64)])
        z = tf.reshape(model.sample_posterior(x_repeated, snapshot_key), [n_points, k, -1])
        snapshot = Snapshot(z, tf.sigmoid(model.decoder(z[:, 0])),
                            tf.sigmoid(model.decoder(z_prior)))
        return tf.stack(sums) / tf.cast(n_steps, tf.float32), snapshot

    return run_chunk


def package_versions() -> dict:
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def write_config(out_dir: Path, model_name: str, config: TrainConfig, dataset) -> None:
    record = {"model": model_name, **dataclasses.asdict(config), "out": str(out_dir),
              "n_points": dataset.n_points, "image_shape": list(dataset.image_shape),
              "versions": package_versions()}
    (out_dir / "config.json").write_text(json.dumps(record, indent=2) + "\n")


def save_run(out_dir: Path, model, steps: list, snapshots: list) -> None:
    for name, network in model.networks.items():
        network.save(out_dir / f"{name}.keras")
    arrays = {field: np.asarray([getattr(s, field) for s in snapshots], np.float32)
              for field in Snapshot._fields}
    np.savez_compressed(out_dir / "posterior.npz", steps=np.asarray(steps, np.int64), **arrays)


class HistoryWriter:
    """history.csv, one row per log step, flushed as it goes."""

    def __init__(self, path: Path, metric_names):
        self.file = open(path, "w", newline="")
        self.writer = csv.DictWriter(self.file, ["step", "seconds", *metric_names])
        self.writer.writeheader()

    def write(self, row: dict) -> None:
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def train(model_name: str, config: TrainConfig, progress: bool = True) -> RunResult:
    out_dir = Path(default_out_dir(model_name, config))
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = data.load(config.dataset)
    keras.utils.set_random_seed(config.seed)
    model = MODELS[model_name](config, dataset.n_pixels)
    write_config(out_dir, model_name, config, dataset)
    run_chunk = make_chunk_runner(model, tf.constant(dataset.x), config)
    summary_writer = tf.summary.create_file_writer(str(out_dir / "tensorboard"))
    history_writer = HistoryWriter(out_dir / "history.csv", [*model.metric_names, "log_px"])
    track_log_px = evaluation.make_log_px_tracker(model.decoder, tf.constant(dataset.x))
    history, steps, snapshots = [], [], []
    bar = tqdm(total=config.steps, desc=f"{model_name} {config.dataset}", unit="step",
               disable=not progress, dynamic_ncols=True)
    start, step = time.perf_counter(), 0
    try:
        while step < config.steps:
            n = min(config.log_every, config.steps - step)
            means, snapshot = run_chunk(tf.constant(step), tf.constant(n))
            evaluate = (step + n) // config.eval_every > step // config.eval_every
            step += n
            row = {"step": step, "seconds": round(time.perf_counter() - start, 3),
                   **dict(zip(model.metric_names, means.numpy().tolist())),
                   "log_px": float(track_log_px()) if evaluate or step == config.steps else ""}
            history_writer.write(row)
            history.append(row)
            steps.append(step)
            snapshots.append(Snapshot(*(t.numpy() for t in snapshot)))
            with summary_writer.as_default(step=step):
                for name in model.metric_names:
                    tf.summary.scalar(name, row[name])
                if row["log_px"] != "":
                    tf.summary.scalar("log_px", row["log_px"])
            bar.update(n)
            bar.set_postfix({k: f"{row[k]:.3f}" for k in ("elbo", "log_px_given_z")})
    finally:
        bar.close()
        history_writer.close()
        summary_writer.close()
        save_run(out_dir, model, steps, snapshots)
    metrics = evaluation.evaluate_run(model, dataset, config.seed)
    metrics.update(train_seconds=history[-1]["seconds"], steps=step,
                   steps_per_second=step / history[-1]["seconds"])
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return RunResult(out_dir, history, metrics)


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

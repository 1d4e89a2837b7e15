"""Compare the VAE and AVB runs on one data set: their metrics over training, their latent
spaces (a picture and an animation per model) and a table of the final evaluation.

The runs are <runs-root>/<model>-<dataset>-seed<seed> for each model and seed, trained first
with default settings where missing, or the directories given by --runs. Written into --out:
metrics.png, latent-<model>.png and latent-<model>.gif per model, results.md and results.csv.
"""

import argparse
import csv
import io
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import rundir
from configs import (DATASET_NAMES, METRIC_NAMES, MODEL_CONFIGS, OneLineErrorParser,
                     make_config, positive_int, resumed_config)

MODEL_NAMES = ("vae", "avb")
MODEL_LABELS = {"vae": "VAE", "avb": "AVB"}
MODEL_COLOURS = {"vae": "tab:blue", "avb": "tab:orange"}
NETWORKS = {"vae": ("encoder", "decoder"), "avb": ("encoder", "decoder", "adversary")}
FINAL_METRICS = {"vae": ("log_px", "optimum_log_px", "elbo", "posterior_gap", "train_seconds",
                         "steps", "steps_per_second"),
                 "avb": ("log_px", "optimum_log_px", "elbo", "posterior_gap", "train_seconds",
                         "steps", "steps_per_second", "elbo_estimated_by_T")}
CONFIG_KEYS = ("model", "dataset", "seed", "steps", "n_points", "image_shape")
PANELS = (("log_px_given_z", "log p(x|z)"), ("log_pz", "log p(z)"),
          ("log_qz_given_x", "log q(z|x)"), ("elbo", "ELBO"), ("log_px", "exact log p(x)"),
          ("adversary_loss", "adversary loss"), ("adversary_accuracy", "adversary accuracy"))
T_ESTIMATES = ("log_qz_given_x", "elbo")   # AVB's are the adversary T's estimates
X_LABELS = {"steps": "training step", "seconds": "wall-clock seconds since training began"}
LATENT_EXTENT = 4.0          # the latent plane shown: [-4, 4]^2 in every frame
PRIOR_CIRCLES = (1, 2, 3)    # radii in prior standard deviations
GIF_MAX_FRAMES = 60
GIF_DPI = 72
GIF_FRAME_MS = 150
GIF_LAST_FRAME_MS = 2000   # the final state stays on screen before the loop restarts
PNG_DPI = 110
X_TICK_COUNT = 5             # at most, so that step counts like 20000 stay legible
RESULT_COLUMNS = ("model", "dataset", "seeds", "log_px", "log_px_min", "log_px_max",
                  "optimum_log_px", "elbo", "elbo_estimated_by_T", "posterior_gap",
                  "train_seconds", "steps_per_second")


class RunError(Exception):
    """A run directory that cannot be compared; the message says which and why."""


class Stopped(Exception):
    """Training of a missing run was stopped by a signal; what it saved can be resumed."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


@dataclass
class CompareConfig:
    dataset: str | None = None         # None: 4px, or with `runs` the data set they share
    seeds: tuple = (0,)
    runs: tuple = ()                   # run directories; when given, seeds are not used
    runs_root: str = "runs"
    x_axis: str = "steps"
    train_steps: int | None = None     # steps of the runs that must be trained; None: default
    out: str | None = None             # None: <runs_root>/compare-<dataset>


class RunSpec(NamedTuple):
    """A run asked for; model and seed are known only when named by them."""
    path: Path
    model: str | None = None
    seed: int | None = None


class Run(NamedTuple):
    path: Path
    config: dict        # config.json
    history: dict       # history.csv: column -> float array, NaN for empty cells
    metrics: dict       # metrics.json
    posterior: dict     # posterior.npz: steps, z and, in newer runs, the decoded images


# Reading and checking run directories.

def first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def read_text(path: Path) -> str:
    if not path.is_file():
        raise RunError(f"{path} is missing: {path.parent} is not a complete run")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise RunError(f"{path} cannot be read ({first_line(error)})")


def read_record(path: Path, keys) -> dict:
    """A JSON object holding at least the given keys."""
    try:
        record = json.loads(read_text(path))
    except ValueError as error:
        raise RunError(f"{path} is not valid JSON ({first_line(error)})")
    if not isinstance(record, dict):
        raise RunError(f"{path} does not hold a JSON object")
    missing = [key for key in keys if key not in record]
    if missing:
        raise RunError(f"{path} lacks {', '.join(missing)}")
    return record


def read_config(path: Path) -> dict:
    config = read_record(path, CONFIG_KEYS)
    if config["model"] not in MODEL_NAMES or config["dataset"] not in DATASET_NAMES:
        raise RunError(f"{path}: unknown model {config['model']!r} or data set "
                       f"{config['dataset']!r}")
    return config


def read_metrics(path: Path, model: str) -> dict:
    metrics = read_record(path, FINAL_METRICS[model])
    bad = [key for key in FINAL_METRICS[model]
           if isinstance(metrics[key], bool) or not isinstance(metrics[key], (int, float))]
    if bad:
        raise RunError(f"{path}: {', '.join(bad)} not a number")
    return metrics


def parse_csv(path: Path) -> tuple:
    """The header and the rows of a CSV file that ends with a complete line."""
    text = read_text(path)
    if not text.endswith("\n"):
        raise RunError(f"{path} ends in the middle of a row: truncated")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise RunError(f"{path} holds no rows")
    if any(len(row) != len(rows[0]) for row in rows[1:]):
        raise RunError(f"{path} has rows of the wrong length: truncated or garbled")
    return rows[0], rows[1:]


def read_history(path: Path, model: str) -> dict:
    """history.csv as columns; only log_px may have empty cells (steps without evaluation)."""
    header, rows = parse_csv(path)
    required = ("step", "seconds", *METRIC_NAMES[model])
    missing = [name for name in required if name not in header]
    if missing:
        raise RunError(f"{path} lacks the column(s) {', '.join(missing)}")
    try:
        values = np.array([[float(v) if v != "" else np.nan for v in row] for row in rows])
    except ValueError:
        raise RunError(f"{path} holds a cell that is not a number: garbled")
    history = dict(zip(header, values.T))
    if any(np.isnan(history[name]).any() for name in required):
        raise RunError(f"{path} has empty cells: garbled")
    if (np.diff(history["step"]) <= 0).any():
        raise RunError(f"{path}: steps do not increase: garbled")
    return history


def read_posterior(path: Path, config: dict) -> dict:
    if not path.is_file():
        raise RunError(f"{path} is missing: {path.parent} is not a complete run")
    try:
        with np.load(path) as npz:
            posterior = {name: npz[name] for name in npz.files}
    except Exception as error:
        raise RunError(f"{path} is not a readable .npz file ({first_line(error)})")
    check_posterior_shapes(path, posterior, config)
    return posterior


def check_posterior_shapes(path: Path, posterior: dict, config: dict) -> None:
    """z, and the decoded images where the run has them, hold one entry per logged step."""
    if "steps" not in posterior or "z" not in posterior:
        raise RunError(f"{path} lacks the arrays steps and z")
    n_logs, n_pixels = len(posterior["steps"]), math.prod(config["image_shape"])
    expected = {"z": (n_logs, config["n_points"], None, 2),
                "reconstructions": (n_logs, config["n_points"], n_pixels),
                "prior_images": (n_logs, None, n_pixels)}
    for name, shape in expected.items():
        array = posterior.get(name)
        if array is not None and (array.ndim != len(shape) or any(
                n is not None and n != m for n, m in zip(shape, array.shape))):
            raise RunError(f"{path}: {name} has shape {array.shape}, expected "
                           f"{tuple('any' if n is None else n for n in shape)}")


def check_complete(run: Run) -> None:
    """History, posterior snapshots and final evaluation all end at the run's last step."""
    last = {"history.csv": run.history["step"][-1],
            "posterior.npz": run.posterior["steps"][-1] if len(run.posterior["steps"]) else -1,
            "metrics.json": run.metrics["steps"]}
    if len(set(last.values())) > 1:
        found = ", ".join(f"{name} at step {int(step)}" for name, step in last.items())
        raise RunError(f"{run.path} is inconsistent ({found}): truncated or from different runs")


def read_run(path) -> Run:
    """Everything compare needs from a run directory, checked; the networks are checked
    separately (check_networks), as that needs TensorFlow."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: no such run directory")
    config = read_config(path / "config.json")
    run = Run(path, config, read_history(path / "history.csv", config["model"]),
              read_metrics(path / "metrics.json", config["model"]),
              read_posterior(path / "posterior.npz", config))
    check_complete(run)
    return run


def check_networks(run: Run) -> None:
    """Each saved network of the run loads with Keras."""
    import keras

    for name in NETWORKS[run.config["model"]]:
        path = run.path / f"{name}.keras"
        if not path.is_file():
            raise RunError(f"{path} is missing: {run.path} is not a complete run")
        try:
            keras.models.load_model(path, compile=False)
        except Exception as error:
            raise RunError(f"{path} cannot be loaded as a Keras model ({first_line(error)})")


def check_same_dataset(runs: list, specs: list, dataset: str | None) -> None:
    for run, spec in zip(runs, specs):
        asked = {"model": spec.model, "seed": spec.seed, "dataset": dataset}
        for key, value in asked.items():
            if value is not None and run.config[key] != value:
                raise RunError(f"{run.path} holds a run with {key} {run.config[key]}, "
                               f"not {value}")
    datasets = {run.config["dataset"] for run in runs}
    if len(datasets) > 1:
        listing = ", ".join(f"{run.path} ({run.config['dataset']})" for run in runs)
        raise RunError(f"cannot compare runs of different data sets: {listing}")


# Finding and training the runs.

def run_specs(config: CompareConfig) -> list:
    if config.runs:
        return [RunSpec(Path(path)) for path in config.runs]
    dataset = config.dataset or DATASET_NAMES[0]
    seeds = dict.fromkeys(config.seeds)
    return [RunSpec(Path(config.runs_root) / f"{model}-{dataset}-seed{seed}", model, seed)
            for model in MODEL_NAMES for seed in seeds]


def is_unfinished(spec: RunSpec) -> bool:
    """A run of the asked model that was stopped before its final evaluation and can resume."""
    path = spec.path
    return (spec.model is not None and (path / rundir.STATE_FILE).is_file()
            and not (path / "metrics.json").exists()
            and read_config(path / "config.json")["model"] == spec.model)


def to_train(spec: RunSpec, dataset: str, steps: int | None) -> tuple:
    """(config, resume) for a run of the asked model and seed that is missing or unfinished."""
    config_class = MODEL_CONFIGS[spec.model]
    if spec.path.exists():
        try:
            return resumed_config(config_class, spec.path, {}), True
        except rundir.RunDirError as error:
            raise RunError(f"{spec.path} cannot be resumed ({error})")
    settings = {"dataset": dataset, "seed": spec.seed, "out": str(spec.path)}
    settings.update({"steps": steps} if steps else {})
    return make_config(config_class, **settings), False


def train_run(spec: RunSpec, dataset: str, steps: int | None) -> None:
    import training

    config, resume = to_train(spec, dataset, steps)
    print(f"{spec.path} is {'unfinished: resuming' if resume else 'missing: training'} "
          f"{MODEL_LABELS[spec.model]} on {config.dataset}, seed {config.seed}, "
          f"{config.steps} steps{'' if resume else ', default settings'}", flush=True)
    try:
        training.train(spec.model, config, progress=sys.stderr.isatty(), resume=resume)
    except training.NonFiniteError as error:
        raise RunError(f"training {spec.path} failed: {error}")
    except training.Interrupted as stopped:
        raise Stopped(f"{stopped}; or run compare.py again to resume it", stopped.signum)


def gather_runs(config: CompareConfig) -> list:
    """The runs to compare, all checked before any missing or unfinished one is trained."""
    specs = run_specs(config)
    pending = [spec for spec in specs if spec.model is not None and
               (not spec.path.exists() or is_unfinished(spec))]
    present = [spec for spec in specs if spec not in pending]
    runs = [read_run(spec.path) for spec in present]
    check_same_dataset(runs, present, config.dataset)
    for run in runs:
        check_networks(run)
    dataset = config.dataset or (runs[0].config["dataset"] if runs else DATASET_NAMES[0])
    for spec in pending:
        train_run(spec, dataset, config.train_steps)
    return runs + [read_run(spec.path) for spec in pending]


def group_by_model(runs: list) -> dict:
    """model -> its runs in seed order, VAE first."""
    return {model: sorted((run for run in runs if run.config["model"] == model),
                          key=lambda run: run.config["seed"])
            for model in MODEL_NAMES if any(run.config["model"] == model for run in runs)}


# The metrics figure.

def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Band(NamedTuple):
    """A metric over training: mean over seeds, and its min and max."""
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def logged_values(history: dict, column: str) -> tuple:
    """(steps, seconds, values) at the rows where the column has a value."""
    values = history.get(column, np.full_like(history["step"], np.nan))
    logged = np.isfinite(values)
    return history["step"][logged], history["seconds"][logged], values[logged]


def seed_band(runs: list, column: str, x_axis: str) -> Band | None:
    """The column over training across seeds, on the logged steps of the shortest run."""
    series = [s for s in (logged_values(run.history, column) for run in runs) if len(s[0])]
    if not series:
        return None
    steps = min((s[0] for s in series), key=len)
    values = np.stack([np.interp(steps, s[0], s[2]) for s in series])
    seconds = np.mean([np.interp(steps, s[0], s[1]) for s in series], axis=0)
    x = steps if x_axis == "steps" else seconds
    return Band(x, values.mean(axis=0), values.min(axis=0), values.max(axis=0))


def curve_label(model: str, column: str, n_runs: int) -> str:
    label = MODEL_LABELS[model] + (" (T's estimate)" if model == "avb" and column in
                                   T_ESTIMATES else "")
    return label + (f", mean and min-max of {n_runs} seeds" if n_runs > 1 else "")


def plot_band(ax, model: str, runs: list, column: str, x_axis: str) -> None:
    band = seed_band(runs, column, x_axis)
    if band is None:
        return
    colour, sparse = MODEL_COLOURS[model], len(band.x) < 20 or column == "log_px"
    ax.plot(band.x, band.mean, color=colour, marker="o" if sparse else None, markersize=3,
            linestyle="-." if model == "avb" and column in T_ESTIMATES else "-",
            label=curve_label(model, column, len(runs)))
    if len(runs) > 1:
        ax.fill_between(band.x, band.low, band.high, color=colour, alpha=0.25, linewidth=0)


def final_x(runs: list, x_axis: str) -> float:
    key = "steps" if x_axis == "steps" else "train_seconds"
    return float(np.mean([run.metrics[key] for run in runs]))


def plot_final(ax, model: str, runs: list, key: str, x_axis: str, label: str) -> None:
    """The final evaluation from metrics.json as a marker at the end of training."""
    ax.plot(final_x(runs, x_axis), np.mean([run.metrics[key] for run in runs]), marker="D",
            color=MODEL_COLOURS[model], markeredgecolor="black", linestyle="none",
            label=f"{MODEL_LABELS[model]} {label}")


def plot_references(ax, column: str, groups: dict, x_axis: str) -> None:
    """The optimum on the log-likelihood panels; the true ELBO (and log p(x) where the history
    has none) at the end of training."""
    for model, runs in groups.items():
        if column == "elbo":
            plot_final(ax, model, runs, "elbo", x_axis, "true ELBO at the end")
        if column == "log_px" and seed_band(runs, "log_px", x_axis) is None:
            plot_final(ax, model, runs, "log_px", x_axis, "log p(x) at the end")
    if column in ("elbo", "log_px"):
        runs = next(iter(groups.values()))
        ax.axhline(runs[0].metrics["optimum_log_px"], color="0.3", linestyle="--",
                   label=f"optimum -log {runs[0].config['n_points']}")


def draw_panel(ax, column: str, title: str, groups: dict, x_axis: str) -> None:
    from matplotlib.ticker import MaxNLocator

    for model, runs in groups.items():
        plot_band(ax, model, runs, column, x_axis)
    plot_references(ax, column, groups, x_axis)
    ax.set_title(title)
    ax.set_xlabel(X_LABELS[x_axis])
    ax.set_xlim(left=0)
    ax.xaxis.set_major_locator(MaxNLocator(X_TICK_COUNT))
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "not logged by these runs", ha="center", va="center",
                transform=ax.transAxes, color="0.4")


def describe(ax, groups: dict) -> None:
    """The figure's key, in the spare panel."""
    lines = ["Means over the steps between logs (history.csv).",
             "AVB's log q(z|x) and ELBO (dash-dotted) are estimates",
             "by its adversary T, which can be biased.",
             "Diamonds: true values after training (metrics.json).",
             "Dashed line: the best possible log-likelihood, -log N.",
             "Exact log p(x): quadrature over the latent plane.",
             *(f"{MODEL_LABELS[m]}: seed(s) {', '.join(str(r.config['seed']) for r in runs)}"
               for m, runs in groups.items())]
    ax.axis("off")
    ax.text(0.0, 0.95, "\n".join(lines), va="top", fontsize=9, transform=ax.transAxes)


def plot_metrics(groups: dict, x_axis: str, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(18, 8), layout="constrained")
    for ax, (column, title) in zip(axes.flat, PANELS):
        draw_panel(ax, column, title, groups, x_axis)
    describe(axes.flat[-1], groups)
    dataset = next(iter(groups.values()))[0].config["dataset"]
    fig.suptitle(f"{' vs '.join(MODEL_LABELS[m] for m in groups)} on {dataset}: "
                 "metrics over training (nats per data point)")
    rundir.write_atomic(path, lambda p: fig.savefig(p, dpi=PNG_DPI))
    plt.close(fig)


# The latent figure and its animation.

def mosaic(images: np.ndarray, image_shape, columns: int, frames, scale: int = 12,
           border: int = 2, gap: int = 3) -> np.ndarray:
    """Grey-scale images [N, pixels] as one RGB picture: a grid of tiles, each framed in its
    colour (frames: [N, 3]) with white between them."""
    tiles = images.reshape(-1, *image_shape).repeat(scale, axis=1).repeat(scale, axis=2)
    framed = np.broadcast_to(np.asarray(frames, float)[:, None, None, :],
                             (len(tiles), tiles.shape[1] + 2 * border,
                              tiles.shape[2] + 2 * border, 3)).copy()
    framed[:, border:-border, border:-border] = tiles[..., None]
    rows = math.ceil(len(framed) / columns)
    framed = np.concatenate([framed, np.ones((rows * columns - len(framed), *framed.shape[1:]))])
    spaced = np.pad(framed, ((0, 0), (gap, gap), (gap, gap), (0, 0)), constant_values=1.0)
    height, width = spaced.shape[1:3]
    return spaced.reshape(rows, columns, height, width, 3).swapaxes(1, 2).reshape(
        rows * height, columns * width, 3)


class LatentFigure:
    """One run's decoded images and posterior samples at a log step, redrawn in place."""

    def __init__(self, run: Run, dpi: int):
        plt = pyplot()
        self.run, self.plt = run, plt
        self.colours = plt.get_cmap("tab10")(np.arange(run.config["n_points"]) % 10)[:, :3]
        self.fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), dpi=dpi, layout="constrained",
                                      width_ratios=(1, 1, 1.1))
        self.images = [self.image_axes(ax, title) for ax, title in zip(axes[:2], (
            "reconstructions: p(x|z) means, z ~ q(z|x)\n(frame colour = data point)",
            "decoded prior samples: p(x|z) means\nat 16 fixed z ~ N(0, I)"))]
        self.scatter = self.latent_axes(axes[2])
        self.title = self.fig.suptitle("")

    def image_axes(self, ax, title: str):
        ax.set_title(title, fontsize=10)
        if "prior_images" not in self.run.posterior:
            ax.text(0.5, 0.5, "not saved in this run's posterior.npz", ha="center",
                    va="center", color="0.4", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        return ax.imshow(np.ones((2, 2, 3)), interpolation="nearest")

    def latent_axes(self, ax):
        for radius in PRIOR_CIRCLES:
            ax.add_patch(self.plt.Circle((0, 0), radius, fill=False, color="0.75",
                                         linestyle="--", linewidth=0.8))
        ax.set(xlim=(-LATENT_EXTENT, LATENT_EXTENT), ylim=(-LATENT_EXTENT, LATENT_EXTENT),
               aspect="equal", xlabel="z1", ylabel="z2")
        ax.set_title("posterior samples z ~ q(z|x), one colour per data point\n"
                     "(grey circles: prior N(0, I) at 1, 2, 3 sd)", fontsize=10)
        return ax.scatter(np.zeros(0), np.zeros(0), s=5, linewidths=0, alpha=0.35)

    def draw(self, index: int) -> np.ndarray:
        """The figure at log step `index` of posterior.npz, as an RGB array."""
        posterior, config = self.run.posterior, self.run.config
        z = posterior["z"][index]
        self.scatter.set_offsets(z.reshape(-1, 2))
        self.scatter.set_facecolor(np.repeat(self.colours, z.shape[1], axis=0))
        self.draw_images(index)
        self.title.set_text(f"{MODEL_LABELS[config['model']]} on {config['dataset']}, seed "
                            f"{config['seed']}: step {int(posterior['steps'][index])} of "
                            f"{config['steps']}")
        self.fig.canvas.draw()
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def draw_images(self, index: int) -> None:
        posterior, shape = self.run.posterior, self.run.config["image_shape"]
        if "reconstructions" not in posterior or "prior_images" not in posterior:
            return
        side = math.ceil(math.sqrt(self.run.config["n_points"]))
        self.images[0].set_data(mosaic(posterior["reconstructions"][index], shape, side,
                                       self.colours))
        prior = posterior["prior_images"][index]
        self.images[1].set_data(mosaic(prior, shape, 4, np.full((len(prior), 3), 0.6)))
        for image in self.images:
            height, width = image.get_array().shape[:2]
            image.set_extent((-0.5, width - 0.5, height - 0.5, -0.5))

    def close(self) -> None:
        self.plt.close(self.fig)


def gif_frames(n_logs: int) -> np.ndarray:
    """At most GIF_MAX_FRAMES log steps, evenly spread, always with the first and last."""
    return np.unique(np.linspace(0, n_logs - 1, min(n_logs, GIF_MAX_FRAMES)).round().astype(int))


def plot_latent(run: Run, png: Path, gif: Path) -> None:
    import imageio.v3 as iio

    figure = LatentFigure(run, PNG_DPI)
    figure.draw(-1)
    rundir.write_atomic(png, figure.fig.savefig)
    figure.close()
    figure = LatentFigure(run, GIF_DPI)
    frames = [figure.draw(i) for i in gif_frames(len(run.posterior["steps"]))]
    figure.close()
    durations = [GIF_FRAME_MS] * (len(frames) - 1) + [GIF_LAST_FRAME_MS]
    rundir.write_atomic(gif, lambda p: iio.imwrite(
        p, np.stack(frames), duration=durations if len(frames) > 1 else durations[0], loop=0))


# The results table.

def mean_metric(runs: list, key: str) -> float | None:
    values = [run.metrics[key] for run in runs if key in run.metrics]
    return float(np.mean(values)) if values else None


def result_row(model: str, runs: list) -> dict:
    log_px = [run.metrics["log_px"] for run in runs]
    row = {key: mean_metric(runs, key) for key in RESULT_COLUMNS[3:]}
    row.update(model=MODEL_LABELS[model], dataset=runs[0].config["dataset"],
               seeds=" ".join(str(run.config["seed"]) for run in runs),
               log_px_min=min(log_px), log_px_max=max(log_px))
    return row


def markdown_table(rows: list) -> str:
    def number(value, digits=4):
        return "" if value is None else f"{value:.{digits}f}"

    lines = ["| model | exact log p(x) | optimum | true ELBO | ELBO estimated by T "
             "| posterior gap | training time (s) | steps/s | seeds |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        spread = (f" ({number(r['log_px_min'])} to {number(r['log_px_max'])})"
                  if len(r["seeds"].split()) > 1 else "")
        lines.append(f"| {r['model']} | {number(r['log_px'])}{spread} "
                     f"| {number(r['optimum_log_px'])} | {number(r['elbo'])} "
                     f"| {number(r['elbo_estimated_by_T'])} | {number(r['posterior_gap'])} "
                     f"| {number(r['train_seconds'], 1)} | {number(r['steps_per_second'], 0)} "
                     f"| {r['seeds']} |")
    return "\n".join(lines) + "\n"


def write_results(groups: dict, csv_path: Path, markdown_path: Path) -> str:
    rows = [result_row(model, runs) for model, runs in groups.items()]
    rundir.write_csv(csv_path, RESULT_COLUMNS, rows)
    table = markdown_table(rows)
    text = (f"# VAE vs AVB on {rows[0]['dataset']}\n\nMean over seeds (min to max in "
            "brackets); log-likelihoods in nats per data point.\n\n" + table)
    rundir.write_atomic(markdown_path, lambda p: p.write_text(text))
    return table


# Putting it together.

def compare(config: CompareConfig) -> list:
    """Checks (and where missing trains) the runs, writes the figures and tables into the
    output directory, prints the table, and returns the paths written."""
    groups = group_by_model(gather_runs(config))
    dataset = next(iter(groups.values()))[0].config["dataset"]
    out = Path(config.out or Path(config.runs_root) / f"compare-{dataset}")
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "metrics.png"]
    plot_metrics(groups, config.x_axis, paths[0])
    for model, runs in groups.items():
        latent = [out / f"latent-{model}.png", out / f"latent-{model}.gif"]
        plot_latent(runs[0], *latent)
        paths += latent
    paths += [out / "results.md", out / "results.csv"]
    print(write_results(groups, paths[-1], paths[-2]))
    print("\n".join(f"wrote {path}" for path in paths))
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASET_NAMES, default=None,
                        help="data set whose runs to compare (default: 4px; with --runs, the "
                             "one the runs share, which must then be this one if given)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED",
                        help="seeds of the runs <runs-root>/<model>-<dataset>-seed<SEED> of "
                             "each model; several are shown as a mean with a min-max band "
                             "(default: 0)")
    source.add_argument("--runs", nargs="+", metavar="DIR", default=[],
                        help="run directories to compare instead, of one data set; none is "
                             "trained (default: found by --seeds)")
    parser.add_argument("--runs-root", default="runs", metavar="DIR",
                        help="directory holding the runs found by --seeds (default: runs)")
    parser.add_argument("--x-axis", choices=("steps", "seconds"), default="steps",
                        help="x axis of the metrics figure: training steps or wall-clock "
                             "seconds since training began (default: steps)")
    parser.add_argument("--train-steps", type=positive_int, default=None, metavar="N",
                        help="training steps for runs that are missing and so trained here "
                             "(default: the model's default); runs on disk are used as they are")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="directory for the figures and tables "
                             "(default: <runs-root>/compare-<dataset>)")
    return parser


def check_out(config: CompareConfig) -> None:
    """--out, or the runs root that holds the default output and the runs to train, can be
    written: checked before any run is trained."""
    for flag, path in (("--out", config.out),
                       ("--runs-root", None if config.runs else config.runs_root)):
        if path is not None:
            try:
                rundir.check_writable(Path(path), flag)
            except rundir.RunDirError as error:
                raise RunError(str(error))


def main(argv=None) -> None:
    parser = build_parser()
    config = CompareConfig(**vars(parser.parse_args(argv)))
    try:
        check_out(config)
        compare(config)
    except RunError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except Stopped as stopped:
        parser.exit(128 + stopped.signum, f"{parser.prog}: {stopped}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog}: interrupted; the runs on disk are complete or "
                         "resumable, and every file written is whole\n")


if __name__ == "__main__":
    main()

"""Sweep: many runs at once, each one Ray task, over models, data sets, seeds and a grid of
settings. Every run is an ordinary run directory, trained by the same path as train_*.py.

The runs land in --out (default runs/sweep-<name>), one directory per run named
<model>-<dataset>[-<setting>=<value>...]-seed<seed>, beside summary.csv and summary.md (one
row per run), scaling.png (when more than one data set is swept) and robustness-<model>.png
(when a grid is swept). Running the same command again trains only what is missing or
unfinished; with nothing left to train, Ray is not started.
"""

import argparse
import dataclasses
import itertools
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import registry
import rundir
from configs import (OneLineErrorParser, dataset_name, dataset_side, parse_setting,
                     positive_int)
from rundir import RunDirError

ROOT = Path(__file__).resolve().parent
SWEPT_BY_OWN_FLAG = ("dataset", "seed", "out")   # not --grid settings
FAILURES_FILE = "failed.json"
TIMING_FILE = "timing.json"
CANCEL_WAIT_SECONDS = 120     # longest wait for cancelled runs to save before Ray stops
SUMMARY_METRICS = ("log_px", "optimum_log_px", "elbo", "elbo_converged", rundir.CRITIC_ELBO,
                   "posterior_gap", "train_seconds")


@dataclass
class Sweep:
    """What to sweep. A grid setting applies to the models whose config has it (and that
    it does not select, as a variant setting would); the other models run without it."""

    models: tuple = ()                 # registered names; () means every registered model
    datasets: tuple = ("4px", "9px")
    seeds: tuple = (0, 1, 2)
    grid: dict = field(default_factory=dict)   # setting -> tuple of values
    steps: int | None = None           # None: each run's default
    cpus_per_run: int = 1
    out: str = ""                      # "": runs/sweep-<default_name()>
    address: str | None = None         # None: start a local Ray instance
    retry_failed: bool = False

    def model_names(self) -> tuple:
        return tuple(self.models) or registry.names()

    def default_name(self) -> str:
        return "-".join([*self.datasets, *self.grid])

    def out_dir(self) -> Path:
        return Path(self.out or f"runs/sweep-{self.default_name()}")


class Plan(NamedTuple):
    """One run of the sweep."""
    model: str
    dataset: str
    seed: int
    settings: tuple          # ((setting, value), ...): the grid values this run takes
    path: Path

    def config(self, steps: int | None):
        settings = {**({"steps": steps} if steps else {}), **dict(self.settings)}
        return registry.get(self.model).default_config(
            dataset=self.dataset, seed=self.seed, out=str(self.path), **settings)

    def describe(self) -> str:
        values = " ".join(f"{k}={v}" for k, v in self.settings)
        return " ".join(filter(None, [self.model, self.dataset, values, f"seed {self.seed}"]))


class Stopped(Exception):
    """The sweep was interrupted; what its runs saved can be resumed."""


# The grid: parsing and checking against the models' settings.

def grid_item(text: str) -> tuple:
    """--grid SETTING=V1,V2,...: (setting, [texts]); the values are checked later, against
    the settings of the models swept."""
    name, equals, values = text.partition("=")
    texts = [v for v in values.split(",") if v]
    if not equals or not name or not texts:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SETTING=VALUE[,VALUE...]")
    return name.replace("-", "_"), texts


def applies(name: str, model: str) -> bool:
    """Whether a grid setting is one of the model's settings (and not one that selects it)."""
    spec = registry.get(model)
    fields = {f.name for f in dataclasses.fields(spec.config_class)}
    return name in fields and name not in spec.variant_settings


def parse_grid(items: list, models: tuple) -> dict:
    """setting -> tuple of values, each read as the setting's flag reads it; ValueError with a
    one-line message for a setting no model has or a value its flag refuses."""
    grid = {}
    for name, texts in items:
        owners = [m for m in models if applies(name, m)]
        if name in SWEPT_BY_OWN_FLAG or not owners:
            raise ValueError(f"--grid {name}: not a setting of {', '.join(models)}"
                             + (f" (use --{name}s)" if name in ("dataset", "seed") else ""))
        config_class = registry.get(owners[0]).config_class
        f = next(f for f in dataclasses.fields(config_class) if f.name == name)
        try:
            grid[name] = tuple(dict.fromkeys(parse_setting(f, t) for t in texts))
        except argparse.ArgumentTypeError as error:
            raise ValueError(f"--grid {name}: {error}")
    return grid


def check_models(sweep: Sweep) -> None:
    """ValueError if grid values turn a model into another (a variant of it)."""
    for plan in plan_runs(sweep):
        other = plan.config(sweep.steps).model_name()
        if other != plan.model:
            values = " ".join(f"{k}={v}" for k, v in plan.settings)
            raise ValueError(f"--grid {values} makes {plan.model} the model {other}; sweep "
                             f"--models {other} for it")


def skipped_settings(sweep: Sweep) -> list:
    """'setting: not a setting of MODEL' for each grid setting a model runs without."""
    return [f"--grid {name} does not apply to {registry.get(model).label}; its runs use "
            "its default" for name in sweep.grid for model in sweep.model_names()
            if not applies(name, model)]


# The runs: which exist, which are finished, which to train.

def run_name(model: str, dataset: str, settings: tuple, seed: int) -> str:
    return "-".join([model, dataset, *(f"{k}={v}" for k, v in settings), f"seed{seed}"])


def plan_runs(sweep: Sweep) -> list:
    plans = []
    for model in sweep.model_names():
        names = [name for name in sweep.grid if applies(name, model)]
        for dataset, values in itertools.product(
                sweep.datasets, itertools.product(*(sweep.grid[n] for n in names))):
            settings = tuple(zip(names, values))
            plans += [Plan(model, dataset, seed, settings, sweep.out_dir() /
                           run_name(model, dataset, settings, seed)) for seed in sweep.seeds]
    return plans


def saved_run_state(plan: Plan, config) -> str:
    """'new', 'finished' or 'unfinished' for the run directory of a plan; RunDirError if it
    holds a run made with other settings."""
    path = plan.path
    if not rundir.is_run_dir(path) or not (path / rundir.STATE_FILE).is_file():
        return "new"
    saved = rundir.read_config(path / rundir.CONFIG_FILE)
    changed = rundir.changed_settings(saved, {"model": plan.model,
                                              **dataclasses.asdict(config)})
    done = rundir.saved_step(path)
    if changed or done > config.steps:
        reason = "; ".join(changed) or f"steps: {done} -> {config.steps}"
        raise RunDirError(f"{path} holds a run made with other settings ({reason}); use "
                          "another --out for a sweep with these settings")
    finished = (path / rundir.METRICS_FILE).is_file() and done == config.steps
    return "finished" if finished else "unfinished"


def read_failures(out: Path) -> dict:
    path = out / FAILURES_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def pending_runs(sweep: Sweep, plans: list) -> list:
    """(plan, config, resume) for each run to train, all checked before any is trained."""
    failures = {} if sweep.retry_failed else read_failures(sweep.out_dir())
    pending = []
    for plan in plans:
        config = plan.config(sweep.steps)
        state = saved_run_state(plan, config)
        if state != "finished" and plan.path.name not in failures:
            pending.append((plan, config, state == "unfinished"))
    return pending


# One run, in a Ray worker.

def set_threads(cpus: int) -> None:
    """TensorFlow's thread pools sized to the CPUs Ray gave the task; set once per worker
    process, before TensorFlow runs its first op."""
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() != cpus:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cpus)
            tf.config.threading.set_inter_op_parallelism_threads(cpus)
        except RuntimeError:
            pass        # a reused worker whose TensorFlow already runs: its pools stay


def train_one(config, resume: bool, cpus: int, root: str) -> dict:
    """Trains one run with training.train, as the scripts do. Returns its status, error and
    wall seconds; raises nothing but a cancellation outside the training loop."""
    if root not in sys.path:
        sys.path.insert(0, root)
    set_threads(cpus)
    import training

    start, status, error = time.perf_counter(), "finished", ""
    try:
        training.train(config, progress=False, resume=resume)
    except training.Interrupted:
        status = "interrupted"
    except training.NonFiniteError as failure:
        status, error = "failed", str(failure)
    except Exception as failure:
        status, error = "failed", rundir.first_line(failure)
    return {"status": status, "error": error, "seconds": time.perf_counter() - start}


# Running the tasks.

def interrupt(signum, frame):
    raise KeyboardInterrupt


def start_ray(sweep: Sweep):
    import logging

    import ray

    if sweep.address:
        ray.init(address=sweep.address, log_to_driver=False, logging_level=logging.ERROR)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
    signal.signal(signal.SIGTERM, interrupt)    # a job runner's stop, handled as Ctrl-C
    return ray


def progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="run", desc="sweep", disable=not sys.stderr.isatty(),
                dynamic_ncols=True)


def run_line(plan: Plan, outcome: dict) -> str:
    """One line for a run that ended: its metrics, or why it failed."""
    head = f"{plan.describe()}: "
    if outcome["status"] != "finished":
        return head + outcome["status"] + (f": {outcome['error']}" if outcome["error"] else "")
    m = rundir.final_metrics(plan.path)
    return head + (f"log p(x) {m['log_px']:.4f} (optimum {m['optimum_log_px']:.4f}), "
                   f"true ELBO {m['elbo']:.4f}, {outcome['seconds']:.1f} s")


def task_outcome(ray, ref) -> dict:
    """What train_one returned, or a failure if its worker died (killed, out of memory)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as error:
        return {"status": "failed", "error": rundir.first_line(error), "seconds": 0.0}


def collect(ray, refs: dict, bar, outcomes: dict) -> None:
    """Waits for every task, a line per run as it ends, into outcomes: run name -> outcome."""
    left = list(refs)
    while left:
        done, left = ray.wait(left, num_returns=1)
        plan = refs[done[0]]
        outcomes[plan.path.name] = outcome = task_outcome(ray, done[0])
        bar.write(run_line(plan, outcome), file=sys.stdout)
        bar.update(1)


def cancel(ray, refs: dict) -> None:
    """Cancels the tasks and waits for the running ones to save, as a run does on SIGINT."""
    for ref in refs:
        ray.cancel(ref)
    ray.wait(list(refs), num_returns=len(refs), timeout=CANCEL_WAIT_SECONDS)


class RayUse(NamedTuple):
    startup: float          # seconds to start (or join) Ray
    slots: int              # runs that can train at once


def execute(sweep: Sweep, pending: list, outcomes: dict) -> RayUse:
    """Trains the pending runs as Ray tasks, their outcomes into outcomes (run name ->
    outcome)."""
    start = time.perf_counter()
    ray = start_ray(sweep)
    use = RayUse(time.perf_counter() - start, min(len(pending), max(1, int(
        ray.cluster_resources().get("CPU", 1) // sweep.cpus_per_run))))
    task = ray.remote(num_cpus=sweep.cpus_per_run, max_retries=0)(train_one)
    refs = {task.remote(config, resume, sweep.cpus_per_run, str(ROOT)): plan
            for plan, config, resume in pending}
    bar = progress_bar(len(refs))
    try:
        collect(ray, refs, bar, outcomes)
        return use
    except KeyboardInterrupt:
        cancel(ray, refs)
        raise Stopped("interrupted: the runs saved what they had trained")
    finally:
        bar.close()
        ray.shutdown()


def record_failures(out: Path, outcomes: dict) -> None:
    failures = read_failures(out)
    failures.update({name: o["error"] for name, o in outcomes.items() if o["status"] == "failed"})
    for name in [n for n, o in outcomes.items() if o["status"] == "finished"]:
        failures.pop(name, None)
    if failures:
        rundir.write_json(out / FAILURES_FILE, failures)


# The summary.

def summary_row(plan: Plan, grid: dict, failures: dict) -> dict:
    metrics = rundir.final_metrics(plan.path)
    settings = dict(plan.settings)
    status = ("finished" if metrics else "failed" if plan.path.name in failures
              else "unfinished")
    return {"model": plan.model, "dataset": plan.dataset, "n_points": dataset_side(
        plan.dataset) ** 2, "seed": plan.seed, **{k: settings.get(k, "") for k in grid},
        **{k: metrics.get(k, "") for k in SUMMARY_METRICS}, "status": status,
        "error": failures.get(plan.path.name, "") if status == "failed" else "",
        "run_dir": str(plan.path)}


def number(value, digits: int = 4) -> str:
    if value == "" or value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.{digits}f}"


def markdown_summary(rows: list, grid: dict, timing: str) -> str:
    head = ["model", "data set", "seed", *grid, "exact log p(x)", "optimum", "true ELBO",
            "converged", "ELBO estimated by T", "posterior gap", "training time (s)",
            "status", "run directory"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [registry.get(r["model"]).label, r["dataset"], str(r["seed"]),
                 *(str(r[k]) for k in grid),
                 *(number(r[k]) for k in SUMMARY_METRICS[:-1]),
                 number(r["train_seconds"], 1),
                 r["status"] + (f": {r['error']}" if r["error"] else ""), r["run_dir"]]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return (f"# Sweep: {len(rows)} runs\n\n{timing}\n\nLog-likelihoods in nats per data "
            "point; the posterior gap is log p(x) - true ELBO.\n\n" + "\n".join(lines) + "\n")


def write_summary(sweep: Sweep, plans: list, timing: str) -> list:
    """summary.csv, summary.md and the figures; returns the paths written."""
    out = sweep.out_dir()
    failures = read_failures(out)
    rows = [summary_row(plan, sweep.grid, failures) for plan in plans]
    columns = list(rows[0])
    rundir.write_csv(out / "summary.csv", columns, rows)
    text = markdown_summary(rows, sweep.grid, timing)
    rundir.write_atomic(out / "summary.md", lambda p: p.write_text(text))
    return [out / "summary.csv", out / "summary.md", *write_figures(sweep, rows)]


# The figures.

def figure_value(row: dict, key: str) -> float:
    """A finished run's value for a figure; log_px_gap is log p(x) - optimum."""
    if key == "log_px_gap":
        return row["log_px"] - row["optimum_log_px"]
    return row[key]


def seed_stats(rows: list, key: str) -> tuple:
    """(mean, min, max) over the finished runs among rows; NaNs when none finished."""
    values = [figure_value(r, key) for r in rows if r["status"] == "finished"]
    return (sum(values) / len(values), min(values), max(values)) if values else (math.nan,) * 3


def groups_of(rows: list, key) -> dict:
    groups = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


SCALING_PANELS = {"log_px_gap": "exact log p(x) - optimum", "posterior_gap":
                  "posterior gap: log p(x) - true ELBO"}
ROBUSTNESS_PANELS = {"elbo": "true ELBO", "log_px": "exact log p(x)"}
LINE_STYLES = ("-", "--", ":", "-.")
PANEL_INCHES = 4.5


def plot_scaling(rows: list, grid: dict, path: Path) -> Path:
    """Per model (and grid values), log p(x) - optimum and the posterior gap against the
    number of data points: mean over seeds, min-max band."""
    import plots

    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES, PANEL_INCHES))
    sizes = sorted({r["n_points"] for r in rows})
    groups = groups_of(rows, lambda r: (r["model"], tuple(r[k] for k in grid)))
    drawn = []        # models drawn so far: a model's grid values differ in line style
    for (model, values), group in groups.items():
        drawn.append(model)
        label = " ".join([registry.get(model).label, *(f"{k}={v}" for k, v in
                                                        zip(grid, values) if v != "")])
        ns = sorted({r["n_points"] for r in group})
        for ax, key in zip(axes, SCALING_PANELS):
            mean, low, high = zip(*(seed_stats([r for r in group if r["n_points"] == n], key)
                                    for n in ns))
            style = dict(color=registry.colour(model), linestyle=LINE_STYLES[
                (drawn.count(model) - 1) % len(LINE_STYLES)])
            ax.plot(ns, mean, marker="o", label=label, **style)
            ax.fill_between(ns, low, high, alpha=0.2, color=style["color"])
    for ax, title in zip(axes, SCALING_PANELS.values()):
        ax.set(xscale="log", xlabel="data points N (Npx)", title=title)
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.axhline(0.0, color="black", linewidth=0.8, linestyle=":")
    axes[0].legend(fontsize="small")
    fig.suptitle("Scaling with the data set: mean over seeds, band from min to max")
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    import plots

    fig.tight_layout()
    rundir.write_atomic(path, lambda p: fig.savefig(p, dpi=plots.PNG_DPI, format="png"))
    plots.pyplot().close(fig)
    return path


def plot_robustness(model: str, rows: list, names: list, path: Path) -> Path:
    """The true ELBO and log p(x) over the grid, one row of panels per data set (and per
    value of any grid settings past the first two): a line with a seed band for one
    setting, a heat map for two. Failed runs are marked x."""
    import plots

    plt = plots.pyplot()
    panels = groups_of(rows, lambda r: (r["dataset"], *(r[k] for k in names[2:])))
    fig, axes = plt.subplots(len(panels), 2, squeeze=False,
                             figsize=(2 * PANEL_INCHES, PANEL_INCHES * len(panels)))
    draw = robustness_line if len(names) == 1 else robustness_map
    for ax_row, (key, group) in zip(axes, panels.items()):
        for ax, (metric, title) in zip(ax_row, ROBUSTNESS_PANELS.items()):
            draw(ax, group, names, metric)
            rest = " ".join(f"{k}={v}" for k, v in zip(names[2:], key[1:]))
            ax.set_title(" ".join(filter(None, [key[0], rest, title])))
    fig.suptitle(f"{registry.get(model).label}: robustness over {', '.join(names)} "
                 "\n(mean over seeds, min to max; x: a run failed)")
    return save_figure(fig, path)


def grid_values(rows: list, name: str) -> list:
    return sorted({r[name] for r in rows}, key=lambda v: (isinstance(v, str), v))


def robustness_line(ax, rows: list, names: list, metric: str) -> None:
    name = names[0]
    values = grid_values(rows, name)
    stats = [seed_stats([r for r in rows if r[name] == v], metric) for v in values]
    mean, low, high = zip(*stats)
    positions = range(len(values))
    ax.plot(positions, mean, marker="o", color=registry.colour(rows[0]["model"]))
    ax.fill_between(positions, low, high, alpha=0.2, color=registry.colour(rows[0]["model"]))
    for i, v in enumerate(values):
        failed = sum(r[name] == v and r["status"] != "finished" for r in rows)
        if failed:
            ax.plot(i, 0.02, "x", color="red", markersize=12, transform=ax.get_xaxis_transform())
    if metric == "log_px":
        ax.axhline(rows[0]["optimum_log_px"] or -math.log(rows[0]["n_points"]), color="black",
                   linestyle=":", linewidth=0.8, label="optimum")
    ax.set_xticks(list(positions), [str(v) for v in values])
    ax.set_xlabel(name)


def robustness_map(ax, rows: list, names: list, metric: str) -> None:
    import numpy as np

    first, second = (grid_values(rows, n) for n in names[:2])
    cells = np.full((len(second), len(first)), np.nan)
    for i, b in enumerate(second):
        for j, a in enumerate(first):
            cell = [r for r in rows if r[names[0]] == a and r[names[1]] == b]
            cells[i, j], low, high = seed_stats(cell, metric)
            failed = sum(r["status"] != "finished" for r in cell)
            spread = f"\n{low:.2f} to {high:.2f}" if len(cell) - failed > 1 else ""
            text = "x failed" if failed == len(cell) else f"{cells[i, j]:.3f}{spread}" + (
                f"\n{failed} x failed" if failed else "")
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="red" if failed else "black",
                    bbox=dict(facecolor="white", alpha=0.7, edgecolor="none"))
    image = ax.imshow(np.ma.masked_invalid(cells), cmap="viridis", aspect="auto")
    ax.figure.colorbar(image, ax=ax)
    ax.set_xticks(range(len(first)), [str(v) for v in first])
    ax.set_yticks(range(len(second)), [str(v) for v in second])
    ax.set(xlabel=names[0], ylabel=names[1])


def write_figures(sweep: Sweep, rows: list) -> list:
    """scaling.png when more than one data set is swept, robustness-<model>.png for each
    model a grid setting applies to."""
    out, paths = sweep.out_dir(), []
    finished = [r for r in rows if r["status"] == "finished"]
    if len(sweep.datasets) > 1 and finished:
        paths.append(plot_scaling(finished, sweep.grid, out / "scaling.png"))
    for model in sweep.model_names():
        names = [name for name in sweep.grid if applies(name, model)]
        own = [r for r in rows if r["model"] == model]
        if names and any(r["status"] == "finished" for r in own):
            paths.append(plot_robustness(model, own, names, out / f"robustness-{model}.png"))
    return paths


# Putting it together.

class SweepResult(NamedTuple):
    outcomes: dict          # run directory name -> outcome, for the runs trained now
    seconds: float          # wall time of this invocation
    ray_startup: float      # seconds to start (or join) Ray; 0 when nothing was trained
    paths: list             # the summary and figures written


def timing_text(out: Path, outcomes: dict, seconds: float, use: RayUse) -> str:
    """The timing of this invocation, or, when it trained nothing, of the last one that
    trained (kept in TIMING_FILE)."""
    if outcomes:
        run_seconds = sum(o["seconds"] for o in outcomes.values())
        rundir.write_json(out / TIMING_FILE, {
            "runs": len(outcomes), "seconds": seconds, "ray_startup": use.startup,
            "slots": use.slots, "run_seconds": run_seconds,
            "busy_fraction": run_seconds / (use.slots * seconds)})
    if not (out / TIMING_FILE).is_file():
        return "No run was trained by this sweep command."
    t = json.loads((out / TIMING_FILE).read_text())
    return (f"The last invocation that trained took {t['seconds']:.1f} s of wall time for "
            f"{t['runs']} runs, {t['slots']} at a time (Ray start-up {t['ray_startup']:.1f} "
            f"s). The runs took {t['run_seconds']:.1f} s one after another (each timed in "
            f"its task, TensorFlow's import to the final evaluation): the {t['slots']} "
            f"slots were busy with runs {100 * t['busy_fraction']:.0f} % of the wall time.")


def announce(sweep: Sweep, plans: list, pending: list) -> None:
    resumed = sum(resume for _, _, resume in pending)
    print(f"{len(plans)} runs in {sweep.out_dir()}: {len(plans) - len(pending)} finished "
          f"(or failed) already, {resumed} to resume, {len(pending) - resumed} to train",
          flush=True)
    for line in skipped_settings(sweep):
        print(line)


def run_sweep(sweep: Sweep) -> SweepResult:
    """Trains every run of the sweep that is missing or unfinished (Ray starts only if there
    is one), then writes the summary and figures. Raises RunDirError before training if a
    run directory holds a run with other settings, and Stopped when interrupted."""
    start = time.perf_counter()
    rundir.check_writable(sweep.out_dir())
    plans = plan_runs(sweep)
    pending = pending_runs(sweep, plans)
    announce(sweep, plans, pending)
    outcomes, use = {}, RayUse(0.0, 0)
    try:
        if pending:
            use = execute(sweep, pending, outcomes)
    finally:
        record_failures(sweep.out_dir(), outcomes)
    seconds = time.perf_counter() - start
    paths = write_summary(sweep, plans, timing_text(sweep.out_dir(), outcomes, seconds, use))
    return SweepResult(outcomes, seconds, use.startup, paths)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=registry.names(), metavar="MODEL",
                        help=f"models to sweep, of: {', '.join(registry.names())} "
                             "(default: all)")
    parser.add_argument("--datasets", nargs="+", type=dataset_name, default=["4px", "9px"],
                        metavar="Npx", help="data sets, each Npx with N = k * k >= 4 "
                                            "(default: 4px 9px)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="SEED",
                        help="seeds of every run (default: 0 1 2)")
    parser.add_argument("--grid", action="append", type=grid_item, default=[],
                        metavar="SETTING=V1,V2,...",
                        help="a setting (named as the training scripts' flag, e.g. "
                             "adversary_learning_rate or adversary-learning-rate) and its "
                             "values; repeat for a grid of several settings. A model whose "
                             "config lacks it runs with its default instead")
    parser.add_argument("--steps", type=positive_int, default=None, metavar="N",
                        help="training steps of every run (default: each run's default)")
    parser.add_argument("--cpus-per-run", type=positive_int, default=1, metavar="N",
                        help="CPUs Ray reserves for each run, and TensorFlow's thread "
                             "pools in it (default: 1)")
    parser.add_argument("--out", default="", metavar="DIR",
                        help="directory of the runs, summary and figures (default: "
                             "runs/sweep-<data sets and grid settings joined by ->)")
    parser.add_argument("--address", default=None, metavar="ADDRESS",
                        help="join this Ray cluster (e.g. auto, or HOST:6379) instead of "
                             "starting a local instance with every CPU of this machine; "
                             "--out must then be on a file system all nodes share")
    parser.add_argument("--retry-failed", action="store_true",
                        help="train again the runs that failed before (default: keep them "
                             "as failed in the summary)")
    return parser


def sweep_from_args(parser, argv) -> Sweep:
    args = vars(parser.parse_args(argv))
    models = tuple(dict.fromkeys(args.pop("models") or registry.names()))
    try:
        grid = parse_grid(args.pop("grid"), models)
        sweep = Sweep(models=models, grid=grid, datasets=tuple(dict.fromkeys(
            args.pop("datasets"))), seeds=tuple(dict.fromkeys(args.pop("seeds"))), **args)
        check_models(sweep)
    except ValueError as error:
        parser.error(str(error))
    return sweep


def main(argv=None) -> None:
    parser = build_parser()
    sweep = sweep_from_args(parser, argv)
    try:
        result = run_sweep(sweep)
    except RunDirError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except (Stopped, KeyboardInterrupt) as stopped:
        parser.exit(130, f"{parser.prog}: {stopped or 'interrupted'}; run the same command "
                         "again to resume\n")
    print("\n".join(f"wrote {path}" for path in result.paths))
    failed = sum(o["status"] != "finished" for o in result.outcomes.values())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

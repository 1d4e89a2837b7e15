"""Compare models on one data set: their metrics over training, their latent spaces (a picture
and an animation per model) and a table of the final evaluation.

The runs are <runs-root>/<model>-<dataset>-seed<seed> for each model and seed, trained first
with default settings where missing, or the directories given by --runs. Written into --out:
metrics.png, latent-<model>.png and latent-<model>.gif per model (and where D = 2,
posterior-<model>.png: the exact posterior beside q, and for the AVBs critic-<model>.png: the
adversary's error), results.md and results.csv.
On real images (digits, mnist5k, mnist) the runs are evaluated on held-out test images, and the
table gives log p(x) on as many training images beside them.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

import data
from figures import plots
import registry
from harness import exits, memory, rundir
from harness import startup
from configs import (QUADRATURE_DIM, OneLineErrorParser, dataset_name, latent_size,
                     positive_int, seed_value)
from figures.tables import number, table_lines, train_test_gap
from harness.rundir import RunDirError
from harness.runstart import resumed_config

RESULT_COLUMNS = ("model", "dataset", "latent_dim", "seeds", "log_px_method", "log_px",
                  "log_px_min", "log_px_max", "log_px_stderr", "bdmc_gap", "bdmc_gap_stderr",
                  "log_px_image_stderr",
                  "train_log_px", "train_test_gap", "valid_log_px", "best_step", "optimum_log_px",
                  "elbo", "elbo_converged", "elbo_lower_bound", rundir.CRITIC_ELBO,
                  "posterior_gap", "train_seconds", "steps_per_second")
FIRST_MEAN_COLUMN = RESULT_COLUMNS.index("log_px")


TRAINED_HERE = (rundir.NEW, rundir.UNSAVED, rundir.UNFINISHED)   # run states compare.py trains


class Failed(Exception):
    """Training a missing run failed (NaN or Inf, no memory, a file that cannot be written);
    the message says what the run kept. Exits as a failure (harness/exits.py)."""


@dataclass
class CompareConfig:
    dataset: str | None = None         # None: 4px, or with `runs` the data set they share
    latent_dim: int = 2                # of the runs --seeds finds and of those trained here
    seeds: tuple = (0,)
    runs: tuple = ()                   # run directories; when given, seeds are not used
    models: tuple = ()                 # registered names; () means the default comparison
    runs_root: str = rundir.RUNS_ROOT
    x_axis: str = "steps"
    train_steps: int | None = None     # steps of the runs that must be trained; None: default
    out: str | None = None             # None: <runs_root>/compare-<dataset>
    data_file: str = ""                # of mnist runs trained here; "": the Keras file


class RunSpec(NamedTuple):
    """A run asked for; model, seed and latent dimension are known only when named by them."""
    path: Path
    model: str | None = None
    seed: int | None = None
    latent_dim: int | None = None


def default_models() -> tuple:
    return tuple(name for name in registry.names() if registry.get(name).compared_by_default)


# Finding, checking and training the runs.

def run_specs(config: CompareConfig) -> list:
    if config.runs:
        return [RunSpec(Path(path)) for path in config.runs]
    dataset = config.dataset or data.DEFAULT_DATASET
    seeds = dict.fromkeys(config.seeds)
    return [RunSpec(rundir.run_dir(registry.default_config(
                        model, dataset=dataset, seed=seed, latent_dim=config.latent_dim),
                        config.runs_root), model, seed, config.latent_dim)
            for model in config.models or default_models() for seed in seeds]


def check_asked(runs: list, specs: list, dataset: str | None) -> None:
    """Each run is of the model, seed and data set asked for, and all share one data set."""
    for run, spec in zip(runs, specs):
        asked = {"model": spec.model, "seed": spec.seed, "dataset": dataset,
                 "latent_dim": spec.latent_dim}
        for key, value in asked.items():
            if value is not None and run.config[key] != value:
                raise RunDirError(f"{run.path} holds a run with {key} {run.config[key]}, "
                                  f"not {value}")
    datasets = {run.config["dataset"] for run in runs}
    if len(datasets) > 1:
        listing = ", ".join(f"{run.path} ({run.config['dataset']})" for run in runs)
        raise RunDirError(f"cannot compare runs of different data sets: {listing}")


def to_train(spec: RunSpec, state: str, dataset: str, steps: int | None,
             data_file: str = "") -> tuple:
    """(config, resume) for a run of the asked model and seed that is missing or unfinished
    (its rundir.run_state)."""
    if state == rundir.UNFINISHED:
        try:
            return resumed_config(spec.path, {}, spec.model), True
        except RunDirError as error:
            raise RunDirError(f"{spec.path} cannot be resumed ({error})")
    settings = {"dataset": dataset, "seed": spec.seed, "latent_dim": spec.latent_dim,
                "out": str(spec.path)}
    settings.update({"steps": steps} if steps else {})
    settings.update({"data_file": data_file} if data_file else {})
    return registry.default_config(spec.model, **settings), False


def train_run(spec: RunSpec, config, resume: bool) -> None:
    from harness import training   # here: --help and usage errors never load TensorFlow

    print(f"{spec.path} is {'unfinished: resuming' if resume else 'missing: training'} "
          f"{registry.get(spec.model).run_label(config)} on {config.dataset}, "
          f"seed {config.seed}, {config.steps} steps"
          f"{'' if resume else ', default settings'}", flush=True)
    try:
        training.train(config, resume=resume)
    except rundir.WriteFailed as error:
        raise Failed(f"training {spec.path} failed: {error}; {rundir.kept_save(spec.path)}")
    except exits.FAILURES as error:
        raise Failed(f"training {spec.path} failed: {error}")
    except exits.Interrupted as stopped:
        raise exits.Interrupted(f"{stopped}; or run compare.py again to resume it",
                                stopped.signum)


def gather_runs(config: CompareConfig) -> list:
    """The runs to compare, all checked before any missing or unfinished one is trained; a run
    that another process is writing is in progress, and neither read nor trained here."""
    specs = run_specs(config)
    for spec in specs:
        rundir.check_not_in_progress(spec.path)
    states = {spec: rundir.run_state(spec.path, model=spec.model).kind
              for spec in specs if spec.model is not None}
    pending = {spec: state for spec, state in states.items() if state in TRAINED_HERE}
    present = [spec for spec in specs if spec not in pending]
    runs = [rundir.read_run(spec.path) for spec in present]
    check_asked(runs, present, config.dataset)
    dataset = config.dataset or (runs[0].config["dataset"] if runs else data.DEFAULT_DATASET)
    trained = {spec: to_train(spec, state, dataset, config.train_steps, config.data_file)
               for spec, state in pending.items()}
    for data_settings in {c.data_settings for c, _ in trained.values()}:
        try:
            memory.check_data(*data_settings)
        except ValueError as error:
            raise RunDirError(str(error))
    startup.import_tensorflow()
    for run in runs:
        rundir.check_networks(run)
    for spec, (run_config, resume) in trained.items():
        train_run(spec, run_config, resume)
    return runs + [rundir.read_run(spec.path) for spec in pending]


def group_by_model(runs: list) -> dict:
    """model name -> its runs in seed order, models in registry order. The runs of one model
    share one seed band, so they must differ in nothing but the seed (settings a run's
    config.json lacks, being older than the setting, are not compared)."""
    groups = {model: sorted((run for run in runs if run.config["model"] == model),
                            key=lambda run: run.config["seed"])
              for model in registry.names() if any(r.config["model"] == model for r in runs)}
    for model, group in groups.items():
        first = rundir.settings_of(group[0])
        for run in group[1:]:
            other = rundir.settings_of(run)
            differ = [f"{key}: {first.get(key)!r} in {group[0].path}, {other.get(key)!r} in "
                      f"{run.path}" for key in first if key in other
                      and first[key] != other[key]]
            if differ:
                label = registry.get(model).run_label(group[0].config)
                raise RunDirError(f"runs of {label} differ in more than the seed, so they "
                                  f"cannot be averaged: {'; '.join(differ)}")
    return groups


# The results table.

def mean_of(values: list) -> float | None:
    """The mean of the values that are not None; None where none is."""
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def mean_metric(runs: list, key: str) -> float | None:
    return mean_of([run.metrics.get(key) for run in runs])


def result_row(model: str, runs: list) -> dict:
    log_px = [run.metrics["log_px"] for run in runs]
    row = {key: mean_metric(runs, key) for key in RESULT_COLUMNS[FIRST_MEAN_COLUMN:]}
    row.update(elbo_converged=all(rundir.elbo_converged(run.metrics) for run in runs),
               elbo_lower_bound=any(run.metrics.get("elbo_lower_bound") for run in runs),
               model=registry.get(model).run_label(runs[0].config),
               dataset=runs[0].config["dataset"], latent_dim=runs[0].config["latent_dim"],
               log_px_method=runs[0].metrics.get("log_px_method", "quadrature"),
               seeds=" ".join(str(run.config["seed"]) for run in runs),
               log_px_min=min(log_px), log_px_max=max(log_px),
               train_test_gap=mean_of([train_test_gap(run.metrics.get("train_log_px"),
                                                      run.metrics["log_px"]) for run in runs]))
    return row


def elbo_text(row: dict) -> str:
    """The true ELBO, or what it is: a lower bound (a semi-implicit q's), or when a
    nearest-neighbour estimate did not converge, an upper estimate."""
    text = f"{row['elbo']:.4f}"
    if row.get("elbo_lower_bound"):
        return f">= {text}" if row["elbo_converged"] else f">= {text} (bound not settled)"
    return text if row["elbo_converged"] else f"<= {text} (diverging)"


def log_px_text(row: dict) -> str:
    """The mean log p(x), its spread over seeds, and for AIS its standard error and the BDMC
    gap with its own standard error (runs from before it was recorded show none)."""
    text = number(row["log_px"])
    if len(row["seeds"].split()) > 1:
        text += f" ({number(row['log_px_min'])} to {number(row['log_px_max'])})"
    if row["log_px_method"] == "ais":
        gap_stderr = row["bdmc_gap_stderr"]
        text += (f" +- {number(row['log_px_stderr'])}, AIS, BDMC gap "
                 f"{number(row['bdmc_gap'])}"
                 + ("" if gap_stderr is None else f" +- {number(gap_stderr)}"))
    return text


def markdown_table(rows: list) -> str:
    """One row per model. Where the runs were evaluated on held-out test images, log p(x)
    and the ELBO are theirs, and log p(x) on as many training images stands beside them in
    place of the optimum (which is not known), with the train-test gap (the mean of the
    runs' own); where the runs chose their best step on a validation split, the validation
    figure there and that step (means over seeds) too."""
    held_out = any(r["train_log_px"] is not None for r in rows)
    validated = any(r["best_step"] is not None for r in rows)
    header = ["model", "D", f"{'test ' if held_out else ''}log p(x)",
              *(["training-subset log p(x)", "train-test gap"] if held_out else ["optimum"]),
              *(["validation log p(x)", "best step"] if validated else []), "true ELBO",
              "ELBO estimated by T", "posterior gap", "training time (s)", "steps/s", "seeds"]
    lines = table_lines(header, [
        [r["model"], r["latent_dim"], log_px_text(r),
         *([number(r["train_log_px"]), number(r["train_test_gap"])] if held_out
           else [number(r["optimum_log_px"])]),
         *([number(r["valid_log_px"]), number(r["best_step"], 0)] if validated else []),
         elbo_text(r), number(r[rundir.CRITIC_ELBO]),
         f"{'' if r['elbo_converged'] else '>= '}{number(r['posterior_gap'])}",
         number(r["train_seconds"], 1), number(r["steps_per_second"], 0), r["seeds"]]
        for r in rows], "lrrr" + "r" * held_out + "rr" * validated + "rrrrrl")
    return "\n".join(lines) + "\n"


def write_results(groups: dict, csv_path: Path, markdown_path: Path) -> str:
    rows = [result_row(model, runs) for model, runs in groups.items()]
    rundir.write_csv(csv_path, RESULT_COLUMNS, rows)
    table = markdown_table(rows)
    first = next(iter(groups.values()))[0]
    data_text = (f"Evaluated on {first.metrics['n_evaluated']} held-out test images of "
                 f"{first.config['dataset']} ({first.config['binarisation']} binarisation; "
                 f"split {first.config['split']}), and log p(x) on as many training images. "
                 if first.config["n_test"] else "")
    text = (f"# {' vs '.join(row['model'] for row in rows)} on {rows[0]['dataset']}\n\n"
            + data_text +
            "Mean over seeds (min to max in brackets); log-likelihoods in nats per data "
            "point; D is the latent dimension. log p(x) is exact (quadrature) unless marked AIS: "
            "then it is a stochastic lower bound, given with its standard error over the "
            "chains and the BDMC gap (upper minus lower bound on data simulated from the "
            "model), which bounds AIS's own error there. A true ELBO marked diverging is an "
            "upper estimate: its nearest-neighbour entropy estimate kept falling as the sample "
            "grew, so q has no density there and the ELBO may be minus infinity. One marked >= "
            "is a lower bound: a semi-implicit q's, from its log q estimated by mixing draws."
            "\n\n" + table)
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

    def drawing(*names) -> None:
        print(f"drawing {' and '.join(names)} in {out}", flush=True)
    drawing(paths[0].name)
    plots.plot_metrics(groups, config.x_axis, paths[0])
    for model, runs in groups.items():
        latent = [out / f"latent-{model}.png", out / f"latent-{model}.gif"]
        exact = exact_posterior_of(runs[0])
        drawing(*(p.name for p in latent))
        plots.plot_latent(runs[0], *latent, exact)
        paths += latent
        if exact is not None:
            paths.append(out / f"posterior-{model}.png")
            drawing(paths[-1].name)
            plots.plot_posteriors(runs[0], exact, paths[-1])
        critic = rundir.read_critic(runs[0].path)
        if critic is not None:
            paths.append(out / f"critic-{model}.png")
            drawing(paths[-1].name)
            plots.plot_critic(runs[0], critic, paths[-1])
    paths += [out / "results.md", out / "results.csv"]
    print(write_results(groups, paths[-1], paths[-2]))
    print("\n".join(f"wrote {path}" for path in paths))
    return paths


def exact_posterior_of(run):
    """The exact posterior p(z|x) of the run's data.figure_points under its trained
    decoder, where its latent space is 2-D (quadrature); None otherwise."""
    if run.config["latent_dim"] != QUADRATURE_DIM:
        return None
    import keras                 # here, not at the top: --help and usage errors never load
    from evaluation import exact_posterior       # TensorFlow

    decoder = keras.models.load_model(run.path / f"decoder{rundir.NETWORK_SUFFIX}",
                                      compile=False)
    shown = run.posterior.get("shown_images")
    if shown is None:            # saved before shown_images: a one-hot run, every image shown
        shown = data.shown_points(data.load(run.config["dataset"]))[0]
    return exact_posterior.grid_posterior(
        decoder, shown[data.figure_points(run.config["shown_labels"])])


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=dataset_name, default=None, metavar="NAME",
                        help=f"data set whose runs to compare: {data.ONE_HOT_FORMAT}, or "
                             f"{data.IMAGE_FORMAT} (default: 4px; with --runs, the "
                             "one the runs share, which must then be this one if given)")
    parser.add_argument("--data-file", default="", metavar="FILE",
                        help="the Keras-format mnist.npz that mnist runs trained here read "
                             f"(default: {data.KERAS_MNIST_FILE})")
    parser.add_argument("--models", nargs="+", choices=registry.names(), default=[],
                        metavar="MODEL",
                        help="models whose runs --seeds finds, of: "
                             f"{', '.join(registry.names())} "
                             f"(default: {' '.join(default_models())})")
    parser.add_argument("--list-models", action=registry.ListModels, specs=registry.specs,
                        help="list every registered model, what it is, the script that "
                             "trains it and the settings that select it, and exit")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--seeds", type=seed_value, nargs="+", default=[0], metavar="SEED",
                        help="seeds of the runs <runs-root>/<model>-<dataset>-seed<SEED> of "
                             "each model; several are shown as a mean with a min-max band "
                             "(default: 0)")
    source.add_argument("--runs", nargs="+", metavar="DIR", default=[],
                        help="run directories to compare instead, of one data set; none is "
                             "trained (default: found by --seeds)")
    parser.add_argument("--latent-dim", type=latent_size, default=2, metavar="D",
                        help="latent dimension of the runs --seeds finds (named "
                             "<model>-<dataset>-latent_dim=D-seed<SEED> where D is not 2) and "
                             "of those trained here (default: 2)")
    parser.add_argument("--runs-root", default=rundir.RUNS_ROOT, metavar="DIR",
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


def check_paths(config: CompareConfig) -> None:
    """--out, or the runs root that holds the default output and the runs to train, can be
    written, and each of --runs read: checked before any run is trained."""
    for flag, path in (("--out", config.out),
                       ("--runs-root", None if config.runs else config.runs_root)):
        if path is not None:
            rundir.check_writable(Path(path), flag)
    for path in config.runs:
        rundir.check_readable(Path(path), "--runs", "run directory")


def main(argv=None) -> None:
    startup.catch_stop_signals()
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    if args["runs"] and args["models"]:
        parser.error("--models chooses the runs that --seeds finds, not --runs")
    config = CompareConfig(**args)
    try:
        check_paths(config)
        compare(config)
    except RunDirError as error:
        parser.exit(exits.status_of(error), f"{parser.prog}: error: {error}\n")
    except Failed as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        startup.end_process(exits.FAILED)
    except exits.Interrupted as stopped:
        parser.exit(exits.status_of(stopped), f"{parser.prog}: {stopped}\n")
    except KeyboardInterrupt as stop:
        parser.exit(exits.status_of(stop), f"{parser.prog}: interrupted; the runs on disk are "
                                           "complete or resumable, and every file written is "
                                           "whole\n")


if __name__ == "__main__":
    main()

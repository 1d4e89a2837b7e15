"""Sweep: many runs at once, each one Ray task, over models, data sets, seeds and a grid of
settings. Every run is an ordinary run directory, trained by the same path as train_*.py.

The runs land in --out (default runs/sweep-<name>), one directory per run named
<model>-<dataset>[-<setting>=<value>...]-seed<seed>, beside summary.csv and summary.md (one
row per run), scaling.png (when more than one data set is swept) and robustness-<model>.png
(when a grid is swept). Running the same command again trains only what is missing or
unfinished; with nothing left to train, Ray is not started.
"""

import argparse
import itertools
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import data
import registry
from harness import exits, memory, rundir
from harness import startup
from figures import sweep_summary
from harness.sweep_grid import (applies, check_models, grid_item, parse_grid,
                                skipped_settings)
from configs import OneLineErrorParser, dataset_name, positive_int, seed_value
from harness.rundir import RunDirError

CANCEL_WAIT_SECONDS = 120     # longest wait for cancelled runs to save before Ray stops
POLL_SECONDS = 0.5            # longest wait on Ray before the driver handles a signal
CONNECT_SECONDS = 5           # longest wait for a cluster's address to answer at all
# Where Ray looks for a cluster's token (docs.ray.io, ray-security/token-auth): the variable,
# the file it names, or the file `ray start --head` writes.
TOKEN_VARIABLE, TOKEN_PATH_VARIABLE = "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = "~/.ray/auth_token"
AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"
JOIN_FIX = (f"start the cluster with `ray start --head` on its head node, and where it uses "
            f"token authentication (Ray's default) make its token available here: "
            f"{DEFAULT_TOKEN_FILE}, {TOKEN_PATH_VARIABLE} or {TOKEN_VARIABLE}")


@dataclass
class Sweep:
    """What to sweep. A grid setting applies to the models whose config has it; the other
    models run without it."""

    models: tuple = ()                 # registered names; () means every registered model
    datasets: tuple = ("4px", "9px")
    seeds: tuple = (0, 1, 2)
    grid: dict = field(default_factory=dict)   # setting -> tuple of values
    steps: int | None = None           # None: each run's default
    cpus_per_run: int = 1
    out: str = ""                      # "": runs/sweep-<default_name()>
    address: str | None = None         # None: start a local Ray instance
    retry_failed: bool = False
    data_file: str = ""                # mnist's file; "": the Keras one

    def model_names(self) -> tuple:
        return tuple(self.models) or registry.names()

    def default_name(self) -> str:
        return "-".join([*self.datasets, *self.grid])

    def out_dir(self) -> Path:
        return Path(self.out or Path(rundir.RUNS_ROOT) / f"sweep-{self.default_name()}")


class Plan(NamedTuple):
    """One run of the sweep."""
    model: str
    dataset: str
    seed: int
    settings: tuple          # ((setting, value), ...): the grid values this run takes
    path: Path

    def config(self, steps: int | None, data_file: str = ""):
        settings = {**({"steps": steps} if steps else {}),
                    **({"data_file": data_file} if data_file else {}), **dict(self.settings)}
        return registry.default_config(self.model, dataset=self.dataset, seed=self.seed,
                                       out=str(self.path), **settings)

    def describe(self) -> str:
        values = " ".join(f"{k}={v}" for k, v in self.settings)
        return " ".join(filter(None, [self.model, self.dataset, values, f"seed {self.seed}"]))


class Stopped(Exception):
    """The sweep was interrupted; what its runs saved can be resumed."""


# The runs: which exist, which are finished, which to train.

def plan_runs(sweep: Sweep) -> list:
    plans = []
    for model in sweep.model_names():
        names = [name for name in sweep.grid if applies(name, model)]
        for dataset, values in itertools.product(
                sweep.datasets, itertools.product(*(sweep.grid[n] for n in names))):
            settings = tuple(zip(names, values))
            plans += [Plan(model, dataset, seed, settings, sweep.out_dir() /
                           rundir.run_name(model, dataset, seed, settings))
                      for seed in sweep.seeds]
    return plans


def saved_run_state(plan: Plan, config) -> str:
    """rundir.run_state of a plan's run directory: new (a run never saved counts as new),
    unfinished or finished; RunDirError if it holds something else."""
    state = rundir.run_state(plan.path, config)
    if state.kind in (rundir.NEW, rundir.UNSAVED):
        return rundir.NEW
    if state.kind == rundir.OTHER_SETTINGS:
        raise RunDirError(f"{plan.path} holds a run made with other settings ({state.reason}); "
                          "use another --out for a sweep with these settings")
    if state.kind == rundir.IN_PROGRESS:
        raise rundir.RunLocked(f"{plan.path} is being written by {state.reason}; wait for it "
                               "to finish, or stop it, before sweeping it")
    if state.kind == rundir.NOT_A_RUN:
        raise RunDirError(f"{plan.path} is a non-empty directory that holds no run; use "
                          "another --out")
    return state.kind


def pending_runs(sweep: Sweep, plans: list) -> list:
    """(plan, config, resume) for each run to train, all checked before any is trained."""
    failures = {} if sweep.retry_failed else sweep_summary.read_failures(sweep.out_dir())
    pending, checked = [], set()
    for plan in plans:
        config = plan.config(sweep.steps, sweep.data_file)
        if config.data_settings not in checked:
            try:
                memory.check_data(*config.data_settings)
            except ValueError as error:
                raise RunDirError(f"{plan.describe()}: {error}")
            checked.add(config.data_settings)
        state = saved_run_state(plan, config)
        if state != rundir.FINISHED and plan.path.name not in failures:
            pending.append((plan, config, state == rundir.UNFINISHED))
    return pending


# One run, in a Ray worker.

def set_threads(cpus: int) -> None:
    """TensorFlow's thread pools sized to the CPUs Ray gave the task; set once per worker
    process, before TensorFlow runs its first op."""
    import tensorflow as tf   # here, in the worker: the driver never loads TensorFlow

    if tf.config.threading.get_intra_op_parallelism_threads() != cpus:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cpus)
            tf.config.threading.set_inter_op_parallelism_threads(cpus)
        except RuntimeError:
            pass        # a reused worker whose TensorFlow already runs: its pools stay


def train_one(config, resume: bool, cpus: int, model_module: str) -> dict:
    """Trains one run with training.train, as the scripts do, in a process that registers
    its model from the module declaring it (a model added outside MODEL_MODULES is known
    here too). Returns its status, error and wall seconds; raises nothing but a cancellation
    outside the training loop."""
    set_threads(cpus)
    registry.register_modules([model_module])
    from harness import training   # here, in the worker: the driver never loads TensorFlow

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

class ClusterUnreachable(exits.Refused):
    """The Ray cluster of --address cannot be reached or joined."""


def use_cluster_token(environ=os.environ) -> None:
    """Joins with token authentication where a token is available and RAY_AUTH_MODE is not
    set, as Ray's own command line does: `ray start --head` turns it on and writes the token
    to ~/.ray/auth_token, but ray.init uses it only with RAY_AUTH_MODE=token."""
    if AUTH_MODE_VARIABLE in environ:
        return
    token_file = Path(environ.get(TOKEN_PATH_VARIABLE) or DEFAULT_TOKEN_FILE).expanduser()
    if environ.get(TOKEN_VARIABLE) or token_file.is_file():
        environ[AUTH_MODE_VARIABLE] = "token"


def check_reachable(address: str) -> None:
    """Raises ClusterUnreachable at once if nothing listens at a HOST:PORT address (Ray itself
    retries for minutes); 'auto' and other forms are left to Ray."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise ClusterUnreachable(f"--address {address}: no Ray cluster answers there "
                                 f"({rundir.first_line(error)}); {JOIN_FIX}")


def join_cluster(ray, address: str) -> None:
    """ray.init on the cluster at address, every failure to join one line naming the cause
    and the fix (use_cluster_token must have run before Ray was imported)."""
    import logging

    check_reachable(address)
    failure = None
    with startup.stderr_held_back():      # Ray's C++ client logs each retry: dropped
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, ray.exceptions.RayError, RuntimeError, ValueError) as error:
            failure = error
    if failure is not None:
        raise ClusterUnreachable(f"--address {address}: cannot join the Ray cluster "
                                 f"({rundir.first_line(failure).split('. ')[0]}); {JOIN_FIX}")


def start_ray(ray, sweep: Sweep) -> None:
    import logging

    if sweep.address:
        join_cluster(ray, sweep.address)
    else:
        # address="local": a new instance of this sweep's own, even where a cluster started
        # with `ray start` runs on this machine (that one is joined only with --address).
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)
    startup.catch_stop_signals()    # again: Ray's start installs handlers of its own
    startup.raise_if_stopped()      # a stop during Ray's start, which it may have swallowed


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
    optimum = m["optimum_log_px"]
    beside = (f"optimum {optimum:.4f}" if optimum is not None
              else f"training-subset log p(x) {m['train_log_px']:.4f}")
    return head + (f"{'test ' if optimum is None else ''}log p(x) {m['log_px']:.4f} ({beside}), "
                   f"true ELBO {rundir.elbo_text(m)}, {outcome['seconds']:.1f} s")


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
        # A wait with a timeout: a signal is handled (Python runs its handler) between waits,
        # which a wait blocked in Ray until a task ends would delay past the task's end.
        done, left = ray.wait(left, num_returns=1, timeout=POLL_SECONDS)
        startup.raise_if_stopped()
        for ref in done:
            plan = refs[ref]
            outcomes[plan.path.name] = outcome = task_outcome(ray, ref)
            bar.write(run_line(plan, outcome), file=sys.stdout)
            bar.update(1)


class Unschedulable(exits.Refused):
    """The Ray cluster has no node that can run a task of the sweep."""


def check_resources(ray, cpus_per_run: int) -> None:
    """Raises Unschedulable if no node of the cluster has cpus_per_run CPUs; says once that
    the sweep waits when the cluster has them but is busy now."""
    nodes = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    if not nodes or max(nodes) < cpus_per_run:
        raise Unschedulable(f"--cpus-per-run {cpus_per_run}: no node of the Ray cluster has "
                            f"that many CPUs (its {len(nodes)} nodes have "
                            f"{', '.join(f'{n:g}' for n in nodes) or 'none'})")
    free = ray.available_resources().get("CPU", 0)
    if free < cpus_per_run:
        print(f"waiting for {cpus_per_run} free CPUs per run: {free:g} of the cluster's "
              f"{sum(nodes):g} are free now, the rest busy with other work", flush=True)


def cancel(ray, refs: dict) -> None:
    """Cancels the tasks and waits for the running ones to save, as a run does on SIGINT."""
    for ref in refs:
        ray.cancel(ref)
    if refs:
        ray.wait(list(refs), num_returns=len(refs), timeout=CANCEL_WAIT_SECONDS)


class RayUse(NamedTuple):
    startup: float          # seconds to start (or join) Ray
    slots: int              # runs that can train at once


def execute(sweep: Sweep, pending: list, outcomes: dict) -> RayUse:
    """Trains the pending runs as Ray tasks, their outcomes into outcomes (run name ->
    outcome). A stop signal at any moment from Ray's start on cancels the tasks submitted so
    far, which save as a run does on SIGINT, and raises Stopped."""
    if sweep.address:
        use_cluster_token()     # before Ray is imported: it reads RAY_AUTH_MODE on import
    import ray   # here, not at the top: --help and usage errors never start Ray

    start, refs, bar = time.perf_counter(), {}, None
    try:
        start_ray(ray, sweep)
        use = RayUse(time.perf_counter() - start, min(len(pending), max(1, int(
            ray.cluster_resources().get("CPU", 1) // sweep.cpus_per_run))))
        check_resources(ray, sweep.cpus_per_run)
        task = ray.remote(num_cpus=sweep.cpus_per_run, max_retries=0)(train_one)
        for plan, config, resume in pending:
            refs[task.remote(config, resume, sweep.cpus_per_run,
                             registry.module_of(registry.get(plan.model)))] = plan
            startup.raise_if_stopped()
        bar = progress_bar(len(refs))
        collect(ray, refs, bar, outcomes)
        return use
    except KeyboardInterrupt:
        startup.mark_teardown_unsafe()    # Ray's exit can crash after a stop during its start
        cancel(ray, refs)
        saved = "the runs saved what they had trained" if refs else "no run had started"
        raise Stopped(f"interrupted: {saved}")
    finally:
        if bar is not None:
            bar.close()
        ray.shutdown()


# Putting it together.

class SweepResult(NamedTuple):
    outcomes: dict          # run directory name -> outcome, for the runs trained now
    seconds: float          # wall time of this invocation
    ray_startup: float      # seconds to start (or join) Ray; 0 when nothing was trained
    paths: list             # the summary and figures written


def announce(sweep: Sweep, plans: list, pending: list) -> None:
    resumed = sum(resume for _, _, resume in pending)
    print(f"{len(plans)} runs in {sweep.out_dir()}: {len(plans) - len(pending)} finished "
          f"(or failed) already, {resumed} to resume, {len(pending) - resumed} to train",
          flush=True)
    for line in skipped_settings(sweep.grid, sweep.model_names()):
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
        sweep_summary.record_failures(sweep.out_dir(), outcomes)
    seconds = time.perf_counter() - start
    timing = sweep_summary.timing_text(sweep.out_dir(), outcomes, seconds, use.startup, use.slots)
    grid_names = {model: [name for name in sweep.grid if applies(name, model)]
                  for model in sweep.model_names()}
    paths = sweep_summary.write_summary(sweep.out_dir(), plans, sweep.grid, grid_names, timing)
    return SweepResult(outcomes, seconds, use.startup, paths)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=registry.names(), metavar="MODEL",
                        help=f"models to sweep, of: {', '.join(registry.names())} "
                             "(default: all)")
    parser.add_argument("--datasets", nargs="+", type=dataset_name, default=["4px", "9px"],
                        metavar="NAME", help=f"data sets, each {data.ONE_HOT_FORMAT} or "
                                             f"{data.IMAGE_FORMAT} (default: 4px 9px)")
    parser.add_argument("--data-file", default="", metavar="FILE",
                        help="the Keras-format mnist.npz every mnist run reads (default: "
                             f"{data.KERAS_MNIST_FILE})")
    parser.add_argument("--seeds", nargs="+", type=seed_value, default=[0, 1, 2], metavar="SEED",
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
        check_models(plan_runs(sweep), sweep.steps, sweep.data_file)
    except ValueError as error:
        parser.error(str(error))
    if not sweep.address and sweep.cpus_per_run > os.cpu_count():
        parser.error(f"--cpus-per-run {sweep.cpus_per_run}: this machine has "
                     f"{os.cpu_count()} CPUs, and a local sweep runs on them alone")
    return sweep


def main(argv=None) -> None:
    startup.catch_stop_signals()
    parser = build_parser()
    sweep = sweep_from_args(parser, argv)
    try:
        result = run_sweep(sweep)
    except exits.REFUSALS as error:
        parser.exit(exits.status_of(error), f"{parser.prog}: error: {error}\n")
    except Stopped as stopped:
        print(f"{parser.prog}: {stopped}; run the same command again to resume",
              file=sys.stderr)
        startup.end_process(exits.stopped_by(signal.SIGINT))
    except KeyboardInterrupt as stop:
        parser.exit(exits.status_of(stop), f"{parser.prog}: interrupted; the runs keep what "
                                           "they saved and every file written is whole; run "
                                           "the same command again to resume\n")
    print("\n".join(f"wrote {path}" for path in result.paths))
    failed = sum(o["status"] != "finished" for o in result.outcomes.values())
    sys.exit(exits.FAILED if failed else exits.FINISHED)


if __name__ == "__main__":
    main()

"""Run names, and what state a run directory is in: new, unfinished, finished, in progress,
or holding other settings; the scripts, compare.py and sweep.py all decide by it."""

import dataclasses
from pathlib import Path
from typing import NamedTuple


import registry
from harness.rundir.files import RunDirError
from harness.rundir.format import changed_settings, read_config, saved_step
from harness.rundir.layout import CONFIG_FILE, METRICS_FILE, STATE_FILE
from harness.rundir.lock import writer_of
from harness.rundir.paths import is_empty, is_run_dir

RUNS_ROOT = "runs"        # where a run lands when no --out is given


def run_name(model: str, dataset: str, seed: int, settings: tuple = ()) -> str:
    """<model>-<dataset>[-<setting>=<value>...]-seed<seed>: a run's directory name."""
    return "-".join([model, dataset, *(f"{k}={v}" for k, v in settings), f"seed{seed}"])


# Settings a default run name leaves out: those it shows already, where files are, and the
# length of the run (--resume may change it).
UNNAMED_SETTINGS = ("dataset", "seed", "out", "data_file", "steps")


def named_settings(config) -> tuple:
    """((setting, value), ...): the settings a run's default directory name shows besides its
    model, data set and seed: every one that differs from its model's defaults on its data
    set (UNNAMED_SETTINGS aside), in the config's order, so that runs made with the defaults
    keep their names and two runs with other settings never share one."""
    spec = registry.spec_for(config)
    defaults = registry.default_settings(spec.name, config.dataset)
    return tuple((name, value) for name, value in dataclasses.asdict(config).items()
                 if name not in UNNAMED_SETTINGS and value != defaults[name])


def run_dir(config, root: str | Path = RUNS_ROOT) -> Path:
    """The directory of a run: its --out, else
    <root>/<model>-<dataset>[-<setting>=<value>...]-seed<seed> (named_settings)."""
    if config.out:
        return Path(config.out)
    name = run_name(registry.spec_for(config).name, config.dataset, config.seed,
                    named_settings(config))
    return Path(root) / name


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

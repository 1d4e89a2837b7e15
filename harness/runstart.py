"""A training script's start: its command line parsed into checked settings, and its run
directory checked and claimed (the writer lock), before anything is written or TensorFlow
loads, so that every usage error is one line with exit status 2.

No TensorFlow here.
"""

import argparse
import dataclasses
from pathlib import Path
from typing import NamedTuple

import registry
from harness import memory, rundir
from configs import TrainConfig


class RunRequest(NamedTuple):
    """What a training script was asked to do."""
    config: TrainConfig
    resume: bool


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", default=False,
                       help="replace the run already in --out (only its run files are removed)")
    parser.add_argument("--print-config", action="store_true", default=False,
                        help="print every setting of the run these flags describe, its value "
                             "and where the value comes from, and exit without training")
    group.add_argument("--resume", action="store_true", default=False,
                       help="continue the run in --out from its last saved state up to --steps "
                            "in total; settings not given are read from its config.json, and "
                            "changing any other than --steps is refused")


def parse_run(script: str, description: str, argv=None) -> RunRequest:
    """Parses a training script's command line (registry.SCRIPTS) and checks --out against
    what is on disk, holding the run's writer lock from here on; every usage error stops the
    script (exit status 2)."""
    parser = registry.build_parser(script, description)
    _add_run_flags(parser)
    given = vars(parser.parse_args(argv))
    overwrite, resume = given.pop("overwrite"), given.pop("resume")
    print_config, model = given.pop("print_config"), given.pop("model", None)
    try:
        config, sources = registry.resolve_script(script, given, model)
        if print_config:
            print(config_text(config, sources))
            parser.exit(0)
        memory.check_data(*config.data_settings)
    except ValueError as error:
        parser.error(str(error))
    out = rundir.run_dir(config)

    def checked_config():
        if resume:
            return resumed_config(out, given, model, script)
        check_new_run(out, overwrite)
        return config
    try:
        config = claim_run(out, checked_config)
    except rundir.RunLocked as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except rundir.RunDirError as error:
        parser.error(str(error))
    return RunRequest(config, resume)


def config_text(config, sources: dict) -> str:
    """The resolved settings, one line each: name, value and source."""
    width = max(map(len, sources))
    spec = registry.spec_for(config)
    lines = [f"model: {spec.name} ({spec.run_label(config)})",
             f"{'out':<{width}}  {rundir.run_dir(config)}"]
    lines += [f"{name:<{width}}  {value!r:<12}  {source}" for name, (value, source)
              in sources.items() if name != "out"]
    return "\n".join(lines)


def claim_run(out: Path, check):
    """Takes the writer lock of the run in out for the rest of the process, and returns
    check(), which reads and checks the run on disk, run while the lock is held. Where no
    writer has made the lock file yet, check() runs first too, so that a run it refuses leaves
    nothing behind (not even the lock file). With the lock held, the temporary files of a
    writer killed inside a write are removed."""
    rundir.check_writable(out)
    if not (out / rundir.LOCK_FILE).is_file():
        check()
        out.mkdir(parents=True, exist_ok=True)
    rundir.acquire_lock(out)
    rundir.remove_leftovers(out)
    config = check()
    rundir.sign_lock(out)
    return config


def check_new_run(out: Path, overwrite: bool) -> None:
    """A new run may go into a missing or empty directory, or over an old run with --overwrite
    (claim_run has checked that out can be written)."""
    try:
        state = rundir.run_state(out)
    except rundir.RunDirError:            # a run whose files cannot be read is still a run
        state = rundir.RunState(rundir.UNFINISHED)
    if state.kind == rundir.NOT_A_RUN:
        raise rundir.RunDirError(f"--out {out} is a non-empty directory that holds no run; "
                                 "choose another --out")
    if state.kind != rundir.NEW and not overwrite:
        raise rundir.RunDirError(f"--out {out} already holds a run; pass --overwrite to "
                                 "replace it, or --resume to continue it")


def resumed_config(out: Path, given: dict, model: str | None = None, script: str = ""):
    """The settings of the run saved in out, of its model (or of `model`, which must be
    its), with the flags given (only --steps may differ); where a script resumes it, the run
    must be of one of the script's models. A run at its last step without metrics.json still
    needs its final evaluation."""
    rundir.check_writable(out)
    saved = rundir.saved_settings(out)
    try:
        spec = registry.get(model or saved.get("model", ""))
    except registry.UnknownModel as error:
        raise rundir.RunDirError(f"--resume: {out}: {error}")
    if script and spec not in registry.family(script):
        raise rundir.RunDirError(f"--resume: the run in {out} is of {spec.name}, which "
                                 f"{registry.script_of(spec) or 'no script'} trains, not "
                                 f"{script}")
    foreign = registry.foreign_flags(spec, given)
    if foreign:
        raise rundir.RunDirError(f"--resume: the run in {out} is of {spec.name}, which has no "
                                 f"{', '.join(foreign)}")
    settings = {f.name: saved[f.name] for f in dataclasses.fields(spec.config_class)
                if f.name in saved}
    try:
        config = registry.resolve_model(spec.name, **{**settings, **given, "out": str(out)})[0]
    except ValueError as error:
        raise rundir.RunDirError(f"--resume: the run in {out} cannot take these settings "
                                 f"({error})")
    state = rundir.run_state(out, config)
    if state.step > config.steps or state.kind == rundir.FINISHED:
        raise rundir.RunDirError(f"--resume: the run in {out} is already at step {state.step}; "
                                 f"pass --steps above {state.step} to continue it")
    if state.kind == rundir.OTHER_SETTINGS:
        raise rundir.RunDirError(f"--resume: the run in {out} was made with other settings ("
                                 f"{state.reason}); use a new --out for a new run")
    return config

import contextlib
import fcntl
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from harness import rundir, startup
from harness.rundir import lock as rundir_lock
from harness.rundir import read_history

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# XLA's compiled programs are kept on disk for the session and shared by every process it
# starts (pytest's workers, the scripts in subprocesses, Ray's workers): the tests build the
# same small models many times, and compiling them is most of a tiny run's time. A program
# loaded from the cache is the one compiled, so results are unchanged (checked: a tiny run's
# history.csv and metrics.json are the same with a cold and a warm cache). The directory is
# made by the first process of the session (pytest's workers inherit it) and removed at its
# end: nothing carries over between test runs.
CACHE_VARIABLE = "AVB_TEST_XLA_CACHE"
if CACHE_VARIABLE not in os.environ:
    os.environ[CACHE_VARIABLE] = tempfile.mkdtemp(prefix="xla-cache-")
    os.environ["TF_XLA_FLAGS"] = " ".join(filter(None, [
        os.environ.get("TF_XLA_FLAGS", ""),
        f"--tf_xla_persistent_cache_directory={os.environ[CACHE_VARIABLE]}"]))


def pytest_sessionfinish(session, exitstatus):
    if "PYTEST_XDIST_WORKER" not in os.environ:     # the session's first process
        shutil.rmtree(os.environ[CACHE_VARIABLE], ignore_errors=True)


PACKAGES = ("evaluation", "harness", "harness.rundir", "figures", "benchmarks")
SCRIPTS = ("train_vae", "train_avb", "compare", "sweep", "critic_check")


def project_modules() -> dict:
    """Every module of the project's code, tests aside: dotted name -> path."""
    modules = {p.stem: p for p in ROOT.glob("*.py")}
    for package in PACKAGES:
        folder = ROOT.joinpath(*package.split("."))
        modules.update({package if p.stem == "__init__" else f"{package}.{p.stem}": p
                        for p in folder.glob("*.py")})
    return modules


# The pieces several test modules share (no test module imports another).

# The one tiny setting: as a dict for configs built here, as flags for the scripts, as a grid
# for sweeps. An adversary's own tiny settings are added where an AVB is trained.
TINY_SETTINGS = {"steps": 30, "log_every": 10, "batch_size": 32, "posterior_samples": 8,
                 "encoder_width": 8, "decoder_width": 8}
TINY_ADVERSARY = {"adversary_width": 8, "noise_dim": 3, "adversary_steps": 1}


def flags(settings: dict) -> list:
    """--name value for each setting, as the scripts take them."""
    return [word for name, value in settings.items()
            for word in (f"--{name.replace('_', '-')}", str(value))]


TINY = flags(TINY_SETTINGS)
SWEEP_TINY = {k: (v,) for k, v in TINY_SETTINGS.items() if k != "steps"}   # a sweep's grid


def run_script(name, *args):
    return subprocess.run([sys.executable, name, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def loaded_input_counts(paths, cwd):
    """Loads saved networks in one isolated Python that cannot see this project's modules;
    returns each one's number of inputs."""
    code = ("import sys, keras\nfor path in sys.argv[1:]:\n"
            "    print('INPUTS', len(keras.models.load_model(path).inputs))")
    result = subprocess.run([sys.executable, "-I", "-c", code, *map(str, paths)], cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [int(line.split()[1]) for line in result.stdout.splitlines()
            if line.startswith("INPUTS")]


FAST = [*TINY[:2], "--log-every", "50", *TINY[4:]]   # TINY with fewer host round trips


def snapshot_files(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


def start_training(out, *args):
    """A tiny AVB run (one adversary step: the smallest program to compile) in a subprocess."""
    return subprocess.Popen([sys.executable, "train_avb.py", *FAST, "--schedule", "constant",
                             "--adversary-steps", "1", *args, "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(path, n_rows, process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(read_history(path)) >= n_rows:
            return
        time.sleep(0.02)
    raise AssertionError(f"no {n_rows} history rows: {process.communicate()[1]}")


def saved_step(out):
    with np.load(out / rundir.STATE_FILE) as state:
        return int(state["step"])


def assert_refused(ended, *words):
    """A refusal: exit status 2 and one line holding each of words."""
    assert_one_line(ended, 2, *words)


ENTROPY_TOLERANCE = 0.04


def assert_one_line(result, status, *words):
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def assert_usage_error(result, *words):
    """A usage error: exit status 2 and one line."""
    assert_one_line(result, 2, *words)


# Entry points called in this process: a usage error is exit status 2 and one line, which
# needs no fresh Python. One fresh Python per entry point (fresh_python) proves that its
# --help and usage errors load neither TensorFlow nor Ray.

class Ended(NamedTuple):
    """How an entry point called in this process ended, as subprocess.run reports it."""
    returncode: int
    stdout: str
    stderr: str


def main_of(script: str):
    return importlib.import_module(script.removesuffix(".py").replace("/", ".")).main


def call_main(capsys, script: str, *args) -> Ended:
    """Runs an entry point's main(args) in this process, its output captured."""
    capsys.readouterr()
    try:
        main_of(script)(list(map(str, args)))
        status = 0
    except SystemExit as stop:
        status = 0 if stop.code is None else stop.code
    captured = capsys.readouterr()
    return Ended(status, captured.out, captured.err)


def fresh_python(script: str, *argvs) -> tuple:
    """Runs an entry point's main once for each argument list, all in one fresh Python:
    ([Ended, ...], whether Ray was loaded, whether TensorFlow was loaded) at the end."""
    module = script.removesuffix(".py").replace("/", ".")
    code = ("import contextlib, importlib, io, json, sys\n"
            f"main = importlib.import_module({module!r}).main\n"
            "ended = []\n"
            "for argv in json.loads(sys.argv[1]):\n"
            "    out, err = io.StringIO(), io.StringIO()\n"
            "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
            "        try:\n            main(argv)\n            status = 0\n"
            "        except SystemExit as stop:\n"
            "            status = 0 if stop.code is None else stop.code\n"
            "    ended.append([status, out.getvalue(), err.getvalue()])\n"
            "print(json.dumps([ended, 'ray' in sys.modules, 'tensorflow' in sys.modules]))\n")
    result = subprocess.run([sys.executable, "-c", code,
                             json.dumps([list(map(str, a)) for a in argvs])], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ended, ray, tensorflow = json.loads(result.stdout.strip().splitlines()[-1])
    return [Ended(*e) for e in ended], ray, tensorflow


@pytest.fixture(autouse=True)
def leaves_the_process_as_it_was():
    """What an entry point called in this process leaves behind is undone after each test:
    the writer locks it holds for the rest of the process, the signal handlers it installs,
    and the marks that would make the next one end the process at once."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for key, (lock_file, _) in list(rundir_lock._held_locks.items()):
        lock_file.close()
        del rundir_lock._held_locks[key]
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    startup._teardown_unsafe.clear()
    startup._stop_signals.clear()


# One cache of tiny trained runs for the whole test session, shared by every worker: each
# run is trained by the first worker that asks for it, behind a file lock in pytest's base
# temporary directory, and the others wait for it and read it. A test that changes a run
# works on a copy (copy_run).

CACHED_RUNS = {
    **{f"{model}-4px-seed{seed}": (model, {**TINY_SETTINGS, "dataset": "4px", "seed": seed,
                                          **({} if model == "vae" else TINY_ADVERSARY)})
       for model in ("vae", "avb", "avb-ac") for seed in (0, 1)},
    "vae-9px-seed0": ("vae", {**TINY_SETTINGS, "dataset": "9px"}),
    **{f"{model}-digits-seed0": (model, {**TINY_SETTINGS, "dataset": "digits",
                                         "test_points": 20,
                                         **({} if model == "vae" else TINY_ADVERSARY)})
       for model in ("vae", "avb")},
}


@contextlib.contextmanager
def file_lock(path: Path):
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cached_config(name: str, out):
    import registry

    model, settings = CACHED_RUNS[name]
    return registry.default_config(model, **settings, out=str(out))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """name -> the directory of that cached run (CACHED_RUNS), finished; read it, don't write."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "run-cache"
    root.mkdir(exist_ok=True)

    def get(name: str) -> Path:
        from harness import training

        path = root / name
        with file_lock(root / f"{name}.lock"):
            if not (path / rundir.METRICS_FILE).is_file():
                shutil.rmtree(path, ignore_errors=True)      # a build that failed midway
                training.train(cached_config(name, path), progress=False)
        return path
    return get


def copy_run(trained_run, name: str, destination: Path) -> Path:
    """A copy of a cached run in destination, under the run's own name."""
    return Path(shutil.copytree(trained_run(name), Path(destination) / name))

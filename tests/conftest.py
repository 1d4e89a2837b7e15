import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from harness import rundir
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


HEAVY_MODULES = ("tensorflow", "matplotlib", "keras")   # what --help must not import


def script_help(script: str) -> tuple:
    """(the --help text of a script, the HEAVY_MODULES its --help imported), from a fresh
    Python."""
    code = (f"import sys, runpy; sys.argv = ['{script}', '--help']\n"
            f"try:\n    runpy.run_path('{script}', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print('IMPORTED', *[m for m in {HEAVY_MODULES!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    text, _, imported = result.stdout.rpartition("IMPORTED")
    return text, imported.split()


# The pieces several test modules share (no test module imports another).

TINY = ["--steps", "30", "--log-every", "10", "--batch-size", "32", "--posterior-samples", "8",
        "--encoder-width", "8", "--decoder-width", "8"]


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


WHAT_LOADED = ("\nprint('LOADED', 'ray' in sys.modules, 'tensorflow' in sys.modules)")


def entry_point(script: str, *args):
    """Runs an entry point's main() in a fresh Python; (exit status, stderr, whether Ray and
    TensorFlow were loaded)."""
    module = script.removesuffix(".py").replace("/", ".")
    code = ("import sys, importlib\n"
            f"main = importlib.import_module({module!r}).main\n"
            "try:\n    main(sys.argv[1:])\n    status = 0\n"
            "except SystemExit as exit:\n    status = exit.code\n"
            "print('STATUS', status)" + WHAT_LOADED)
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    words = result.stdout.split()
    status = int(words[words.index("STATUS") + 1])
    loaded = words[words.index("LOADED") + 1:words.index("LOADED") + 3]
    return status, result.stderr, loaded


def assert_refused(status, stderr, loaded, *words):
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in stderr, stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert loaded == ["False", "False"], "Ray or TensorFlow was loaded"


SWEEP_TINY = {"encoder_width": (8,), "decoder_width": (8,), "batch_size": (32,),
        "posterior_samples": (8,), "log_every": (10,)}


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

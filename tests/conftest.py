import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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

"""A sweep joins a real Ray cluster started as the README says (`ray start --head`, with the
token authentication Ray turns on by default), and a cluster it cannot reach is one line."""

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import sweep
from tests.conftest import ROOT, SWEEP_TINY, TINY_SETTINGS

# Its module fixture is built once: the module's tests run on one worker.
pytestmark = pytest.mark.xdist_group("test_cluster")

HEAD_START_SECONDS = 90
HEAD_STOP_SECONDS = 5          # then its processes are killed
TINY_SWEEP = ["--steps", str(TINY_SETTINGS["steps"]),
              *(f"--grid={k}={v[0]}" for k, v in SWEEP_TINY.items())]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def without_auth_mode() -> dict:
    return {k: v for k, v in os.environ.items() if k != sweep.AUTH_MODE_VARIABLE}


@pytest.fixture(scope="module")
def head():
    """A one-node cluster of this module's own, started by `ray start --head --block` in a
    process group of its own, so that only its processes are stopped at the end."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=false", "--block"],
        env=without_auth_mode(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.monotonic() + HEAD_START_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "no head started"
            time.sleep(0.5)
    time.sleep(3)          # the head's raylet registers after its GCS answers
    yield f"127.0.0.1:{port}"
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=HEAD_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):      # what is left of its group
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # What `ray stop` would remove: the file naming the latest head, which --address auto
    # (and a plain ray.init) would otherwise try to join after the head is gone.
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    if current.is_file() and current.read_text().strip().endswith(f":{port}"):
        current.unlink()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["host:port", "auto"])
def test_a_sweep_joins_a_cluster_started_with_ray_start_head(head, how, tmp_path):
    address = head if how == "host:port" else "auto"
    out = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "sweep.py", "--address", address, "--models", "vae", "--datasets",
         "4px", "--seeds", "0", "1", *TINY_SWEEP, "--out", str(out)],
        cwd=ROOT, env=without_auth_mode(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["seed"] for r in rows) == ["0", "1"]
    assert all(r["status"] == "finished" for r in rows), rows


def test_a_port_with_no_cluster_is_one_line_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "sweep"
    start = time.monotonic()
    with pytest.raises(SystemExit) as stop:
        sweep.main(["--address", f"127.0.0.1:{free_port()}", "--models", "vae", "--datasets",
                    "4px", "--seeds", "0", "--steps", "100", "--out", str(out)])
    assert stop.value.code == 2 and time.monotonic() - start < 30
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no Ray cluster answers there" in lines[0], lines
    assert "ray start --head" in lines[0] and not out.exists()


def test_a_token_on_disk_turns_token_authentication_on_unless_the_mode_is_set(tmp_path):
    token = tmp_path / "token"
    token.write_text("secret")
    for environ, mode in [({sweep.TOKEN_PATH_VARIABLE: str(token)}, "token"),
                          ({sweep.TOKEN_VARIABLE: "secret"}, "token"),
                          ({sweep.TOKEN_PATH_VARIABLE: str(token),
                            sweep.AUTH_MODE_VARIABLE: "disabled"}, "disabled"),
                          ({sweep.TOKEN_PATH_VARIABLE: str(tmp_path / "none")}, None)]:
        sweep.use_cluster_token(environ)
        assert environ.get(sweep.AUTH_MODE_VARIABLE) == mode, environ


@pytest.mark.slow
def test_a_cluster_that_refuses_the_token_is_one_line(head, tmp_path):
    """Without the head's token (no ~/.ray/auth_token, no variable), joining is refused: one
    line naming the cause and where the token goes, and nothing written."""
    environ = {**without_auth_mode(), "HOME": str(tmp_path / "home"),
               sweep.TOKEN_PATH_VARIABLE: str(tmp_path / "no-token")}
    out = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "sweep.py", "--address", head, "--models", "vae", "--datasets", "4px",
         "--seeds", "0", *TINY_SWEEP, "--out", str(out)],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot join the Ray cluster" in lines[0], result.stderr
    assert sweep.DEFAULT_TOKEN_FILE in lines[0] and not out.exists()

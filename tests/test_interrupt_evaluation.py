"""A stop signal during the final evaluation: the process ends within seconds, keeps the
training and writes no metrics, and --resume evaluates the run without training it again;
every phase of the evaluation shows itself and can be stopped."""

import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import data
import registry
from evaluation import final
from harness import monitor, rundir
from tests.conftest import ROOT

AIS_RUN = ("--dataset", "9px", "--latent-dim", "3", "--steps", "200", "--log-every", "100",
           "--ais-steps", "1000", "--bdmc-points", "4")
STOP_WITHIN_SECONDS = 10


@pytest.mark.slow
def test_sigint_during_ais_stops_within_seconds_and_resume_evaluates(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "train_vae.py", *AIS_RUN, "--out", str(out)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if "evaluating log p(x) by AIS" in line:
            break
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, err = process.communicate(timeout=60)
    assert time.monotonic() - sent < STOP_WITHIN_SECONDS
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "during the final evaluation (log p(x) by AIS)" in lines[0], err
    assert not (out / rundir.METRICS_FILE).exists()
    stopped_history = (out / rundir.HISTORY_FILE).read_text()

    resumed = subprocess.run([*command, "--resume"], cwd=ROOT, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "step 200/400" not in resumed.stdout and "step 100/200" not in resumed.stdout
    for phase in ("log p(x) by AIS done in", "true ELBO (exact log q) done in",
                  "BDMC on simulated data done in"):
        assert phase in resumed.stdout, resumed.stdout
    run = rundir.read_run(out)
    assert (out / rundir.HISTORY_FILE).read_text() == stopped_history
    assert run.metrics["log_px_method"] == "ais" and np.isfinite(run.metrics["log_px"])


class StopAt(Exception):
    pass


def test_every_phase_of_the_evaluation_reports_and_can_stop(tmp_path, capsys):
    """The evaluation of a 2-D AVB on 4px (untrained) passes through each of its phases, and
    a check that raises in any phase stops it there."""
    config = registry.make_config(registry.get("avb").config_class, dataset="4px", steps=1,
                                  out=str(tmp_path))
    model = registry.get("avb").build(config, 4)
    dataset = data.load("4px")
    seen = []

    def check(phase):
        seen.append(phase)
    progress = monitor.EvaluationProgress("avb 4px", True, check)
    final.evaluate_run(model, dataset, config, progress)
    final.critic_maps(model, dataset, config, progress)
    progress.close()
    phases = list(dict.fromkeys(seen))
    assert phases == ["log p(x) by quadrature", "true ELBO (nearest-neighbour entropy)",
                      "ELBO estimated by T", "the model's own terms",
                      "the adversary's error maps"], phases
    out = capsys.readouterr().out
    assert "avb 4px: evaluating log p(x) by quadrature" in out and "done in" in out

    for phase in phases[:-1]:
        def stop_in(p, phase=phase):
            if p == phase and p in seen:      # its first report, after one part
                raise StopAt(p)
            seen.append(p)
        seen = []
        with pytest.raises(StopAt, match=re.escape(phase)):
            final.evaluate_run(model, dataset, config, monitor.EvaluationProgress(
                "avb 4px", False, stop_in))

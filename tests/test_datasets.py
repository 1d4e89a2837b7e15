"""Any k x k one-hot data set by name: names checked, defaults per data set, a 16px run."""

import json

import numpy as np
import pytest

import data
from configs import AVBConfig, VAEConfig
from registry import make_config
from tests.conftest import TINY, call_main


@pytest.mark.parametrize("name,side", [("4px", 2), ("9px", 3), ("16px", 4), ("100px", 10)])
def test_perfect_squares_name_data_sets(name, side):
    dataset = data.load(name)
    assert dataset.image_shape == (side, side) and dataset.n_points == side * side
    np.testing.assert_array_equal(dataset.x, np.eye(side * side))
    assert dataset.optimum_log_px == pytest.approx(-np.log(side * side))


@pytest.mark.parametrize("name,reason", [("10px", "10 is not a perfect square"),
                                         ("1px", "too small"), ("16", "not a data set name"),
                                         ("016px", "not a data set name")])
def test_other_names_are_refused_in_one_line(name, reason):
    with pytest.raises(ValueError, match=reason):
        data.check_name(name)


def test_measured_defaults_stay_and_larger_sets_scale_the_9px_steps():
    avb_4px, avb_9px = make_config(AVBConfig, dataset="4px"), make_config(AVBConfig,
                                                                           dataset="9px")
    assert (avb_4px.steps, avb_4px.batch_size, avb_4px.schedule) == (10000, 256, "cosine")
    assert (avb_9px.steps, avb_9px.batch_size, avb_9px.schedule) == (20000, 128, "cosine")
    assert make_config(VAEConfig, dataset="9px").steps == 6000
    avb_16px = make_config(AVBConfig, dataset="16px")
    assert (avb_16px.steps, avb_16px.batch_size, avb_16px.schedule) == (35600, 128, "cosine")
    assert make_config(VAEConfig, dataset="25px").steps == 16700      # 6000 x 25 / 9
    assert make_config(AVBConfig, dataset="16px", steps=50).steps == 50


@pytest.mark.slow
def test_a_16px_run_trains_and_evaluates(tmp_path, capsys):
    out = tmp_path / "vae-16px"
    result = call_main(capsys, "train_vae.py", *TINY, "--dataset", "16px", "--out", out)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["optimum_log_px"] == pytest.approx(-np.log(16))
    assert len(metrics["log_px_per_point"]) == 16 and metrics["log_px"] < metrics["optimum_log_px"]
    assert np.isfinite(metrics["elbo"])
    assert json.loads((out / "config.json").read_text())["image_shape"] == [4, 4]

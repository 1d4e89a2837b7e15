"""The validation split and the best step: the split is stratified, disjoint from the training
images and fixed, and leaves the test split as it was; the validation figure against exact
quadrature; the test images take no part in training or in the choice of the step; a resumed
run keeps the choice bit for bit; Npx sets refuse a split; older runs read as having none."""

import dataclasses
import json

import numpy as np
import pytest

import configs
import data
import registry
from harness import rundir
from tests.conftest import TINY_SETTINGS, assert_usage_error, call_main

SETTINGS = {**TINY_SETTINGS, "steps": 60, "log_every": 20, "eval_every": 20, "test_points": 20}


def test_the_validation_split_is_stratified_disjoint_and_fixed():
    labels = data.BUNDLED["digits"].read().labels
    train, test = data.stratified_split(labels)
    kept, held = data.validation_split(labels[train], 0.1)
    assert not set(kept) & set(held) and len(kept) + len(held) == len(train)
    for c in range(10):
        assert np.sum(labels[train][held] == c) == round(0.1 * np.sum(labels[train] == c))
    again_kept, again_held = data.validation_split(labels[train], 0.1)
    assert (again_kept == kept).all() and (again_held == held).all()

    plain = data.load("digits")
    split = data.load("digits", data.DataOptions(validation_fraction=0.1))
    assert plain.x_valid is None and split.n_valid == len(held)
    assert (split.x_test == plain.x_test).all()               # the test split is unchanged
    assert (split.x == plain.x[kept]).all() and (split.x_valid == plain.x[held]).all()
    assert "validation: 10% of each class" in split.split


def test_npx_sets_refuse_a_validation_split(capsys):
    assert_usage_error(call_main(capsys, "train_vae.py", "--dataset", "4px",
                                 "--validation-fraction", "0.1"), "Npx data sets hold nothing out")
    assert_usage_error(call_main(capsys, "train_vae.py", "--dataset", "digits",
                                 "--validation-fraction", "1"), "--validation-fraction")


def test_older_runs_read_as_having_no_validation_split():
    record = {f.name: f.default for f in dataclasses.fields(configs.VAEConfig)
              if f.name != "validation_fraction"}
    assert configs.settings_of_record(configs.VAEConfig, record)["validation_fraction"] == 0
    assert registry.default_config("vae", dataset="digits").validation_fraction == 0.1
    assert registry.default_config("vae", dataset="9px").validation_fraction == 0


@pytest.mark.slow
def test_the_validation_figure_is_the_runs_own_log_px_method(tmp_path):
    """Quadrature where D = 2, within 0.01 of the final grid's exact log p(x) of the validation
    images; AIS on the first validation images where D > 2."""
    from evaluation import quadrature, validation
    from harness import training

    config = registry.default_config("vae", dataset="digits", **SETTINGS,
                                     out=str(tmp_path / "vae"))
    run = training.train(config, progress=False)
    dataset = data.load("digits", config.data_options)
    model = registry.spec_for(config).build(config, dataset.n_pixels)
    training.assign_state(model, rundir.read_state(
        run.out_dir, len(training.state_variables(model)))[1])
    figure = validation.make_estimator(model, dataset.x_valid, config)()
    exact = quadrature.exact_log_px(model.decoder, dataset.x_valid).mean()
    assert abs(figure - exact) < 0.01, (figure, exact)
    assert run.metrics["validation_points"] == dataset.n_valid
    assert "quadrature" in run.metrics["validation_method"]

    deeper = dataclasses.replace(config, latent_dim=3, ais_steps=20, ais_chains=4,
                                 bdmc_points=4, out=str(tmp_path / "vae3"))
    metrics = training.train(deeper, progress=False).metrics
    assert metrics["validation_points"] == validation.AIS_POINTS
    assert "AIS" in metrics["validation_method"] and np.isfinite(metrics["valid_log_px"])


def swapped_test_images(name, options):
    """digits with every test image changed (its pixels flipped)."""
    dataset = data.load("digits", options)
    return dataset._replace(name=name, x_test=1 - dataset.x_test)


SWAPPED = data.DatasetKind(description="digits with its test images flipped",
                           claims=lambda name: name == "digits-swapped-test",
                           load=swapped_test_images, n_points=lambda name: data.n_points("digits"),
                           n_pixels=lambda name: data.n_pixels("digits"))


@pytest.mark.slow
def test_the_test_images_never_enter_training_or_the_choice_of_step(tmp_path):
    from harness import training

    data.register_kind(SWAPPED)
    try:
        config = registry.default_config("vae", dataset="digits", **SETTINGS,
                                         out=str(tmp_path / "digits"))
        swapped = dataclasses.replace(config, dataset="digits-swapped-test",
                                      out=str(tmp_path / "swapped"))
        runs = [training.train(c, progress=False) for c in (config, swapped)]
    finally:
        data.unregister_kind(SWAPPED)
    a, b = (run.metrics for run in runs)
    assert a["log_px"] != b["log_px"]                    # the test figure sees the change
    assert a["best_step"] == b["best_step"] and a["valid_log_px"] == b["valid_log_px"]
    with np.load(runs[0].out_dir / rundir.STATE_FILE) as s, \
            np.load(runs[1].out_dir / rundir.STATE_FILE) as t:
        assert s.files == t.files and all((s[k] == t[k]).all() for k in s.files)
    columns = [[row[rundir.VALIDATION_COLUMN] for row in run.history] for run in runs]
    assert columns[0] == columns[1] and len(columns[0]) == 3


@pytest.mark.slow
def test_a_resumed_run_keeps_the_best_step_bit_for_bit(tmp_path, capsys):
    # A constant rate: a cosine's decay depends on the run's length, which --resume raises.
    flags = [*(f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()), "--schedule",
             "constant"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert call_main(capsys, "train_vae.py", "--dataset", "digits", *flags,
                     "--out", straight).returncode == 0
    assert call_main(capsys, "train_vae.py", "--dataset", "digits", *flags, "--steps", "40",
                     "--out", split).returncode == 0
    ended = call_main(capsys, "train_vae.py", "--resume", "--out", split, "--steps", "60")
    assert ended.returncode == 0, ended.stderr
    assert "evaluated at the best step" in ended.stdout
    with np.load(straight / rundir.STATE_FILE) as s, np.load(split / rundir.STATE_FILE) as t:
        assert "best_step" in s.files and s.files == t.files
        assert all((s[k] == t[k]).all() for k in s.files)
    m, n = (json.loads((p / rundir.METRICS_FILE).read_text()) for p in (straight, split))
    assert (m["best_step"], m["valid_log_px"], m["log_px"]) == (
        n["best_step"], n["valid_log_px"], n["log_px"])
    history = rundir.read_history(straight / rundir.HISTORY_FILE)
    best = max((row for row in history if row[rundir.VALIDATION_COLUMN] != ""),
               key=lambda row: row[rundir.VALIDATION_COLUMN])
    assert m["best_step"] == best["step"]

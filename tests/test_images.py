"""The real image data sets: digits and mnist5k from the files their wheels bundle, mnist from
a Keras-format file (a small synthetic one stands in here), their fixed splits and
binarisations, and every way a --data-file can be wrong, refused in one line."""

import csv
import json
import os
import re

import numpy as np
import pytest

import data
from tests.conftest import ROOT, assert_refused, call_main, copy_run

# Known answers: the split is fixed by data.SPLIT_SEED and NumPy's PCG64, the same on every
# machine; these are its first test classes and the on-pixel counts of the static images.
DIGITS_FIRST_TEST_CLASSES = [7, 1, 1, 6, 2, 9, 4, 8, 7, 7, 4, 4]
DIGITS_TEST_ON_PIXELS, DIGITS_TRAIN_ON_PIXELS = 6705, 26982
MNIST5K_FIRST_TEST_CLASSES = [8, 6, 2, 9, 7, 0, 4, 7, 7, 1, 2, 6]
MNIST5K_TEST_ON_PIXELS = 103387


def keras_file(path, n_train=30, n_test=20, **replace):
    """A small file in keras.datasets.mnist's format: grey 28 x 28 uint8 images, 10 classes."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": np.arange(n_train, dtype=np.uint8) % 10,
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": np.arange(n_test, dtype=np.uint8) % 10}
    arrays.update(replace)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_digits_is_scikit_learns_split_80_20_by_class_the_same_everywhere():
    dataset = data.load("digits")
    assert dataset.x.shape == (1438, 64) and dataset.x_test.shape == (359, 64)
    assert dataset.image_shape == (8, 8) and dataset.optimum_log_px is None
    assert data.n_points("digits") == dataset.n_points
    all_labels = np.concatenate([dataset.labels, dataset.labels_test])
    np.testing.assert_array_equal(np.bincount(all_labels),
                                  [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    np.testing.assert_array_equal(np.bincount(dataset.labels_test),
                                  np.round(0.2 * np.bincount(all_labels)))
    assert dataset.labels_test[:12].tolist() == DIGITS_FIRST_TEST_CLASSES
    assert set(np.unique(dataset.x)) == {0.0, 1.0} and set(np.unique(dataset.x_test)) <= {0, 1}
    assert (dataset.x_test.sum(), dataset.x.sum()) == (DIGITS_TEST_ON_PIXELS,
                                                       DIGITS_TRAIN_ON_PIXELS)
    again = data.load("digits")
    np.testing.assert_array_equal(again.x_test, dataset.x_test)
    assert "stratified" in dataset.split and "1438 training and 359 test" in dataset.split


def test_mnist5k_is_mlxtends_subset_with_100_test_images_per_class():
    dataset = data.load("mnist5k")
    assert dataset.x.shape == (4000, 784) and dataset.x_test.shape == (1000, 784)
    assert dataset.image_shape == (28, 28)
    np.testing.assert_array_equal(np.bincount(dataset.labels_test), [100] * 10)
    np.testing.assert_array_equal(np.bincount(dataset.labels), [400] * 10)
    assert dataset.labels_test[:12].tolist() == MNIST5K_FIRST_TEST_CLASSES
    assert dataset.x_test.sum() == MNIST5K_TEST_ON_PIXELS


def test_static_binarisation_thresholds_above_half_and_dynamic_keeps_grey_levels():
    options = data.DataOptions(data.DYNAMIC)
    dynamic, static = data.load("digits", options), data.load("digits")
    assert len(np.unique(dynamic.x)) == 17 and dynamic.x.max() == 1.0   # 0, 1/16, ..., 1
    np.testing.assert_array_equal(static.x, (dynamic.x > 0.5).astype(np.float32))
    np.testing.assert_array_equal(data.threshold(np.array([0.5, 0.5001])), [0.0, 1.0])
    # The evaluated images are one fixed Bernoulli draw: binary, the same on every load, and
    # on with about the grey level's frequency.
    test = dynamic.x_test
    assert set(np.unique(test)) == {0.0, 1.0}
    np.testing.assert_array_equal(data.load("digits", options).x_test, test)
    train = data.training_subset(dynamic, 359)
    assert set(np.unique(train)) == {0.0, 1.0}
    assert abs(train.mean() - dynamic.x[:359].mean()) < 0.01


def test_dynamic_batches_are_bernoulli_draws_of_the_grey_levels():
    import tensorflow as tf

    grey = tf.constant(np.full((4, 1000), 0.3, np.float32))
    batch = data.sample_batch(grey, 64, tf.constant([1, 2], tf.int64), dynamic=True)
    assert set(np.unique(batch.numpy())) == {0.0, 1.0}
    assert abs(float(tf.reduce_mean(batch)) - 0.3) < 0.01     # 64000 draws: sd 0.002
    again = data.sample_batch(grey, 64, tf.constant([1, 2], tf.int64), dynamic=True)
    np.testing.assert_array_equal(again.numpy(), batch.numpy())
    other = data.sample_batch(grey, 64, tf.constant([1, 3], tf.int64), dynamic=True)
    assert not np.array_equal(other.numpy(), batch.numpy())


def test_mnist_reads_a_keras_format_file_with_its_own_split(tmp_path):
    path = keras_file(tmp_path / "mnist.npz")
    dataset = data.load("mnist", data.DataOptions(data_file=str(path)))
    assert dataset.x.shape == (30, 784) and dataset.x_test.shape == (20, 784)
    assert dataset.image_shape == (28, 28) and "30 training and 20 test" in dataset.split
    with np.load(path) as raw:
        # Each part keeps its images, in an order fixed by the split seed.
        order = np.random.default_rng(data.SPLIT_SEED).permutation(30)
        np.testing.assert_array_equal(dataset.x, data.threshold(
            raw["x_train"].reshape(30, -1)[order] / 255))
        np.testing.assert_array_equal(np.sort(dataset.labels_test), np.sort(raw["y_test"]))
    shown, classes = data.shown_points(dataset)
    assert len(shown) == 20 and list(classes) == sorted(classes)
    assert data.test_images(dataset, 5).shape == (5, 784)


def test_the_missing_keras_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValueError, match="mnist.npz: no such file; run keras.datasets.mnist"):
        data.load("mnist")


def bad_file(tmp_path, fault: str):
    path = tmp_path / "mnist.npz"
    if fault == "missing":
        return tmp_path / "absent.npz"
    if fault == "a directory":
        path.mkdir()
        return path
    if fault == "not an npz":
        path.write_text("x_train,y_train\n")
        return path
    if fault == "truncated":
        keras_file(path)
        path.write_bytes(path.read_bytes()[:200])
        return path
    replace = {"without y_test": {"y_test": None},
               "wrong shape": {"x_train": np.zeros((30, 28, 27), np.uint8)},
               "wrong rank": {"x_test": np.zeros((20, 784), np.uint8)},
               "wrong dtype": {"x_train": np.zeros((30, 28, 28), np.float32)},
               "labels of another length": {"y_train": np.zeros(29, np.uint8)},
               "values above 255": {"x_test": np.full((20, 28, 28), 256, np.int32)},
               "negative values": {"x_train": np.full((30, 28, 28), -1, np.int16)},
               "empty": {"x_train": np.zeros((0, 28, 28), np.uint8),
                         "y_train": np.zeros(0, np.uint8)}}[fault]
    return keras_file(path, **replace)


FAULTS = {"missing": "no such file", "a directory": "is not a file",
          "not an npz": "is not an .npz file", "truncated": "is not an .npz file",
          "without y_test": "lacks y_test", "wrong shape": "expected [images, 28, 28]",
          "wrong rank": "expected [images, 28, 28]", "wrong dtype": "must hold integers",
          "labels of another length": "one class per image",
          "values above 255": "expected grey levels 0 to 255",
          "negative values": "expected grey levels 0 to 255", "empty": "is empty"}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_bad_data_file_is_one_line(tmp_path, fault):
    with pytest.raises(ValueError, match=re.escape(FAULTS[fault])) as error:
        data.load("mnist", data.DataOptions(data_file=str(bad_file(tmp_path, fault))))
    assert "\n" not in str(error.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its permissions")
def test_an_unreadable_data_file_is_one_line(tmp_path):
    path = keras_file(tmp_path / "mnist.npz")
    path.chmod(0)
    with pytest.raises(ValueError, match="cannot be read"):
        data.load("mnist", data.DataOptions(data_file=str(path)))


@pytest.mark.parametrize("fault", ["missing", "not an npz", "wrong dtype"])
def test_the_scripts_refuse_a_bad_data_file_before_writing(tmp_path, capsys, fault):
    path, out = bad_file(tmp_path, fault), tmp_path / "run"
    assert_refused(call_main(capsys, "train_vae.py", "--dataset", "mnist", "--data-file", path,
                             "--out", out), FAULTS[fault])
    assert not out.exists()


@pytest.mark.parametrize("script,args,words", [
    ("train_avb.py", ["--dataset", "digits", "--test-points", "360"],
     ["--test-points 360 is larger than digits's test split of 359 images"]),
    ("train_vae.py", ["--dataset", "9px", "--test-points", "3"], ["holds no test images"]),
    ("train_vae.py", ["--dataset", "digits", "--data-file", "x.npz"],
     ["--data-file is read only for the data set mnist"]),
    ("train_vae.py", ["--dataset", "fashion"], ["'fashion' is not a data set name", "mnist5k"]),
    ("train_vae.py", ["--dataset", "digits", "--binarisation", "grey"], ["invalid choice"]),
    ("compare.py", ["--dataset", "fashion"], ["'fashion' is not a data set name"]),
    ("sweep.py", ["--datasets", "digits", "fashion"], ["'fashion' is not a data set name"])])
def test_bad_data_settings_are_one_line_before_writing(tmp_path, capsys, script, args, words):
    out = tmp_path / "out"
    flag = "--runs-root" if script == "compare.py" else "--out"
    assert_refused(call_main(capsys, script, *args, flag, out), *words)
    assert not out.exists()


def test_compare_and_sweep_refuse_a_missing_mnist_file_before_training(tmp_path, capsys):
    absent = str(tmp_path / "absent.npz")
    assert_refused(call_main(capsys, "compare.py", "--dataset", "mnist", "--data-file", absent,
                             "--runs-root", tmp_path / "runs"), "no such file")
    assert_refused(call_main(capsys, "sweep.py", "--datasets", "mnist", "--data-file", absent,
                             "--models", "vae", "--seeds", "0", "--out", tmp_path / "sweep"),
                   "no such file")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# A model trained and evaluated on digits with tiny settings, through every entry point.

@pytest.fixture
def digit_runs(trained_run, tmp_path):
    """VAE and AVB runs on digits (copies of the cached ones), named as compare.py finds them."""
    for model in ("vae", "avb"):
        copy_run(trained_run, f"{model}-digits-seed0", tmp_path / "runs")
    return tmp_path / "runs"


@pytest.mark.slow
def test_a_digits_run_is_evaluated_on_held_out_images(digit_runs):
    import json

    out = digit_runs / "vae-digits-seed0"
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    # 1438 training images, 10 % of each class of them held out for validation.
    assert (config["n_points"], config["n_test"], config["image_shape"]) == (1295, 359, [8, 8])
    assert config["binarisation"] == "static" and "seed 2017" in config["split"]
    assert config["validation_fraction"] == 0.1 and "143 images" in config["split"]
    # One validation evaluation, at the last step (eval_every is larger than the run).
    assert (metrics["best_step"], metrics["validation_points"]) == (30, 143)
    assert metrics["valid_log_px"] < 0
    assert config["shown_labels"] == [c for c in range(10) for _ in range(10)]
    assert metrics["evaluated_on"] == "test" and metrics["n_evaluated"] == 20
    assert len(metrics["log_px_per_point"]) == 20 and metrics["optimum_log_px"] is None
    assert metrics["train_log_px"] < 0 and metrics["log_px_image_stderr"] > 0
    assert metrics["elbo"] <= metrics["log_px"] + 0.05
    with np.load(out / "posterior.npz") as posterior:
        assert posterior["z"].shape == (3, 100, 8, 2)
        assert posterior["shown_images"].shape == (100, 64)
        np.testing.assert_array_equal(posterior["shown_images"],
                                      data.shown_points(data.load("digits"))[0])
    avb = json.loads((digit_runs / "avb-digits-seed0" / "metrics.json").read_text())
    assert "elbo_estimated_by_T" in avb and "elbo_converged_fraction" in avb


@pytest.mark.slow
def test_compare_draws_and_tabulates_digits_runs(digit_runs, capsys):
    result = call_main(capsys, "compare.py", "--dataset", "digits", "--models", "vae", "avb",
                       "--runs-root", digit_runs)
    assert result.returncode == 0, result.stderr
    out = digit_runs / "compare-digits"
    text = (out / "results.md").read_text()
    assert ("test log p(x) | training-subset log p(x) | train-test gap | validation log p(x) "
            "| best step") in text
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {row["best_step"] for row in rows} == {"30.0"}
    for row in rows:     # one run per model: its gap is its own two figures' difference
        assert float(row["train_test_gap"]) == pytest.approx(
            float(row["train_log_px"]) - float(row["log_px"]))
    assert "Evaluated on 20 held-out test images of digits (static binarisation" in text
    for name in ("metrics.png", "latent-vae.png", "latent-avb.gif", "posterior-avb.png",
                 "critic-avb.png"):
        assert (out / name).stat().st_size > 0


@pytest.mark.slow
def test_the_documented_full_mnist_command_runs_on_a_keras_format_file(tmp_path, capsys):
    """The command docs/results-images.md gives for the paper's D = 32 AVB+AC setting, with
    its sizes shrunk (later flags win), on a small synthetic file in the Keras format."""
    import shlex

    page = (ROOT / "docs" / "results-images.md").read_text()
    block = page.split("<!-- full-mnist-command -->\n```\n", 1)[1].split("```", 1)[0]
    words = shlex.split(block.replace("\\\n", " "))
    assert words[:2] == ["python", "train_avb.py"] and "--latent-dim" in words
    shrunk = ["--data-file", keras_file(tmp_path / "mnist.npz", n_train=100, n_test=20),
              "--steps", "4", "--log-every", "2", "--eval-every", "2", "--ais-steps", "3",
              "--ais-chains", "2", "--test-points", "4", "--bdmc-points", "2",
              "--encoder-width", "8", "--decoder-width", "8", "--adversary-width", "8",
              "--posterior-samples", "4", "--out", tmp_path / "run"]
    ended = call_main(capsys, "train_avb.py", *words[2:], *shrunk)
    assert ended.returncode == 0, ended.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["model"], config["latent_dim"], config["learning_rate"]) == ("avb-ac", 32, 5e-5)
    assert metrics["log_px_method"] == "ais" and metrics["best_step"] in (2, 4)
    assert "AIS" in metrics["validation_method"]

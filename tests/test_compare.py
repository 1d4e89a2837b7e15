"""compare.py: a smoke run on tiny runs (missing ones trained first), seed aggregation, the
refusals of bad run directories, and the reported log p(x) against an independent quadrature."""

import contextlib
import csv
import io
import json
import shutil

import imageio.v3 as iio
import keras
import numpy as np
import pytest

import compare
from data import load
from tests.conftest import TINY_SETTINGS, call_main, copy_run as copy_cached_run

# Its module fixture is built once: the module's tests run on one worker.
pytestmark = pytest.mark.xdist_group("test_compare")

SEEDS = (0, 1)
COMPARE_STDOUT = {}    # runs root -> what compare.py printed when it compared them
MODELS = ("vae", "avb", "avb-ac")      # compare.py's default set
LABELS = {"vae": "VAE", "avb": "AVB", "avb-ac": "AVB+AC"}
OUTPUTS = ("metrics.png", *(f"latent-{m}.{ext}" for m in MODELS for ext in ("png", "gif")),
           *(f"posterior-{m}.png" for m in MODELS), "critic-avb.png", "critic-avb-ac.png",
           "results.md", "results.csv")


@pytest.fixture(scope="module")
def runs_root(trained_run, tmp_path_factory):
    """Tiny runs of the three models, two seeds, on 4px (copies of the cached ones), and
    compare.py's comparison of them in runs_root/compare-4px."""
    root = tmp_path_factory.mktemp("runs")
    for model in MODELS:
        for seed in SEEDS:
            copy_cached_run(trained_run, f"{model}-4px-seed{seed}", root)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        compare.main(["--runs-root", str(root), "--seeds", *map(str, SEEDS)])
    COMPARE_STDOUT[root] = printed.getvalue()
    return root


@pytest.mark.slow
def test_missing_runs_are_trained_first(tmp_path, capsys):
    ended = call_main(capsys, "compare.py", "--runs-root", tmp_path, "--models", "vae",
                      "--seeds", "0", "--train-steps", "10")
    assert ended.returncode == 0, ended.stderr
    assert f"{tmp_path / 'vae-4px-seed0'} is missing: training" in ended.stdout
    config = json.loads((tmp_path / "vae-4px-seed0" / "config.json").read_text())
    assert config["steps"] == 10 and config["seed"] == 0
    assert f"wrote {tmp_path / 'compare-4px' / 'results.md'}" in ended.stdout


def read_results(path):
    with open(path, newline="") as f:
        return {row["model"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
def test_every_file_is_written(runs_root):
    for model in MODELS:
        for seed in SEEDS:
            config = json.loads((runs_root / f"{model}-4px-seed{seed}" / "config.json")
                                .read_text())
            assert config["steps"] == TINY_SETTINGS["steps"] and config["seed"] == seed
    out = runs_root / "compare-4px"
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0
        assert f"wrote {out / name}" in COMPARE_STDOUT[runs_root]
    assert iio.imread(out / "metrics.png").ndim == 3
    assert iio.imread(out / "latent-avb.gif", index=None).shape[0] >= 1
    assert "| AVB |" in (out / "results.md").read_text()


@pytest.mark.slow
def test_seeds_are_aggregated_in_the_table(runs_root):
    rows = read_results(runs_root / "compare-4px" / "results.csv")
    assert set(rows) == set(LABELS.values())
    for model, label in LABELS.items():
        row = rows[label]
        metrics = [json.loads((runs_root / f"{model}-4px-seed{seed}" / "metrics.json")
                              .read_text()) for seed in SEEDS]
        log_px = [m["log_px"] for m in metrics]
        assert row["seeds"] == "0 1" and row["dataset"] == "4px"
        assert float(row["log_px"]) == pytest.approx(np.mean(log_px))
        assert float(row["log_px_min"]) == pytest.approx(min(log_px))
        assert float(row["log_px_max"]) == pytest.approx(max(log_px))
        assert float(row["posterior_gap"]) == pytest.approx(
            np.mean([m["posterior_gap"] for m in metrics]))
    assert rows["VAE"]["elbo_estimated_by_T"] == "" and rows["AVB"]["elbo_estimated_by_T"]


def compare_main(capsys, *args):
    """(exit status, stdout, stderr) of compare.main in this process."""
    try:
        compare.main(list(args))
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.slow
def test_existing_runs_are_compared_without_training(runs_root, tmp_path, capsys):
    status, out, err = compare_main(capsys, "--runs-root", str(runs_root), "--seeds", "1", "1",
                                    "--x-axis", "seconds", "--out", str(tmp_path / "c"))
    assert status == 0, err
    assert "missing" not in out
    rows = read_results(tmp_path / "c" / "results.csv")
    assert [row["seeds"] for row in rows.values()] == ["1"] * len(MODELS)
    assert {p.name for p in (tmp_path / "c").iterdir()} == set(OUTPUTS)


def copy_run(runs_root, tmp_path, name="avb-4px-seed0"):
    shutil.copytree(runs_root / name, tmp_path / name)
    return tmp_path / name


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 7])


def garble(path):
    path.write_bytes(b"PK\x03\x04 not a keras archive")


@pytest.mark.slow
@pytest.mark.parametrize("damage,words", [
    (lambda run: shutil.rmtree(run), ["no such run directory"]),
    (lambda run: (run / "history.csv").unlink(), ["history.csv is missing"]),
    (lambda run: truncate(run / "history.csv"), ["history.csv", "truncated"]),
    (lambda run: garble(run / "decoder.keras"), ["decoder.keras", "cannot be loaded"]),
    (lambda run: (run / "config.json").write_text("{"), ["config.json", "not valid JSON"]),
    (lambda run: truncate(run / "posterior.npz"), ["posterior.npz", "not a readable"]),
])
def test_bad_run_directories_are_one_line_errors(runs_root, tmp_path, capsys, damage, words):
    run = copy_run(runs_root, tmp_path)
    damage(run)
    out = tmp_path / "comparison"
    status, _, err = compare_main(capsys, "--runs", str(runs_root / "vae-4px-seed0"), str(run),
                                  "--out", str(out))
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(word in err for word in words), err
    assert not out.exists()


@pytest.mark.slow
def test_runs_of_different_data_sets_are_refused(runs_root, trained_run, tmp_path, capsys):
    nine = trained_run("vae-9px-seed0")
    status, _, err = compare_main(capsys, "--runs", str(runs_root / "avb-4px-seed0"),
                                  str(nine), "--out", str(tmp_path / "c"))
    assert status == 2 and "different data sets" in err and "9px" in err and "4px" in err
    status, _, err = compare_main(capsys, "--runs", str(nine),
                                  "--dataset", "4px", "--out", str(tmp_path / "c"))
    assert status == 2 and "dataset 9px, not 4px" in err
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_out_through_a_file_is_refused(runs_root, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    status, _, err = compare_main(capsys, "--runs-root", str(runs_root),
                                  "--out", str(tmp_path / "file" / "c"))
    assert status == 2 and "is a file" in err


@pytest.mark.slow
def test_an_unfinished_run_is_resumed(runs_root, tmp_path, capsys):
    shutil.copytree(runs_root / "vae-4px-seed0", tmp_path / "vae-4px-seed0")
    shutil.copytree(runs_root / "avb-4px-seed0", tmp_path / "avb-4px-seed0")
    metrics = tmp_path / "vae-4px-seed0" / "metrics.json"
    expected = json.loads(metrics.read_text())
    metrics.unlink()
    status, out, err = compare_main(capsys, "--runs-root", str(tmp_path), "--models", "vae", "avb")
    assert status == 0, err
    assert f"{tmp_path / 'vae-4px-seed0'} is unfinished: resuming" in out
    assert "avb-4px-seed0 is" not in out
    assert json.loads(metrics.read_text())["log_px"] == pytest.approx(expected["log_px"],
                                                                       abs=1e-6)


@pytest.mark.slow
def test_reported_log_px_matches_an_independent_quadrature(runs_root):
    """log p(x) = log sum over a fine grid of p(x|z) N(z; 0, I) dz, with the saved decoder
    loaded from disk, on a wider and finer grid than the evaluation uses."""
    run = runs_root / "avb-4px-seed0"
    decoder = keras.models.load_model(run / "decoder.keras", compile=False)
    side = np.linspace(-8.0, 8.0, 801)
    z = np.stack(np.meshgrid(side, side), axis=-1).reshape(-1, 2).astype(np.float32)
    logits = decoder.predict(z, batch_size=65536, verbose=0).astype(np.float64)
    x = load("4px").x.astype(np.float64)
    log_sigmoid = lambda a: -np.logaddexp(0.0, -a)   # noqa: E731
    log_px_given_z = x @ log_sigmoid(logits).T + (1 - x) @ log_sigmoid(-logits).T
    log_pz = -0.5 * (z.astype(np.float64) ** 2).sum(axis=1) - np.log(2 * np.pi)
    log_area = 2 * np.log(side[1] - side[0])
    terms = log_px_given_z + log_pz + log_area
    peak = terms.max(axis=1, keepdims=True)
    log_px = (peak[:, 0] + np.log(np.exp(terms - peak).sum(axis=1)))
    metrics = json.loads((run / "metrics.json").read_text())
    np.testing.assert_allclose(metrics["log_px_per_point"], log_px, atol=1e-3)
    assert metrics["log_px"] == pytest.approx(log_px.mean(), abs=1e-3)


def test_help_explains_every_flag(capsys):
    """(That --help loads no TensorFlow: test_refusals, in a fresh Python.)"""
    text = call_main(capsys, "compare.py", "--help").stdout
    for flag in ("--dataset", "--seeds", "--runs", "--runs-root", "--x-axis", "--train-steps",
                 "--out"):
        assert flag in text


def test_bad_flag_values_are_one_line_usage_errors(capsys):
    for args, words in ((["--dataset", "10px"], ["10 is not a perfect square"]),
                        (["--train-steps", "0"], ["--train-steps", "positive integer"]),
                        (["--x-axis", "hours"], ["steps", "seconds"]),
                        (["--seeds", "0", "--runs", "a"], ["not allowed with"])):
        status, _, err = compare_main(capsys, *args)
        assert status == 2 and len(err.strip().splitlines()) == 1, err
        assert all(word in err for word in words), err


@pytest.mark.slow
def test_a_diverging_elbo_is_shown_as_an_upper_estimate(runs_root, tmp_path, capsys):
    run = copy_run(runs_root, tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["elbo_converged"] = False
    (run / "metrics.json").write_text(json.dumps(metrics))
    status, out, err = compare_main(capsys, "--runs", str(runs_root / "vae-4px-seed0"), str(run),
                                    "--out", str(tmp_path / "c"))
    assert status == 0, err
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert f"<= {metrics['elbo']:.4f} (diverging)" in rows["AVB"]
    assert f">= {metrics['posterior_gap']:.4f}" in rows["AVB"]
    assert "diverging" not in rows["VAE"]
    assert read_results(tmp_path / "c" / "results.csv")["AVB"]["elbo_converged"] == "False"

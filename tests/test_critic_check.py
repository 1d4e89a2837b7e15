"""The adversary on a known q: a fresh T trained against a frozen Gaussian q gives the
closed-form KL; critic_check.py checks a saved run's q and refuses an implicit one."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import critic_check
from evaluation import critic_fit
import registry
from configs import CriticSetting
from tests.conftest import call_main

# Four data points (one-hot rows), each with its own Gaussian q(z|x), one of them narrow.
X = np.eye(4, dtype=np.float32)
MEAN = np.array([[1.5, 0.5], [-1.0, 1.0], [0.0, -1.5], [0.8, -0.8]], np.float32)
LOG_STD = np.array([[-0.7, -0.7], [-1.0, -0.5], [-0.3, -1.2], [-1.5, -1.5]], np.float32)
CLOSED_FORM_KL = 0.5 * np.sum(MEAN**2 + np.exp(2 * LOG_STD) - 1 - 2 * LOG_STD, 1)


def sample_q(x, seed):
    mean, log_std = x @ MEAN, x @ LOG_STD
    return mean + tf.exp(log_std) * tf.random.stateless_normal(tf.shape(mean), seed)


def log_q(x, z):
    mean, log_std = x @ MEAN, x @ LOG_STD
    return tf.reduce_sum(-0.5 * np.log(2 * np.pi) - log_std
                         - 0.5 * tf.square((z - mean) / tf.exp(log_std)), -1)


def test_a_fresh_adversary_on_a_gaussian_q_gives_the_closed_form_kl():
    setting = CriticSetting(adversary_width=64, adversary_depth=2, adversary_learning_rate=5e-3,
                            steps=3000, batch_size=512, schedule="cosine")
    result = critic_fit.check(sample_q, log_q, X, 2, setting, seed=0, samples=8192)
    # The true KL by q's density over 8192 draws: its Monte Carlo error is about 0.015 here.
    np.testing.assert_allclose(result.true_kl, CLOSED_FORM_KL, atol=0.05)
    np.testing.assert_allclose(result.critic_kl, CLOSED_FORM_KL, atol=0.05)
    np.testing.assert_allclose(result.error, result.critic_kl - result.true_kl)
    assert np.all(result.error_stderr < 0.01)
    np.testing.assert_allclose(result.q_scale, np.exp(LOG_STD.mean(1)), rtol=0.03)


def test_an_untrained_adversary_is_far_from_the_kl():
    # The check can fail: with one step T has learnt nothing of log q.
    setting = CriticSetting(64, 2, 5e-3, steps=1, batch_size=64)
    result = critic_fit.check(sample_q, log_q, X, 2, setting, seed=0, samples=1024)
    assert np.abs(result.error).max() > 0.5


DEFAULT = CriticSetting(64, 2, 5e-3, 10000, 128)


def test_settings_vary_one_flag_at_a_time_or_cross_with_grid():
    values = {"adversary_width": [32, 64], "steps": [100, 200]}
    one_at_a_time = critic_check.settings_to_check(DEFAULT, values, grid=False)
    assert one_at_a_time == [DEFAULT, dataclasses.replace(DEFAULT, adversary_width=32),
                             dataclasses.replace(DEFAULT, steps=100),
                             dataclasses.replace(DEFAULT, steps=200)]
    crossed = critic_check.settings_to_check(DEFAULT, values, grid=True)
    assert crossed[0] == DEFAULT and len(crossed) == 5
    assert dataclasses.replace(DEFAULT, adversary_width=32, steps=200) in crossed
    # A setting is named by where it differs from the default.
    assert [critic_check.setting_name(s, DEFAULT) for s in crossed] == [
        "default", "adversary_width=32 steps=100", "adversary_width=32 steps=200", "steps=100",
        "steps=200"]


@pytest.mark.slow
def test_the_check_of_a_saved_run_writes_its_tables(trained_run, tmp_path, capsys,
                                                    monkeypatch):
    vae_run = trained_run("vae-4px-seed0")
    monkeypatch.setattr(critic_check, "CHECK_STEPS", 100)   # the default setting's steps
    config = critic_check.CheckConfig(vae_run, {"steps": [50]}, seeds=(0,), samples=256,
                                      out=tmp_path / "check")
    assert critic_check.check(config) == 0
    results = (tmp_path / "check" / "results.csv").read_text().splitlines()
    assert len(results) == 1 + 2 * 4         # settings x the 4 points
    summary = (tmp_path / "check" / "summary.md").read_text()
    assert "| default | 1 |" in summary and "| steps=50 | 1 |" in summary
    # The default adversary is the AVB's on 4px.
    avb = registry.default_config("avb", dataset="4px")
    assert critic_check.default_setting({"dataset": "4px"}).adversary_width == avb.adversary_width
    assert "steps=50: mean error" in capsys.readouterr().out


def test_an_implicit_q_is_refused_in_one_line(tmp_path, capsys):
    run = tmp_path / "avb"
    run.mkdir()
    (run / "config.json").write_text('{"model": "avb", "dataset": "4px", "seed": 0, '
                                     '"steps": 1, "n_points": 4, "image_shape": [2, 2]}')
    result = call_main(capsys, "critic_check.py", run)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "implicit" in result.stderr


def test_help_explains_every_flag(capsys):
    """(That --help loads no TensorFlow: test_refusals, in a fresh Python.)"""
    text = call_main(capsys, "critic_check.py", "--help").stdout
    for flag in ["--adversary-width", "--adversary-depth", "--adversary-learning-rate",
                 "--steps", "--batch-size", "--schedule", "--seeds", "--samples", "--grid",
                 "--out"]:
        assert flag in text

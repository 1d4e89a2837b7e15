"""The model interface's proof, docs/extending.md's recipe followed inside this file with no
edit to any other: a model of its own (a VAE whose posterior has a fixed variance, with a
config class of its own) and a variant of an existing model (a beta-VAE: the VAE with a setting
of its own) are declared here, registered, trained by the scripts' entry points and the shared
compiled loop, evaluated, swept over two values of the variant's setting, and compared beside
a VAE by compare.py."""

import csv
import math
import re
from dataclasses import dataclass, field

import keras
import numpy as np
import pytest
import tensorflow as tf

import compare
import networks
import registry
from harness import rundir
from harness import training
from configs import EncoderDecoderConfig, VAEConfig
from densities import bernoulli_log_likelihood, gaussian_log_density, standard_normal_log_density
from model import Model, ModelSpec, explicit_terms, term_means
from tests.conftest import (ROOT, SWEEP_TINY, TINY, TINY_SETTINGS, call_main, copy_run,
                            project_modules)
from vae import VAE


@dataclass
class FixedVarianceConfig(EncoderDecoderConfig):
    posterior_std: float = field(default=0.3, metadata={"help": "std of q(z|x) in each dim"})


class FixedVarianceVAE(Model):
    """q(z|x) = N(mu(x), posterior_std^2 I): only the mean is learned."""

    def __init__(self, spec, config: FixedVarianceConfig, n_pixels: int):
        super().__init__(spec)
        self.latent_dim = config.latent_dim
        x = keras.Input((n_pixels,), name="x")
        h = networks.mlp(x, config.encoder_width, config.encoder_depth, "encoder",
                         config.activation)
        self.encoder = keras.Model(x, keras.layers.Dense(self.latent_dim, name="z_mean")(h),
                                   name="encoder")
        self.decoder = networks.build_decoder(
            n_pixels, config.decoder_width, config.decoder_depth, config.activation,
            latent_dim=self.latent_dim)
        self.log_var = 2.0 * math.log(config.posterior_std)
        self.variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer = networks.adam(config.learning_rate, config.schedule, config.steps)
        self.optimizer.build(self.variables)

    @property
    def optimizers(self) -> list:
        return [self.optimizer]

    def sample_posterior(self, x, seed):
        z_mean = self.encoder(x)
        return z_mean + math.exp(0.5 * self.log_var) * tf.random.stateless_normal(
            tf.shape(z_mean), seed)

    def terms(self, x, seed):
        z_mean, z = self.encoder(x), self.sample_posterior(x, seed)
        return explicit_terms(bernoulli_log_likelihood(x, self.decoder(z)),
                              standard_normal_log_density(z),
                              gaussian_log_density(z, z_mean, tf.fill(tf.shape(z), self.log_var)))

    def train_step(self, x, seed) -> dict:
        with tf.GradientTape() as tape:
            terms = self.terms(x, seed)
            loss = -tf.reduce_mean(terms.elbo)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return term_means(terms)


@dataclass
class BetaVAEConfig(VAEConfig):
    beta: float = field(default=0.5, metadata={"help": "weight of the KL term"})


class BetaVAE(VAE):
    """The VAE trained on E_q[log p(x|z)] - beta KL(q(z|x) || p(z)), one sample z ~ q(z|x)."""

    def __init__(self, spec, config: BetaVAEConfig, n_pixels: int):
        super().__init__(spec, config, n_pixels)
        self.beta = config.beta

    def train_step(self, x, seed) -> dict:
        with tf.GradientTape() as tape:
            terms = self.terms(x, seed)
            kl = terms.log_qz_given_x - terms.log_pz           # single-sample KL estimate
            loss = -tf.reduce_mean(terms.log_px_given_z - self.beta * kl)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return term_means(terms)


SPEC = ModelSpec(name="fixed-var-vae", label="VAE, fixed variance",
                 config_class=FixedVarianceConfig, implementation=FixedVarianceVAE,
                 description="a VAE whose q(z|x) has a fixed standard deviation",
                 script="train_vae.py")
BETA_SPEC = ModelSpec(name="beta-vae", label="beta-VAE (beta={beta})",
                      config_class=BetaVAEConfig, implementation=BetaVAE,
                      description="the VAE with its KL term weighted by beta",
                      conflicts={"importance_samples": 1, "posterior": "gaussian"})
SPECS = (SPEC, BETA_SPEC)      # what a Ray worker registers (registry.register_modules)
STEPS = 300


@pytest.fixture
def registered():
    for spec in SPECS:
        registry.register(spec)
    yield SPEC
    for spec in SPECS:
        registry.unregister(spec.name)


@pytest.mark.slow
def test_a_model_defined_here_trains_evaluates_and_is_compared(registered, tmp_path, capsys):
    compare.main(["--runs-root", str(tmp_path), "--models", "vae", "fixed-var-vae",
                  "--train-steps", str(STEPS)])
    out = capsys.readouterr().out
    run = rundir.read_run(tmp_path / "fixed-var-vae-4px-seed0")
    assert f"{run.path} is missing: training VAE, fixed variance" in out
    assert run.config["model"] == "fixed-var-vae" and run.config["posterior_std"] == 0.3
    assert list(run.history)[2:6] == ["log_px_given_z", "log_pz", "log_qz_given_x", "elbo"]
    # Exact log q: the true ELBO averages the model's own terms and lies below log p(x).
    assert "elbo_estimated_by_T" not in run.metrics
    assert -1e-2 < run.metrics["posterior_gap"] and run.metrics["log_px"] < 0
    with open(tmp_path / "compare-4px" / "results.csv", newline="") as f:
        rows = {row["model"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"VAE", "VAE, fixed variance"}
    for name in ("metrics.png", "latent-fixed-var-vae.png", "latent-fixed-var-vae.gif"):
        assert (tmp_path / "compare-4px" / name).stat().st_size > 0

    # The shared loop makes a run of it bit-identical from its seed.
    config = FixedVarianceConfig(steps=STEPS, out=str(tmp_path / "again"))
    training.train(config, progress=False)
    again = rundir.read_run(tmp_path / "again")
    np.testing.assert_array_equal(again.history["elbo"], run.history["elbo"])


@pytest.mark.slow
def test_runs_of_one_model_with_other_settings_share_no_band(registered, tmp_path, capsys):
    for name, std in (("a", 0.3), ("b", 0.5)):
        training.train(FixedVarianceConfig(steps=20, log_every=10, posterior_samples=4,
                                           posterior_std=std, encoder_width=8, decoder_width=8,
                                           out=str(tmp_path / name)), progress=False)
    with pytest.raises(SystemExit) as stop:
        compare.main(["--runs", str(tmp_path / "a"), str(tmp_path / "b"),
                      "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "differ in more than the seed" in err
    assert "posterior_std: 0.3" in err and "0.5" in err


def history_without_seconds(path):
    return [{k: v for k, v in row.items() if k != "seconds"}
            for row in rundir.read_history(path / rundir.HISTORY_FILE)]


@pytest.mark.slow
def test_the_recipe_trains_sweeps_and_compares_a_variant_and_a_model_of_its_own(
        registered, trained_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)                 # default run directories: tmp_path/runs
    listed = call_main(capsys, "train_vae.py", "--list-models").stdout
    assert "train_vae.py --model beta-vae, or its own settings --beta" in listed
    assert "train_vae.py --model fixed-var-vae, or its own settings --posterior-std" in listed

    # The variant, selected by its own setting; its default name carries every setting that
    # differs from its defaults, so that beta = 0.25 and beta = 0.5 (its default) never meet.
    assert call_main(capsys, "train_vae.py", *TINY, "--beta", "0.25").returncode == 0
    assert call_main(capsys, "train_vae.py", *TINY, "--model", "beta-vae").returncode == 0
    tiny_name = "batch_size=32-log_every=10-posterior_samples=8-encoder_width=8-decoder_width=8"
    quarter = tmp_path / "runs" / f"beta-vae-4px-{tiny_name}-beta=0.25-seed0"
    half = tmp_path / "runs" / f"beta-vae-4px-{tiny_name}-seed0"
    assert rundir.read_run(quarter).config["beta"] == 0.25
    assert rundir.read_run(half).config["beta"] == 0.5
    assert history_without_seconds(quarter) != history_without_seconds(half)
    # At beta = 1 its objective is the ELBO: the VAE's run, step for step.
    assert call_main(capsys, "train_vae.py", *TINY, "--beta", "1", "--out", "one").returncode == 0
    assert history_without_seconds(tmp_path / "one") == history_without_seconds(
        trained_run("vae-4px-seed0"))
    # Its conflicts are usage errors naming them.
    conflict = call_main(capsys, "train_vae.py", "--beta", "0.25", "--posterior", "flow")
    assert conflict.returncode == 2 and "beta-vae takes --posterior gaussian only" in \
        conflict.stderr

    # The model of its own, by --model and its own setting, resumed by the script.
    assert call_main(capsys, "train_vae.py", *TINY, "--posterior-std", "0.4",
                     "--out", "fixed").returncode == 0
    assert call_main(capsys, "train_vae.py", "--resume", "--out", "fixed",
                     "--steps", "40").returncode == 0
    fixed = rundir.read_run(tmp_path / "fixed")
    assert fixed.config["model"] == "fixed-var-vae" and fixed.config["posterior_std"] == 0.4
    assert fixed.metrics["steps"] == 40

    # The variant's setting swept: one run directory per value, named by it, in Ray workers
    # that register the model from this module (found from the project's root).
    monkeypatch.chdir(ROOT)
    grid = [word for name, values in {**SWEEP_TINY, "beta": (0.25, 0.5)}.items()
            for word in ("--grid", f"{name}={','.join(map(str, values))}")]
    swept = call_main(capsys, "sweep.py", "--models", "beta-vae", "--datasets", "4px",
                      "--seeds", "0", "--steps", str(TINY_SETTINGS["steps"]), *grid,
                      "--out", tmp_path / "sweep")
    assert swept.returncode == 0, swept.stderr
    for beta in (0.25, 0.5):
        [run] = (tmp_path / "sweep").glob(f"beta-vae-4px-*beta={beta}-seed0")
        assert rundir.read_run(run).config["beta"] == beta
    # The sweep's runs are the scripts' runs.
    [run] = (tmp_path / "sweep").glob("beta-vae-4px-*beta=0.25-seed0")
    assert history_without_seconds(run) == history_without_seconds(quarter)

    # Compared beside a VAE: a row, a picture and a colour each.
    vae = copy_run(trained_run, "vae-4px-seed0", tmp_path)
    compared = call_main(capsys, "compare.py", "--runs", vae, quarter, tmp_path / "fixed",
                         "--out", tmp_path / "compared")
    assert compared.returncode == 0, compared.stderr
    with open(tmp_path / "compared" / "results.csv", newline="") as f:
        rows = {row["model"] for row in csv.DictReader(f)}
    assert rows == {"VAE", "beta-VAE (beta=0.25)", "VAE, fixed variance"}
    for name in ("latent-beta-vae.png", "latent-fixed-var-vae.png"):
        assert (tmp_path / "compared" / name).stat().st_size > 0


NAME_COMPARISON = re.compile(r"""(==|!=)\s*["'](vae|avb)["']|["'](vae|avb)["']\s*(==|!=)""")


def test_no_module_branches_on_a_model_name():
    """Only a model's own module and the registry may name it in a comparison."""
    allowed = {"registry.py", "vae.py", "avb.py"}
    modules = [p for p in project_modules().values() if p.name not in allowed]
    offending = [f"{p.name}: {line.strip()}" for p in modules
                 for line in p.read_text().splitlines() if NAME_COMPARISON.search(line)]
    assert not offending

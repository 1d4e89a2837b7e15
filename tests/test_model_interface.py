"""The model interface's proof: a model defined entirely in this file (a VAE whose posterior
has a fixed variance), registered, trained by the shared compiled loop, evaluated, and compared
beside a VAE by compare.py, with no edit to any other file."""

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
from configs import VAEConfig
from densities import bernoulli_log_likelihood, gaussian_log_density, standard_normal_log_density
from model import Model, ModelSpec, explicit_terms, term_means
from tests.conftest import project_modules


@dataclass
class FixedVarianceConfig(VAEConfig):
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


SPEC = ModelSpec(name="fixed-var-vae", label="VAE, fixed variance",
                 config_class=FixedVarianceConfig, implementation=FixedVarianceVAE)
STEPS = 300


@pytest.fixture
def registered():
    registry.register(SPEC)
    yield SPEC
    registry.unregister(SPEC.name)


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


NAME_COMPARISON = re.compile(r"""(==|!=)\s*["'](vae|avb)["']|["'](vae|avb)["']\s*(==|!=)""")


def test_no_module_branches_on_a_model_name():
    """Only a model's own module and the registry may name it in a comparison."""
    allowed = {"registry.py", "vae.py", "avb.py"}
    modules = [p for p in project_modules().values() if p.name not in allowed]
    offending = [f"{p.name}: {line.strip()}" for p in modules
                 for line in p.read_text().splitlines() if NAME_COMPARISON.search(line)]
    assert not offending

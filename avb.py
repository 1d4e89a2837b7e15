"""Adversarial Variational Bayes: an implicit encoder z = f(x, eps) and an adversary T(x, z)
trained by logistic regression to estimate log q(z|x) - log p(z); and AVB with adaptive
contrast (Mescheder, Nowozin, Geiger 2017, "Adaptive Contrast"), where T contrasts q with a
Gaussian r(z|x) that has q's mean and variance instead of with the prior."""

from typing import NamedTuple

import networks
from configs import AVBConfig
from densities import (bernoulli_log_likelihood, gaussian_log_density,
                       standard_normal_log_density)
from model import TERM_NAMES, Model, ModelSpec, PosteriorTerms, lazy_module, term_means

tf = lazy_module("tensorflow")
ADVERSARY_METRICS = ("adversary_loss", "adversary_accuracy")


def adversary_loss(t_q, t_p):
    """Logistic loss, q samples positive: -log sigmoid(T(x, z_q)) - log(1 - sigmoid(T(x, z_p)))."""
    return tf.nn.softplus(-t_q) + tf.nn.softplus(t_p)


def adversary_accuracy(t_q, t_p):
    """Fraction of q and prior samples that T puts on the right side of 0."""
    correct = tf.concat([tf.cast(t_q > 0, tf.float32), tf.cast(t_p < 0, tf.float32)], 0)
    return tf.reduce_mean(correct)


def adversary_update(adversary, optimizer, x, z_q, z_p):
    """One optimiser step of T on q samples z_q against prior samples z_p for the same x.

    Returns the loss and accuracy measured before the step.
    """
    with tf.GradientTape() as tape:
        t_q, t_p = adversary([x, z_q])[:, 0], adversary([x, z_p])[:, 0]
        loss = tf.reduce_mean(adversary_loss(t_q, t_p))
    grads = tape.gradient(loss, adversary.trainable_variables)
    optimizer.apply_gradients(zip(grads, adversary.trainable_variables))
    return loss, adversary_accuracy(t_q, t_p)


class PriorContrast(NamedTuple):
    """What the AVB's T contrasts q(z|x) with: the prior p(z) = N(0, I). T sees z itself, and
    learns T(x, z) ~ log q(z|x) - log p(z), which is the KL's integrand."""

    def normalise(self, z):
        """The q sample as T sees it: z."""
        return z

    def log_density(self, z):
        """log p(z)."""
        return standard_normal_log_density(z)

    def elbo(self, log_px_given_z, log_pz, t, log_qz_given_x):
        """T's ELBO: log p(x|z) - T(x, z)."""
        return log_px_given_z - t

    def repeat(self, rows: int):
        """The contrast for each row repeated `rows` times: the same prior."""
        return self


class GaussianContrast(NamedTuple):
    """What AVB+AC's T contrasts q(z|x) with: r(z|x) = N(mean, diag(std^2)), q's own mean and
    standard deviation per row of x, estimated from draws; constants for the gradients
    (stop-gradient). T sees z_bar = (z - mean) / std against eta ~ N(0, I), and learns
    T(x, z_bar) ~ log q_bar(z_bar|x) - log N(z_bar; 0, I)."""
    mean: "tf.Tensor"
    std: "tf.Tensor"

    def normalise(self, z):
        """z_bar = (z - mean) / std."""
        return (z - self.mean) / self.std

    def log_density(self, z):
        """log r(z|x) = log N(z; mean, diag(std^2))."""
        return gaussian_log_density(z, self.mean, 2.0 * tf.math.log(self.std))

    def elbo(self, log_px_given_z, log_pz, t, log_qz_given_x):
        """T's ELBO: log p(x|z) + log p(z) - (T(x, z_bar) + log r(z|x))."""
        return log_px_given_z + log_pz - log_qz_given_x

    def repeat(self, rows: int):
        """The contrast for each row repeated `rows` times."""
        return GaussianContrast(tf.repeat(self.mean, rows, 0), tf.repeat(self.std, rows, 0))


class AVB(Model):
    def __init__(self, spec: ModelSpec, config: AVBConfig, n_pixels: int):
        super().__init__(spec)
        self.noise_dim = config.noise_dim
        self.latent_dim = config.latent_dim
        self.adversary_steps = config.adversary_steps
        self.encoder = self.build_encoder(config, n_pixels)
        self.decoder = networks.build_decoder(
            n_pixels, config.decoder_width, config.decoder_depth, config.activation,
            latent_dim=config.latent_dim)
        self.adversary = networks.build_adversary(
            n_pixels, config.adversary_width, config.adversary_depth, config.activation,
            residual=config.adversary_architecture == "residual", latent_dim=config.latent_dim)
        self.model_variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer = networks.adam(config.learning_rate, config.schedule, config.steps,
                                       config.weight_decay)
        self.adversary_optimizer = networks.adam(
            config.adversary_learning_rate, config.schedule, config.steps * config.adversary_steps)
        self.optimizer.build(self.model_variables)
        self.adversary_optimizer.build(self.adversary.trainable_variables)

    def build_encoder(self, config: AVBConfig, n_pixels: int):
        return networks.build_implicit_encoder(n_pixels, config.noise_dim, config.encoder_width,
                                               config.encoder_depth, config.activation,
                                               latent_dim=config.latent_dim)

    @property
    def optimizers(self) -> list:
        return [self.optimizer, self.adversary_optimizer]

    def t(self, x, z):
        return self.adversary([tf.convert_to_tensor(x), tf.convert_to_tensor(z)])[:, 0]

    def critic_log_q(self, x, z, contrast):
        """T's estimate of log q(z|x) at given z: T(x, normalised z) + the contrast's log
        density (T(x, z) + log p(z) for the AVB)."""
        return self.t(x, contrast.normalise(z)) + contrast.log_density(z)

    # What T contrasts q with, and the seeds a train step spends on making it:
    # AdaptiveContrastAVB overrides these two.
    contrast_seeds = 0

    def contrast(self, x, seeds):
        """The contrast for the rows of x: the prior."""
        return PriorContrast()

    def sample_posterior(self, x, seed):
        """z = f(x, eps), eps ~ N(0, I): one sample of the implicit q(z|x) per row of x."""
        x = tf.convert_to_tensor(x)
        eps = tf.random.stateless_normal([tf.shape(x)[0], self.noise_dim], seed)
        return self.encoder([x, eps])

    def terms(self, x, seed) -> PosteriorTerms:
        """The terms at z ~ q(z|x), with T's estimate of log q(z|x), so that the ELBO is T's
        estimate: biased, see evaluation/final.py. The contrast takes seeds of its own."""
        x = tf.convert_to_tensor(x)
        if not self.contrast_seeds:
            return self.contrasted_terms(x, seed, self.contrast(x, []))
        z_seed, *contrast_seeds = tf.unstack(tf.random.experimental.stateless_split(
            seed, 1 + self.contrast_seeds))
        return self.contrasted_terms(x, z_seed, self.contrast(x, contrast_seeds))

    def contrasted_terms(self, x, seed, contrast) -> PosteriorTerms:
        z = self.sample_posterior(x, seed)
        log_px_given_z = bernoulli_log_likelihood(x, self.decoder(z))   # log p(x|z)
        log_pz = standard_normal_log_density(z)                          # log p(z)
        t = self.t(x, contrast.normalise(z))        # ~ log q(z|x) - log of the contrast
        log_qz_given_x = t + contrast.log_density(z)                     # T's log q(z|x)
        return PosteriorTerms(log_px_given_z, log_pz, log_qz_given_x,
                              contrast.elbo(log_px_given_z, log_pz, t, log_qz_given_x))

    def _model_step(self, x, seed, contrast) -> PosteriorTerms:
        with tf.GradientTape() as tape:
            terms = self.contrasted_terms(x, seed, contrast)
            loss = -tf.reduce_mean(terms.elbo)
        grads = tape.gradient(loss, self.model_variables)
        self.optimizer.apply_gradients(zip(grads, self.model_variables))
        return terms

    def adversary_step(self, x, seed, contrast):
        """One step of T on q samples (as T sees them) against N(0, I) samples for the same x."""
        q_seed, p_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        z_q = contrast.normalise(tf.stop_gradient(self.sample_posterior(x, q_seed)))
        z_p = tf.random.stateless_normal(tf.shape(z_q), p_seed)
        return adversary_update(self.adversary, self.adversary_optimizer, x, z_q, z_p)

    def train_step(self, x, seed) -> dict:
        """One encoder/decoder step on log p(x|z) minus the KL estimate, then
        `adversary_steps` adversary steps; the contrast is shared by all of them."""
        x = tf.convert_to_tensor(x)
        seeds = tf.unstack(tf.random.experimental.stateless_split(
            seed, self.contrast_seeds + 1 + self.adversary_steps))
        contrast = self.contrast(x, seeds[:self.contrast_seeds])
        model_seed, *adversary_seeds = seeds[self.contrast_seeds:]
        terms = self._model_step(x, model_seed, contrast)
        for adversary_seed in adversary_seeds:
            loss, accuracy = self.adversary_step(x, adversary_seed, contrast)
        return {**term_means(terms), **self.spec.extra_metrics(loss, accuracy)}


class AdaptiveContrastAVB(AVB):
    """AVB+AC: T(x, z_bar) learns log q_bar(z_bar|x) - log N(z_bar; 0, I) for the normalised
    z_bar = (z - mu(x)) / sigma(x), against eta ~ N(0, I); then
    log q(z|x) = T(x, z_bar) + log r(z|x) with r = N(mu(x), sigma(x)^2), and the KL estimate is
    T(x, z_bar) + log r(z|x) - log p(z).

    q's moments come from the authors' construction: the encoder is
    z = a_0(x) + sum_i a_i(x) * v_i(eps) (networks.build_structured_encoder), so
    mu(x) = a_0(x) + sum_i a_i(x) E[v_i] and sigma_d(x)^2 = a_d(x)^T Cov[v_d] a_d(x), where the
    moments of v(eps) do not depend on x and are estimated from `moment_samples` noise draws
    per step. Moments from a few draws of q per data point instead are noisy per row, and that
    noise blurs the normalised q that T sees: with 16 draws T's KL on a fixed quadrant-shaped q
    came out 0.35 nats low, against 0.06 with 256 draws.
    """

    def build_encoder(self, config: AVBConfig, n_pixels: int):
        self.moment_samples = config.moment_samples
        self.variance_floor = config.contrast_variance_floor
        encoder, self.coefficients, self.basis = networks.build_structured_encoder(
            n_pixels, config.noise_dim, config.basis_size, config.encoder_width,
            config.encoder_depth, config.activation, latent_dim=config.latent_dim)
        return encoder

    def moments(self, x, seed) -> GaussianContrast:
        """q(z|x)'s mean and standard deviation per row of x, from the basis's moments."""
        v = self.basis(tf.random.stateless_normal([self.moment_samples, self.noise_dim], seed))
        v = tf.reshape(v, [self.moment_samples, -1, self.latent_dim])     # [K, basis, D]
        v_mean = tf.reduce_mean(v, 0)
        v_centred = v - v_mean
        v_cov = tf.einsum("kid,kjd->dij", v_centred, v_centred) / self.moment_samples
        a_0, a = self.coefficients(x)
        a = tf.reshape(a, [tf.shape(x)[0], -1, self.latent_dim])         # [N, basis, D]
        mean = a_0 + tf.reduce_sum(a * v_mean, 1)
        variance = tf.einsum("nid,dij,njd->nd", a, v_cov, a)
        return GaussianContrast(tf.stop_gradient(mean),
                                tf.stop_gradient(tf.sqrt(variance + self.variance_floor)))

    contrast_seeds = 1

    def contrast(self, x, seeds) -> GaussianContrast:
        """r(z|x): q's moments for the rows of x."""
        return self.moments(x, seeds[0])


_ADVERSARIAL = dict(config_class=AVBConfig, metric_names=TERM_NAMES + ADVERSARY_METRICS,
                    critic_estimates=("log_qz_given_x", "elbo"),
                    networks=("encoder", "decoder", "adversary"), exact_log_q=False)
SPECS = (
    ModelSpec(name="avb", label="AVB", implementation=AVB, **_ADVERSARIAL,
              description="implicit q(z|x): z = f(x, eps); T(x, z) learns log q(z|x) - log p(z)"),
    ModelSpec(name="avb-ac", label="AVB+AC", implementation=AdaptiveContrastAVB, **_ADVERSARIAL,
              description="AVB whose T contrasts q(z|x) with a Gaussian of q's mean and "
                          "variance (adaptive contrast)",
              variant_settings={"contrast": "adaptive"},
              # chosen by true ELBO over seeds 0-2 and by cost (README, "Robustness maps")
              variant_defaults={"4px": {"learning_rate": 5e-4}}),
)

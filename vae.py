"""The VAE: Gaussian q(z|x), Bernoulli p(x|z), the reparameterised single-sample ELBO."""

from typing import NamedTuple

import tensorflow as tf

import networks
from configs import METRIC_NAMES, VAEConfig
from densities import (bernoulli_log_likelihood, gaussian_kl_to_standard_normal,
                       gaussian_log_density, standard_normal_log_density)


class ELBOTerms(NamedTuple):
    """Per-sample terms of the single-sample ELBO, each of shape [batch]."""
    log_px_given_z: tf.Tensor
    log_pz: tf.Tensor
    log_qz_given_x: tf.Tensor

    @property
    def elbo(self):
        return self.log_px_given_z + self.log_pz - self.log_qz_given_x


class VAE:
    name = "vae"
    metric_names = METRIC_NAMES["vae"]

    def __init__(self, config: VAEConfig, n_pixels: int):
        self.encoder = networks.build_gaussian_encoder(
            n_pixels, config.encoder_width, config.encoder_depth, config.activation)
        self.decoder = networks.build_decoder(
            n_pixels, config.decoder_width, config.decoder_depth, config.activation)
        self.variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer = networks.adam(config.learning_rate, config.schedule, config.steps)
        self.optimizer.build(self.variables)

    @property
    def networks(self) -> dict:
        return {"encoder": self.encoder, "decoder": self.decoder}

    @property
    def optimizers(self) -> list:
        return [self.optimizer]

    def sample_posterior(self, x, seed):
        """z = mean + sigma * eps, eps ~ N(0, I): one reparameterised sample per row of x."""
        z_mean, z_log_var = self.encoder(x)
        eps = tf.random.stateless_normal(tf.shape(z_mean), seed)
        return z_mean + tf.exp(0.5 * z_log_var) * eps

    def elbo_terms(self, x, seed) -> ELBOTerms:
        z_mean, z_log_var = self.encoder(x)
        eps = tf.random.stateless_normal(tf.shape(z_mean), seed)
        z = z_mean + tf.exp(0.5 * z_log_var) * eps
        return ELBOTerms(
            log_px_given_z=bernoulli_log_likelihood(x, self.decoder(z)),  # log p(x|z)
            log_pz=standard_normal_log_density(z),                         # log p(z)
            log_qz_given_x=gaussian_log_density(z, z_mean, z_log_var))     # log q(z|x)

    def analytic_elbo(self, x, seed):
        """E_q[log p(x|z)] (one sample) - KL(q(z|x) || p(z)) (closed form), per sample."""
        z_mean, z_log_var = self.encoder(x)
        terms = self.elbo_terms(x, seed)
        return terms.log_px_given_z - gaussian_kl_to_standard_normal(z_mean, z_log_var)

    def train_step(self, x, seed) -> dict:
        with tf.GradientTape() as tape:
            terms = self.elbo_terms(x, seed)
            loss = -tf.reduce_mean(terms.elbo)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return {name: tf.reduce_mean(getattr(terms, name)) for name in self.metric_names}

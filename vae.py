"""The VAE: Gaussian q(z|x), Bernoulli p(x|z), the reparameterised single-sample ELBO."""

import networks
from configs import VAEConfig
from densities import (bernoulli_log_likelihood, gaussian_kl_to_standard_normal,
                       gaussian_log_density, standard_normal_log_density)
from model import Model, ModelSpec, PosteriorTerms, explicit_terms, lazy_module, term_means

tf = lazy_module("tensorflow")


class VAE(Model):
    def __init__(self, spec: ModelSpec, config: VAEConfig, n_pixels: int):
        super().__init__(spec)
        self.latent_dim = config.latent_dim
        self.encoder = self.build_encoder(config, n_pixels)
        self.decoder = networks.build_decoder(
            n_pixels, config.decoder_width, config.decoder_depth, config.activation,
            latent_dim=config.latent_dim)
        self.variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer = networks.adam(config.learning_rate, config.schedule, config.steps,
                                       config.weight_decay)
        self.optimizer.build(self.variables)

    def build_encoder(self, config: VAEConfig, n_pixels: int):
        return networks.build_gaussian_encoder(n_pixels, config.encoder_width,
                                               config.encoder_depth, config.activation,
                                               latent_dim=config.latent_dim)

    @property
    def optimizers(self) -> list:
        return [self.optimizer]

    def sample_posterior(self, x, seed):
        """z = mean + sigma * eps, eps ~ N(0, I): one reparameterised sample per row of x."""
        z_mean, z_log_var = self.encoder(x)
        return reparameterise(z_mean, z_log_var, seed)

    def terms(self, x, seed) -> PosteriorTerms:
        z_mean, z_log_var = self.encoder(x)
        z = reparameterise(z_mean, z_log_var, seed)
        return explicit_terms(
            log_px_given_z=bernoulli_log_likelihood(x, self.decoder(z)),  # log p(x|z)
            log_pz=standard_normal_log_density(z),                         # log p(z)
            log_qz_given_x=gaussian_log_density(z, z_mean, z_log_var))     # log q(z|x)

    gaussian_q = True

    def gaussian_posterior(self, x):
        """q(z|x) = N(mean(x), diag exp(log_var(x))): the encoder's (mean, log_var)."""
        return self.encoder(x)

    def log_q(self, x, z):
        """log q(z|x) = log N(z; mean(x), diag exp(log_var(x))) at given z [batch, D]."""
        return gaussian_log_density(z, *self.encoder(x))

    def analytic_elbo(self, x, seed):
        """E_q[log p(x|z)] (one sample) - KL(q(z|x) || p(z)) (closed form), per sample."""
        z_mean, z_log_var = self.encoder(x)
        return (self.terms(x, seed).log_px_given_z
                - gaussian_kl_to_standard_normal(z_mean, z_log_var))

    def evaluation_extras(self, x, seed, samples: int) -> dict:
        return {"elbo_closed_form_kl": float(tf.reduce_mean(self.analytic_elbo(x, seed)))}

    def train_step(self, x, seed) -> dict:
        with tf.GradientTape() as tape:
            terms = self.terms(x, seed)
            loss = -tf.reduce_mean(terms.elbo)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return term_means(terms)


def reparameterise(z_mean, z_log_var, seed):
    """z = mean + exp(log_var / 2) * eps with eps ~ N(0, I) drawn from the seed."""
    eps = tf.random.stateless_normal(tf.shape(z_mean), seed)
    return z_mean + tf.exp(0.5 * z_log_var) * eps


SPECS = (ModelSpec(
    name="vae", label="VAE", config_class=VAEConfig, implementation=VAE,
    description="Gaussian q(z|x) = N(mu(x), diag sigma(x)^2), trained on the single-sample ELBO"),)

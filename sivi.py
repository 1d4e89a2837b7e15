"""Semi-implicit variational inference (SIVI; Yin and Zhou, ICML 2018) in its VAE form: q(z|x)
is a Gaussian whose mean is itself random,

    q(z|x) = E_{eps ~ N(0, I)} N(z; mu(x, eps), diag sigma(x)^2),

mu an implicit network of x and the mixing noise eps, sigma one of x (the SIVI paper's VAE
form) or, by default, of x and eps too. q has no closed-form density and needs no adversary:
for z = mu(x, eps_0) + sigma(x, eps_0) * xi and K more mixing draws eps_1 .. eps_K,

    log p(x|z) + log p(z) - log (1/(K+1)) sum_{k=0..K} N(z; mu(x, eps_k), sigma(x, eps_k)^2)

lies below the ELBO in expectation for every K and rises to it as K grows (the mixture over
the draws overestimates log q(z|x) by less and less). Training maximises it with
K = --sivi-samples; the final evaluation reports it with sizes.BOUND_DRAWS mixing draws, a
lower bound converging from below, checked for convergence (evaluation/final.py).

The mixing means take AVB+AC's encoder form, mu(x, eps) = a_0(x) + sum_i a_i(x) * v_i(eps),
and log sigma^2 = c_0(x) + sum_i c_i(x) * w_i(eps): the basis (v, w) does not depend on x, so
the K draws of a batch share it and a large K costs little. With mu a network of (x, eps)
computed per draw instead, the mixing stayed unused: near a Gaussian q the bound's gain from
spreading the means is second order, and at small K the estimate's bias penalises the spread
(docs/results-sivi.md has the measurements).
"""

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

import networks
from configs import VAEConfig
from densities import bernoulli_log_likelihood, gaussian_log_density, standard_normal_log_density
from model import Model, ModelSpec, PosteriorTerms, explicit_terms, lazy_module, term_means

tf, keras, layers = map(lazy_module, ("tensorflow", "keras", "keras.layers"))


def setting(default, help_text, **extra):
    """A field with its flag's help text (and choices), as configs.py writes its own."""
    return field(default=default, metadata={"help": help_text, **extra})


@dataclass
class SIVIConfig(VAEConfig):
    """The VAE's settings, its posterior the semi-implicit one, and the mixing network's. On
    the one-hot sets it trains as the AVB does, 20000 steps of 128 points, at the AVB's rate
    1e-3 (at 3e-3 two seeds of three collapsed on 9px), with a cosine decay. K = 128 mixing
    draws: on 9px, seeds 0-2, K = 256 raised the bound by 0.013 nats but trained in 1.07 times
    the AVB's time, K = 128 in 0.87 times (docs/results-sivi.md)."""

    dataset_defaults: ClassVar[dict] = {
        name: {"steps": 20000, "batch_size": 128, "learning_rate": 1e-3}
        for name in ("4px", "9px")}

    posterior: str = setting("sivi", "sivi: a semi-implicit mixture of Gaussians N(mu(x, eps), "
                                      "sigma(x)^2) over mixing noise eps (sivi.py)",
                              choices=("sivi",))
    sivi_samples: int = setting(128, "mixing draws K besides z's own in the training bound "
                                     "log p(x, z) - log (1/(K+1)) sum_k N(z; mu(x, eps_k), "
                                     "sigma(x)^2)")
    mixing_dim: int = setting(8, "dimension of the mixing noise eps ~ N(0, I)")
    basis_size: int = setting(8, "terms of the mixing means mu(x, eps) = a_0(x) + sum_i "
                                 "a_i(x) v_i(eps)")
    mixing_width: int = setting(64, "hidden units per layer of the basis network v(eps)")
    mixing_depth: int = setting(2, "hidden layers of the basis network")
    mixing_init_scale: float = setting(1.0, "variance scale of the initial weights of a(x) "
                                            "(Keras's VarianceScaling)")
    sigma_noise: str = setting(
        "x-eps", "what sigma depends on: x (the SIVI paper's VAE form), or x-eps, the mixing "
                 "noise too (log sigma^2 = c_0(x) + sum_i c_i(x) w_i(eps)); on 9px x-eps "
                 "raised the true ELBO by 0.05 nats on each of seeds 0-2", choices=("x", "x-eps"))


def build_networks(n_pixels: int, config: SIVIConfig) -> tuple:
    """(coefficients x -> (a_0, a, c_0, c), basis eps -> (v, w), encoder [x, eps] -> (mu,
    log_var)) with mu(x, eps) = a_0(x) + sum_i a_i(x) * v_i(eps), i = 1..basis_size, each term
    of D coordinates and the product element-wise (AVB+AC's encoder, networks.py), and
    log sigma^2 = c_0(x), or with sigma_noise "x-eps" c_0(x) + sum_i c_i(x) * w_i(eps) (c
    zero at the start); a, c [N, basis_size * D] and v, w are flattened with index D i + d.
    The basis does not depend on x, so K mixing draws cost K basis rows however many data
    points share them."""
    d, size, noisy_sigma = config.latent_dim, config.basis_size, config.sigma_noise == "x-eps"
    x = keras.Input((n_pixels,), name="x")
    h = networks.mlp(x, config.encoder_width, config.encoder_depth, "coefficients",
                     config.activation)
    outputs = [layers.Dense(d, name="a_0")(h),
               layers.Dense(size * d, name="a", kernel_initializer=(
                   keras.initializers.VarianceScaling(config.mixing_init_scale)))(h),
               layers.Dense(d, name="z_log_var")(h)]
    if noisy_sigma:
        outputs.append(layers.Dense(size * d, name="c", kernel_initializer="zeros")(h))
    coefficients = keras.Model(x, outputs, name="coefficients")

    eps = keras.Input((config.mixing_dim,), name="eps")
    g = networks.mlp(eps, config.mixing_width, config.mixing_depth, "basis", config.activation)
    basis = keras.Model(eps, [layers.Dense(size * d, name=name)(g)
                              for name in ("v", "w")[:1 + noisy_sigma]], name="basis")

    x_in = keras.Input((n_pixels,), name="x")
    eps_in = keras.Input((config.mixing_dim,), name="eps")
    a_0, a, c_0, *c = coefficients(x_in)
    v, *w = as_list(basis(eps_in))
    sum_over_basis = layers.Dense(
        d, use_bias=False, trainable=False, name="sum_over_basis",
        kernel_initializer=keras.initializers.Constant(np.tile(np.eye(d), (size, 1))))
    mu = layers.Add(name="mu")([a_0, sum_over_basis(layers.Multiply(name="a_v")([a, v]))])
    log_var = c_0 if not noisy_sigma else layers.Add(name="log_var")(
        [c_0, sum_over_basis(layers.Multiply(name="c_w")([c[0], w[0]]))])
    return coefficients, basis, keras.Model([x_in, eps_in], [mu, log_var], name="encoder")


def as_list(outputs) -> list:
    """A Keras model's outputs as a list (one output comes as a tensor)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


class Mixture(NamedTuple):
    """q(z|x)'s coefficients for the rows of x: a_0, c_0 [N, D]; a, c [N, basis_size, D] (c
    None where sigma depends on x alone)."""
    a_0: Any
    a: Any
    c_0: Any
    c: Any

    def component(self, v, w):
        """(mu, log sigma^2) of the components at basis values v, w [..., N or 1, I, D]."""
        mu = self.a_0 + tf.reduce_sum(self.a * v, -2)
        return mu, self.c_0 if self.c is None else self.c_0 + tf.reduce_sum(self.c * w, -2)

    def shared_components(self, v, w):
        """(mu, log sigma^2) of every row's components at K basis values v, w [K, I, D] that
        the rows share, coordinate first: [D, K, N], the rows last, where the arithmetic on
        them is vectorised (the other order, [K, N, D] with D = 2 last, took 1.5 times as
        long to train on 9px)."""
        mu = tf.transpose(self.a_0)[:, None] + tf.einsum("nid,kid->dkn", self.a, v)
        log_var = tf.transpose(self.c_0)[:, None]
        if self.c is not None:
            log_var = log_var + tf.einsum("nid,kid->dkn", self.c, w)
        return mu, log_var


class SIVI(Model):
    bounded_log_q = True

    def __init__(self, spec: ModelSpec, config: SIVIConfig, n_pixels: int):
        super().__init__(spec)
        self.latent_dim, self.mixing_dim = config.latent_dim, config.mixing_dim
        self.sivi_samples, self.basis_size = config.sivi_samples, config.basis_size
        self.coefficients, self.basis, self.encoder = build_networks(n_pixels, config)
        self.decoder = networks.build_decoder(
            n_pixels, config.decoder_width, config.decoder_depth, config.activation,
            latent_dim=config.latent_dim)
        self.variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer = networks.adam(config.learning_rate, config.schedule, config.steps,
                                       config.weight_decay)
        self.optimizer.build(self.variables)

    @property
    def optimizers(self) -> list:
        return [self.optimizer]

    def split(self, t, leading):
        """[..., basis_size * D] -> [..., basis_size, D]."""
        return tf.reshape(t, tf.concat([leading, [self.basis_size, self.latent_dim]], 0))

    def mixture(self, x) -> Mixture:
        a_0, a, c_0, *c = self.coefficients(x)
        rows = tf.shape(x)[:1]
        return Mixture(a_0, self.split(a, rows), c_0, self.split(c[0], rows) if c else None)

    def basis_of(self, eps) -> tuple:
        """(v, w) [..., basis_size, D] for noise eps [..., E] (w None where sigma depends on
        x alone)."""
        v, *w = as_list(self.basis(tf.reshape(eps, [-1, self.mixing_dim])))
        leading = tf.shape(eps)[:-1]
        return self.split(v, leading), self.split(w[0], leading) if w else None

    def draw(self, x, seed, samples: int):
        """(z [S, N, D], their components' mu and log sigma^2 [S, N, D], the mixture):
        `samples` draws z = mu(x, eps_0) + sigma(x, eps_0) * xi per row of x."""
        eps_seed, xi_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        mixture = self.mixture(x)
        mu, log_var = mixture.component(*self.basis_of(tf.random.stateless_normal(
            [samples, tf.shape(x)[0], self.mixing_dim], eps_seed)))
        log_var = tf.broadcast_to(log_var, tf.shape(mu))
        z = mu + tf.exp(0.5 * log_var) * tf.random.stateless_normal(tf.shape(mu), xi_seed)
        return z, mu, log_var, mixture

    def sample_posterior(self, x, seed):
        return self.draw(x, seed, 1)[0][0]

    def log_q_estimate(self, z, mu, log_var, mixture: Mixture, draws: int, seed):
        """log (1/(K+1)) sum_{k=0..K} N(z; mu_k, sigma_k^2), component 0 each z's own (mu,
        log_var) and K = `draws` fresh mixing draws shared by every z: z, mu, log_var
        [S, N, D] -> [S, N]."""
        own = gaussian_log_density(z, mu, log_var)                          # k = 0
        if draws == 0:
            return own
        v, w = self.basis_of(tf.random.stateless_normal([draws, 1, self.mixing_dim], seed))
        mixed_mu, mixed_log_var = mixture.shared_components(
            v[:, 0], None if w is None else w[:, 0])                         # [D, K, N]
        # log N(z; mu_k, diag sigma_k^2) = sum_d log N(z_d; mu_kd, sigma_kd^2): [S, K, N]
        others = tf.add_n([gaussian_log_density(
            z[:, None, :, d, None], mixed_mu[d, None, ..., None],
            mixed_log_var[d, None, ..., None]) for d in range(self.latent_dim)])
        return (tf.reduce_logsumexp(tf.concat([own[:, None], others], 1), 1)   # [S, N]
                - math.log(draws + 1.0))

    def bound_terms(self, x, seed, draws: int) -> PosteriorTerms:
        """The terms at one z ~ q(z|x) per row of x, log q(z|x) estimated from `draws` mixing
        draws besides z's own: the ELBO term is the SIVI bound's."""
        draw_seed, mix_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        z, mu, log_var, mixture = self.draw(x, draw_seed, 1)
        log_q = self.log_q_estimate(z, mu, log_var, mixture, draws, mix_seed)[0]
        return explicit_terms(
            log_px_given_z=bernoulli_log_likelihood(x, self.decoder(z[0])),  # log p(x|z)
            log_pz=standard_normal_log_density(z[0]),                        # log p(z)
            log_qz_given_x=log_q)                                           # its estimate

    def terms(self, x, seed) -> PosteriorTerms:
        return self.bound_terms(x, seed, self.sivi_samples)

    def elbo_bound(self, x, seed, samples: int, draws: int):
        draw_seed, mix_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        z, mu, log_var, mixture = self.draw(x, draw_seed, samples)
        log_q = self.log_q_estimate(z, mu, log_var, mixture, draws, mix_seed)  # [S, N]
        z_rows = tf.reshape(z, [-1, self.latent_dim])
        x_rows = tf.tile(x, [samples, 1])                     # row s * N + n: draw s of n
        log_joint = tf.reshape(bernoulli_log_likelihood(x_rows, self.decoder(z_rows))
                               + standard_normal_log_density(z_rows), tf.shape(log_q))
        return tf.reduce_mean(log_joint - log_q, 0)

    def train_step(self, x, seed) -> dict:
        with tf.GradientTape() as tape:
            terms = self.terms(x, seed)
            loss = -tf.reduce_mean(terms.elbo)      # maximise the SIVI bound
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return term_means(terms)


SPECS = (ModelSpec(
    name="sivi", label="SIVI", config_class=SIVIConfig, implementation=SIVI,
    description="semi-implicit q(z|x): a mixture of Gaussians over mixing noise; no adversary",
    variant_settings={"posterior": "sivi"}, exact_log_q=False,
    conflicts={"importance_samples": 1}, compared_by_default=False),)

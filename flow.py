"""A VAE whose q(z|x) is a normalizing flow (Rezende and Mohamed 2015; real NVP coupling
layers, Dinh et al. 2017): a base Gaussian z_0 = mu(x) + sigma(x) * eps, eps ~ N(0, I), pushed
through affine coupling layers conditioned on x. Layer l keeps the coordinates z_c whose index
has the parity of l and moves the others z_o (in 2-D: one each, alternating):

    z_o' = z_o * exp(s_l(x, z_c)) + t_l(x, z_c),   z_c' = z_c,

so its Jacobian is triangular with log-determinant s_l, and log q(z|x) is exact:
log N(eps; 0, I) - sum log sigma(x) - sum_l s_l (densities.flow_log_density). Every network is
made of standard Keras layers, so encoder.keras ([x, eps] -> z) loads with plain
keras.models.load_model.
"""

import numpy as np

import networks
from configs import VAEConfig
from densities import bernoulli_log_likelihood, flow_log_density, standard_normal_log_density
from model import ModelSpec, PosteriorTerms, explicit_terms, lazy_module
from vae import VAE

tf, keras, layers = map(lazy_module, ("tensorflow", "keras", "keras.layers"))

# |s_l| <= LOG_SCALE_BOUND: each layer stretches or shrinks a coordinate at most e^2 ~ 7.4
# times, which keeps exp(s) finite while several layers together still reach any scale.
LOG_SCALE_BOUND = 2.0


def fixed_linear(h, matrix, name: str):
    """h @ matrix by a frozen bias-free Dense layer (a standard layer, saved with the model)."""
    matrix = np.asarray(matrix, np.float32)
    layer = layers.Dense(matrix.shape[1], use_bias=False, trainable=False, name=name)
    out = layer(h)
    layer.set_weights([matrix])
    return out


def build_base(n_pixels: int, width: int, depth: int, activation: str,
               latent_dim: int) -> "keras.Model":
    """x -> (h, z_mean, z_log_var): features of x for the coupling layers and the base
    Gaussian N(z_mean, diag exp(z_log_var))."""
    x = keras.Input((n_pixels,), name="x")
    h = networks.mlp(x, width, depth, "encoder", activation)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    return keras.Model(x, [h, z_mean, z_log_var], name="base")


def kept_coordinates(index: int, latent_dim: int) -> np.ndarray:
    """1 for each coordinate that coupling layer `index` keeps (index d % 2 == index % 2),
    0 for those it moves."""
    return (np.arange(latent_dim) % 2 == index % 2).astype(np.float64)


def build_coupling(index: int, features: int, width: int, depth: int, activation: str,
                   latent_dim: int) -> "keras.Model":
    """[h, z] -> (s, t) of coupling layer `index`: functions of x (through h) and of the kept
    coordinates z_c only (kept_coordinates), zero on z_c themselves so that
    z' = z * exp(s) + t keeps them; s is bounded by LOG_SCALE_BOUND."""
    keep = kept_coordinates(index, latent_dim)
    h = keras.Input((features,), name="h")
    z = keras.Input((latent_dim,), name="z")
    z_kept = fixed_linear(z, np.diag(keep), "z_kept")
    g = networks.mlp(layers.Concatenate(name="h_z")([h, z_kept]), width, depth, "coupling",
                     activation)
    s_raw = layers.Activation("tanh", name="tanh")(layers.Dense(latent_dim, name="s_raw")(g))
    s_bounded = layers.Rescaling(LOG_SCALE_BOUND, name="s_bounded")(s_raw)
    s = fixed_linear(s_bounded, np.diag(1.0 - keep), "s")
    t = fixed_linear(layers.Dense(latent_dim, name="t_raw")(g), np.diag(1.0 - keep), "t")
    return keras.Model([h, z], [s, t], name=f"coupling{index}")


def affine(z, log_scale, shift, name: str):
    """z * exp(log_scale) + shift, elementwise, in standard layers."""
    scale = layers.Activation("exponential", name=f"{name}_scale")(log_scale)
    return layers.Add(name=f"{name}_add")([layers.Multiply(name=f"{name}_mul")([z, scale]),
                                           shift])


def build_posterior(base: "keras.Model", couplings: list, n_pixels: int,
                    latent_dim: int) -> "keras.Model":
    """[x, eps] -> (z, log_scale): the flow's sample z and the per-coordinate sum over its
    layers of the log-diagonal of dz/deps (sum log sigma(x) + sum_l s_l)."""
    x = keras.Input((n_pixels,), name="x")
    eps = keras.Input((latent_dim,), name="eps")
    h, z_mean, z_log_var = base(x)
    log_scale = layers.Rescaling(0.5, name="log_sigma")(z_log_var)
    z = affine(eps, log_scale, z_mean, "base")                      # z_0 = mu + sigma * eps
    for i, coupling in enumerate(couplings):
        s, t = coupling([h, z])
        z = affine(z, s, t, f"layer{i}")                            # z' = z * exp(s) + t
        log_scale = layers.Add(name=f"log_scale{i}")([log_scale, s])
    return keras.Model([x, eps], [z, log_scale], name="posterior")


class FlowVAE(VAE):
    """The VAE with a flow posterior: the same decoder, optimiser and train step (the ELBO with
    its exact log q), another encoder."""

    def build_encoder(self, config: VAEConfig, n_pixels: int):
        self.base = build_base(n_pixels, config.encoder_width, config.encoder_depth,
                               config.activation, config.latent_dim)
        self.couplings = [build_coupling(i, config.encoder_width, config.flow_width,
                                         config.flow_depth, config.activation,
                                         config.latent_dim)
                          for i in range(config.flow_layers)]
        self.posterior = build_posterior(self.base, self.couplings, n_pixels, config.latent_dim)
        return keras.Model(self.posterior.inputs, self.posterior.outputs[0], name="encoder")

    def evaluation_extras(self, x, seed, samples: int) -> dict:
        """None: the VAE's closed-form KL does not exist for a flow."""
        return {}

    def noise(self, x, seed):
        return tf.random.stateless_normal([tf.shape(x)[0], self.latent_dim], seed)

    gaussian_q = False                 # the flow moves the encoder's Gaussian

    def sample_posterior(self, x, seed):
        """z = f(x, eps), eps ~ N(0, I): one sample of the flow per row of x."""
        x = tf.convert_to_tensor(x)
        return self.encoder([x, self.noise(x, seed)])

    def terms(self, x, seed) -> PosteriorTerms:
        x = tf.convert_to_tensor(x)
        eps = self.noise(x, seed)
        z, log_scale = self.posterior([x, eps])
        return explicit_terms(
            log_px_given_z=bernoulli_log_likelihood(x, self.decoder(z)),  # log p(x|z)
            log_pz=standard_normal_log_density(z),                         # log p(z)
            log_qz_given_x=flow_log_density(eps, log_scale))               # log q(z|x), exact

    def inverse(self, x, z):
        """eps and log_scale with f(x, eps) = z: the flow run backwards, layer by layer."""
        h, z_mean, z_log_var = self.base(x)
        log_scale = 0.5 * z_log_var
        for coupling in reversed(self.couplings):
            s, t = coupling([h, z])          # functions of the kept coordinate, which z keeps
            z = (z - t) * tf.exp(-s)
            log_scale += s
        return (z - z_mean) * tf.exp(-0.5 * z_log_var), log_scale

    def log_q(self, x, z):
        """log q(z|x) at given z [batch, D] (x [batch, pixels]), through the inverse flow."""
        return flow_log_density(*self.inverse(tf.convert_to_tensor(x), tf.convert_to_tensor(z)))


SPECS = (ModelSpec(
    name="flow", label="flow VAE", config_class=VAEConfig, implementation=FlowVAE,
    description="q(z|x): a Gaussian through x-conditioned affine coupling layers (exact log q)",
    variant_settings={"posterior": "flow"}, variant_defaults={"9px": {"steps": 12000}},
    conflicts={"importance_samples": 1}, compared_by_default=False),)

"""The Keras networks, built from standard layers only so that each saved .keras file loads
with plain `keras.models.load_model(path)`."""

import keras
from keras import layers

ACTIVATION = "relu"
LATENT_DIM = 2


def mlp(h, width: int, depth: int, name: str):
    for i in range(depth):
        h = layers.Dense(width, activation=ACTIVATION, name=f"{name}_hidden{i}")(h)
    return h


def build_gaussian_encoder(n_pixels: int, width: int, depth: int) -> keras.Model:
    """x -> (z_mean, z_log_var) of the Gaussian q(z|x)."""
    x = keras.Input((n_pixels,), name="x")
    h = mlp(x, width, depth, "encoder")
    z_mean = layers.Dense(LATENT_DIM, name="z_mean")(h)
    z_log_var = layers.Dense(LATENT_DIM, name="z_log_var")(h)
    return keras.Model(x, [z_mean, z_log_var], name="encoder")


def build_implicit_encoder(n_pixels: int, noise_dim: int, width: int, depth: int) -> keras.Model:
    """(x, eps) -> z: a sample of the implicit q(z|x) for noise eps ~ N(0, I)."""
    x = keras.Input((n_pixels,), name="x")
    eps = keras.Input((noise_dim,), name="eps")
    h = mlp(layers.Concatenate(name="x_eps")([x, eps]), width, depth, "encoder")
    z = layers.Dense(LATENT_DIM, name="z")(h)
    return keras.Model([x, eps], z, name="encoder")


def build_decoder(n_pixels: int, width: int, depth: int) -> keras.Model:
    """z -> one Bernoulli logit per pixel of p(x|z)."""
    z = keras.Input((LATENT_DIM,), name="z")
    logits = layers.Dense(n_pixels, name="logits")(mlp(z, width, depth, "decoder"))
    return keras.Model(z, logits, name="decoder")


def build_adversary(n_pixels: int, width: int, depth: int) -> keras.Model:
    """(x, z) -> T(x, z) [batch, 1] = net(x, z) + |z|^2 / 2, which estimates log q(z|x) - log p(z).

    -log p(z) = |z|^2 / 2 + log(2 pi) is added analytically (its constant lives in the net's
    bias), so the net only has to learn log q(z|x). The fixed half-square term is a frozen
    Dense layer on z * z, which keeps the model made of standard layers.
    """
    x = keras.Input((n_pixels,), name="x")
    z = keras.Input((LATENT_DIM,), name="z")
    h = mlp(layers.Concatenate(name="x_z")([x, z]), width, depth, "adversary")
    net = layers.Dense(1, name="net")(h)
    half_square = layers.Dense(1, use_bias=False, trainable=False, name="half_square_norm",
                               kernel_initializer=keras.initializers.Constant(0.5))(
        layers.Multiply(name="z_squared")([z, z]))
    t = layers.Add(name="T")([net, half_square])
    return keras.Model([x, z], t, name="adversary")


def adam(learning_rate: float, schedule: str, steps: int) -> "keras.optimizers.Adam":
    """Adam at a constant rate, or decayed to zero along a half cosine over `steps` updates."""
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    return keras.optimizers.Adam(learning_rate)

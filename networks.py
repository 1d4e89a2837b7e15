"""The Keras networks, built from standard layers only so that each saved .keras file loads
with plain `keras.models.load_model(path)`."""

from __future__ import annotations   # the annotations name Keras, which loads on first use

import numpy as np

from model import lazy_module

keras, layers = lazy_module("keras"), lazy_module("keras.layers")


def mlp(h, width: int, depth: int, name: str, activation: str = "relu"):
    for i in range(depth):
        h = layers.Dense(width, activation=activation, name=f"{name}_hidden{i}")(h)
    return h


def residual_net(h, width: int, blocks: int, name: str, activation: str = "relu"):
    """A Dense layer to `width`, then `blocks` residual blocks h <- act(h + W2 act(W1 h))."""
    h = layers.Dense(width, activation=activation, name=f"{name}_in")(h)
    for i in range(blocks):
        r = layers.Dense(width, activation=activation, name=f"{name}_block{i}_a")(h)
        r = layers.Dense(width, name=f"{name}_block{i}_b")(r)
        h = layers.Activation(activation, name=f"{name}_block{i}_out")(
            layers.Add(name=f"{name}_block{i}_add")([h, r]))
    return h


def build_gaussian_encoder(n_pixels: int, width: int, depth: int, activation: str = "relu", *,
                           latent_dim: int) -> keras.Model:
    """x -> (z_mean, z_log_var) of the Gaussian q(z|x), each [batch, latent_dim]."""
    x = keras.Input((n_pixels,), name="x")
    h = mlp(x, width, depth, "encoder", activation)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    return keras.Model(x, [z_mean, z_log_var], name="encoder")


def build_implicit_encoder(n_pixels: int, noise_dim: int, width: int, depth: int,
                           activation: str = "relu", *, latent_dim: int) -> keras.Model:
    """(x, eps) -> z: a sample of the implicit q(z|x) for noise eps ~ N(0, I)."""
    x = keras.Input((n_pixels,), name="x")
    eps = keras.Input((noise_dim,), name="eps")
    h = mlp(layers.Concatenate(name="x_eps")([x, eps]), width, depth, "encoder", activation)
    z = layers.Dense(latent_dim, name="z")(h)
    return keras.Model([x, eps], z, name="encoder")


def build_structured_encoder(n_pixels: int, noise_dim: int, basis_size: int, width: int,
                             depth: int, activation: str = "relu", *, latent_dim: int) -> tuple:
    """(x, eps) -> z = a_0(x) + sum_i a_i(x) * v_i(eps), i = 1..basis_size, each term of
    latent_dim D coordinates and the product element-wise: the AVB paper's encoder for adaptive contrast. The basis v(eps)
    does not depend on x, so q's mean and variance for every x follow from the moments of v
    over noise draws alone (avb.py).

    Returns (encoder [x, eps] -> z, coefficients x -> [a_0, a] with a [N, basis_size * D],
    basis eps -> v [N, basis_size * D]); a and v are flattened with index D i + d.
    """
    x = keras.Input((n_pixels,), name="x")
    eps = keras.Input((noise_dim,), name="eps")
    h = mlp(x, width, depth, "coefficients", activation)
    a_0 = layers.Dense(latent_dim, name="a_0")(h)
    a = layers.Dense(basis_size * latent_dim, name="a")(h)
    v = layers.Dense(basis_size * latent_dim, name="v")(mlp(eps, width, depth, "basis",
                                                            activation))
    sum_over_basis = layers.Dense(
        latent_dim, use_bias=False, trainable=False, name="sum_over_basis",
        kernel_initializer=keras.initializers.Constant(np.tile(np.eye(latent_dim),
                                                               (basis_size, 1))))
    z = layers.Add(name="z")([a_0, sum_over_basis(layers.Multiply(name="a_v")([a, v]))])
    return (keras.Model([x, eps], z, name="encoder"),
            keras.Model(x, [a_0, a], name="coefficients"), keras.Model(eps, v, name="basis"))


def build_decoder(n_pixels: int, width: int, depth: int, activation: str = "relu", *,
                  latent_dim: int) -> keras.Model:
    """z [batch, latent_dim] -> one Bernoulli logit per pixel of p(x|z)."""
    z = keras.Input((latent_dim,), name="z")
    logits = layers.Dense(n_pixels, name="logits")(mlp(z, width, depth, "decoder", activation))
    return keras.Model(z, logits, name="decoder")


def build_adversary(n_pixels: int, width: int, depth: int, activation: str = "relu",
                    residual: bool = False, *, latent_dim: int) -> keras.Model:
    """(x, z) -> T(x, z) [batch, 1] = net(x, z) + |z|^2 / 2, which estimates log q(z|x) - log p(z).

    -log p(z) = |z|^2 / 2 + (D / 2) log(2 pi) is added analytically (its constant lives in the net's
    bias), so the net only has to learn log q(z|x). The fixed half-square term is a frozen
    Dense layer on z * z, which keeps the model made of standard layers. `depth` counts hidden
    layers, or residual blocks when `residual`.
    """
    x = keras.Input((n_pixels,), name="x")
    z = keras.Input((latent_dim,), name="z")
    body = residual_net if residual else mlp
    h = body(layers.Concatenate(name="x_z")([x, z]), width, depth, "adversary", activation)
    net = layers.Dense(1, name="net")(h)
    half_square = layers.Dense(1, use_bias=False, trainable=False, name="half_square_norm",
                               kernel_initializer=keras.initializers.Constant(0.5))(
        layers.Multiply(name="z_squared")([z, z]))
    t = layers.Add(name="T")([net, half_square])
    return keras.Model([x, z], t, name="adversary")


def adam(learning_rate: float, schedule: str, steps: int,
         weight_decay: float = 0.0) -> "keras.optimizers.Adam":
    """Adam at a constant rate, or decayed to zero along a half cosine over `steps` updates;
    with weight_decay > 0, decoupled (AdamW): each update also subtracts
    current rate x weight_decay x w from every weight w."""
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    return keras.optimizers.Adam(learning_rate, weight_decay=weight_decay or None)

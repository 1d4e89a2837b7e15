import dataclasses

import keras
import numpy as np
import pytest

import data
import networks
import registry
from configs import AVBConfig

BATCH = 5


@pytest.mark.parametrize("dataset, d", [("4px", 2), ("9px", 2), ("9px", 5)])
def test_network_shapes(dataset, d):
    n_pixels = data.load(dataset).n_pixels
    x = np.zeros((BATCH, n_pixels), np.float32)
    z = np.zeros((BATCH, d), np.float32)
    z_mean, z_log_var = networks.build_gaussian_encoder(n_pixels, 8, 2, latent_dim=d)(x)
    assert z_mean.shape == (BATCH, d) and z_log_var.shape == (BATCH, d)
    eps = np.zeros((BATCH, 3), np.float32)
    assert networks.build_implicit_encoder(n_pixels, 3, 8, 2, latent_dim=d)(
        [x, eps]).shape == (BATCH, d)
    structured, _, _ = networks.build_structured_encoder(n_pixels, 3, 4, 8, 2, latent_dim=d)
    assert structured([x, eps]).shape == (BATCH, d)
    assert networks.build_decoder(n_pixels, 8, 2, latent_dim=d)(z).shape == (BATCH, n_pixels)
    assert networks.build_adversary(n_pixels, 8, 2, latent_dim=d)([x, z]).shape == (BATCH, 1)
    residual = networks.build_adversary(n_pixels, 8, 2, "elu", residual=True, latent_dim=d)
    assert residual([x, z]).shape == (BATCH, 1)
    assert sum("_add" in layer.name for layer in residual.layers) == 2


def test_data_sets_are_one_hot():
    for name, n in [("4px", 4), ("9px", 9)]:
        d = data.load(name)
        assert d.x.dtype == np.float32 and d.x.shape == (n, n)
        np.testing.assert_array_equal(d.x.sum(1), 1.0)
        assert len(np.unique(d.x, axis=0)) == n
        assert np.prod(d.image_shape) == n
        assert d.optimum_log_px == pytest.approx(-np.log(n))
    assert data.one_hot_pixels(4).x.shape == (16, 16)
    with pytest.raises(ValueError, match="10 is not a perfect square"):
        data.load("10px")


def test_sample_batch_is_uniform_over_points():
    x = data.load("4px").x
    batch = data.sample_batch(x, 40000, [1, 2]).numpy()
    counts = batch.sum(0)
    assert counts.sum() == 40000
    np.testing.assert_allclose(counts / 40000, 0.25, atol=0.01)


def test_adversary_depends_on_x_and_z():
    adversary = networks.build_adversary(4, 16, 2, latent_dim=2)
    x = data.load("4px").x
    z = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    t = adversary([x, z]).numpy()[:, 0]
    t_other_x = adversary([x[::-1], z]).numpy()[:, 0]
    t_other_z = adversary([x, z + 1.0]).numpy()[:, 0]
    assert np.all(np.abs(t - t_other_x) > 1e-6)
    assert np.all(np.abs(t - t_other_z) > 1e-6)


def test_adversary_adds_half_square_norm_of_z():
    """T = net(x, z) + |z|^2 / 2: with the net's output layer zeroed, T is exactly |z|^2 / 2."""
    adversary = networks.build_adversary(4, 16, 2, latent_dim=2)
    net = adversary.get_layer("net")
    net.set_weights([np.zeros_like(w) for w in net.get_weights()])
    z = np.array([[1.0, 2.0], [-3.0, 0.5]], np.float32)
    t = adversary([np.eye(4, dtype=np.float32)[:2], z]).numpy()[:, 0]
    np.testing.assert_allclose(t, 0.5 * (z ** 2).sum(1), rtol=1e-6)
    assert not adversary.get_layer("half_square_norm").trainable


def test_saved_networks_load_with_plain_keras(tmp_path):
    model = registry.get("avb").build(
        AVBConfig(encoder_width=8, decoder_width=8, adversary_width=8), 4)
    for name, network in model.networks.items():
        path = tmp_path / f"{name}.keras"
        network.save(path)
        loaded = keras.models.load_model(path)
        inputs = [np.ones((3, s[-1]), np.float32) for s in network.input_shape] \
            if isinstance(network.input_shape, list) else np.ones((3, network.input_shape[-1]), np.float32)
        np.testing.assert_allclose(loaded(inputs), network(inputs), rtol=1e-6)


SMALL = {"encoder_width": 8, "decoder_width": 8, "adversary_width": 8}


@pytest.mark.parametrize("name", registry.names())
def test_every_registered_model_exposes_its_metrics_and_networks(name):
    spec = registry.get(name)
    config = registry.default_config(name, **small_settings(name))
    assert registry.spec_for(config).name == name and registry.spec_for(config) is spec
    model = spec.build(config, 4)
    metrics = model.train_step(data.load("4px").x, [0, 1])
    assert list(metrics) == list(spec.metric_names)
    np.testing.assert_allclose(metrics["elbo"], metrics["log_px_given_z"] + metrics["log_pz"]
                               - metrics["log_qz_given_x"], rtol=1e-5)
    assert set(model.networks) == set(spec.networks) and "decoder" in model.networks
    assert model.sample_posterior(data.load("4px").x, [2, 3]).shape == (4, 2)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_weight_decay_shrinks_each_weight_by_rate_times_decay(schedule):
    # Zero gradient: Adam's own step is 0, so one update leaves w (1 - rate x decay).
    w = keras.Variable(np.array([2.0, -4.0], np.float32))
    optimizer = networks.adam(0.1, schedule, steps=100, weight_decay=0.5)
    optimizer.build([w])
    optimizer.apply_gradients([(keras.ops.zeros_like(w), w)])
    np.testing.assert_allclose(w.numpy(), [2.0 * 0.95, -4.0 * 0.95], rtol=1e-6)
    undecayed = keras.Variable(np.array([2.0], np.float32))
    plain = networks.adam(0.1, schedule, steps=100)
    plain.build([undecayed])
    plain.apply_gradients([(keras.ops.zeros_like(undecayed), undecayed)])
    assert undecayed.numpy()[0] == 2.0


@pytest.mark.parametrize("name", registry.names())
def test_every_model_hands_its_weight_decay_to_the_encoder_decoder_optimizer(name):
    config = registry.default_config(name, weight_decay=0.25, **small_settings(name))
    optimizers = registry.get(name).build(config, 4).optimizers
    assert optimizers[0].weight_decay == 0.25
    assert all(other.weight_decay is None for other in optimizers[1:])   # the adversary's


def small_settings(name):
    """SMALL's settings that the named model has."""
    fields = {f.name for f in dataclasses.fields(registry.get(name).config_class)}
    return {k: v for k, v in SMALL.items() if k in fields}

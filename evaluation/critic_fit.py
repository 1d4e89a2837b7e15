"""The adversary on a known q: a fresh T(x, z) of the AVB's design trained against a frozen
q(z|x) that has a density, and its KL estimate against the true KL. This measures the
adversary's own estimation error, apart from the encoder's training (critic_check.py runs it
on a saved VAE or flow run).

T is trained exactly as the AVB trains it: the same network (networks.build_adversary, with
the analytic -log p(z) folded in) and the same logistic step (avb.adversary_update: q's samples
the positive class, N(0, I) samples the negative one, for the same x), on batches of the given
data points, while q stays fixed. Then, per data point, over the same draws z ~ q(z|x):

    T's KL   = E_q[T(x, z)]                        what the AVB's ELBO subtracts
    true KL  = E_q[log q(z|x) - log p(z)]          from q's exact density
    error    = T's KL - true KL = E_q[T(x, z) - (log q(z|x) - log p(z))]

The error is averaged over paired draws, so its standard error is small even where either KL
alone varies much more. A negative error is an ELBO that T puts too high.
"""

import time
from typing import Callable, NamedTuple

import keras
import numpy as np
import tensorflow as tf

import data
import networks
import registry
from harness import rundir
from avb import adversary_update
from configs import CriticSetting
from densities import standard_normal_log_density
from harness.training import assign_state, state_variables

EVALUATION_SAMPLES = 8192     # draws of q per data point for both KLs
STEPS_PER_CALL = 1000         # adversary steps per compiled call
STEP_STREAM, EVALUATION_STREAM = 1, 2   # the two uses of a check's seed


class FrozenQ(NamedTuple):
    """A saved run's q(z|x) with its density, and the data points the check is made on."""
    sample_q: Callable          # (x, seed) -> one z ~ q(z|x) per row
    log_q: Callable             # (x, z) -> log q(z|x)
    x: np.ndarray               # [points, pixels]
    labels: np.ndarray          # their classes (a one-hot point is its own class)
    latent_dim: int
    step: int                   # the saved step the weights are from


def frozen_q(run_path, settings: dict) -> FrozenQ:
    """The q of the run saved in run_path (settings: its config.json, read by
    rundir.read_config), at its saved state. The points are those the per-point figures draw
    (data.figure_points): every point of a one-hot set, the first test image of each class of
    a real one."""
    spec = registry.get(settings["model"])
    field_names = {f for f in spec.config_class.__dataclass_fields__}
    config = spec.config_class(**{k: v for k, v in settings.items() if k in field_names})
    dataset = data.load(config.dataset, config.data_options)
    model = spec.build(config, dataset.n_pixels)
    step, values = rundir.read_state(run_path, len(state_variables(model)))
    assign_state(model, values)
    x_shown, labels = data.shown_points(dataset)
    index = data.figure_points(labels)
    return FrozenQ(model.sample_posterior, model.log_q, x_shown[index], labels[index],
                   config.latent_dim, step)


class CheckResult(NamedTuple):
    """Per data point: T's KL, the true KL, T's error and its standard error, and q's scale
    (the geometric mean of its standard deviations along the latent axes)."""
    critic_kl: np.ndarray
    true_kl: np.ndarray
    error: np.ndarray
    error_stderr: np.ndarray
    q_scale: np.ndarray
    seconds: float              # training and evaluation


def build_critic(n_pixels: int, latent_dim: int, setting: CriticSetting, seed: int):
    """A fresh adversary and its Adam, initialised from the seed."""
    keras.utils.set_random_seed(seed)
    adversary = networks.build_adversary(n_pixels, setting.adversary_width,
                                         setting.adversary_depth, setting.activation,
                                         latent_dim=latent_dim)
    optimizer = networks.adam(setting.adversary_learning_rate, setting.schedule, setting.steps)
    optimizer.build(adversary.trainable_variables)
    return adversary, optimizer


def train_critic(adversary, optimizer, sample_q: Callable, x: np.ndarray,
                 setting: CriticSetting, seed: int) -> None:
    """setting.steps adversary steps on batches of the rows of x, each step's batch and draws
    keyed on (seed, step)."""
    x_all = tf.constant(x, tf.float32)
    key = tf.constant([seed, STEP_STREAM], tf.int64)

    @tf.function(jit_compile=True)
    def run(first_step, n_steps):
        def body(i, loss):
            step_key = tf.random.experimental.stateless_fold_in(key, first_step + i)
            batch_seed, q_seed, p_seed = tf.unstack(
                tf.random.experimental.stateless_split(step_key, 3))
            x_batch = data.sample_batch(x_all, setting.batch_size, batch_seed)
            z_q = tf.stop_gradient(sample_q(x_batch, q_seed))
            z_p = tf.random.stateless_normal(tf.shape(z_q), p_seed)
            loss, _ = adversary_update(adversary, optimizer, x_batch, z_q, z_p)
            return i + 1, loss

        return tf.while_loop(lambda i, _: i < n_steps, body, (tf.constant(0), 0.0))[1]

    for first in range(0, setting.steps, STEPS_PER_CALL):
        run(tf.constant(first), tf.constant(min(STEPS_PER_CALL, setting.steps - first)))


def kl_terms(adversary, sample_q: Callable, log_q: Callable, x_point, samples: int, seed):
    """(T(x, z), log q(z|x) - log p(z), z) at `samples` draws z ~ q(z|x) of one data point."""
    x_repeated = tf.repeat(tf.cast(x_point, tf.float32)[None], samples, axis=0)
    z = sample_q(x_repeated, seed)
    t = adversary([x_repeated, z])[:, 0]
    return t, log_q(x_repeated, z) - standard_normal_log_density(z), z


def evaluate_critic(adversary, sample_q: Callable, log_q: Callable, x: np.ndarray,
                    samples: int, seed: int) -> tuple:
    """Per point of x: T's KL, the true KL, the error's standard error and q's scale."""
    terms = tf.function(lambda x_point, key: kl_terms(adversary, sample_q, log_q, x_point,
                                                      samples, key), jit_compile=True)
    rows = []
    for i, x_point in enumerate(x):
        key = tf.constant([seed, EVALUATION_STREAM * 2**20 + i], tf.int64)
        t, log_ratio, z = (v.numpy().astype(np.float64) for v in terms(x_point, key))
        difference = t - log_ratio
        rows.append((t.mean(), log_ratio.mean(), difference.std(ddof=1) / np.sqrt(samples),
                     np.exp(np.mean(np.log(z.std(0) + 1e-30)))))
    return tuple(np.array(column) for column in zip(*rows))


def check(sample_q: Callable, log_q: Callable, x: np.ndarray, latent_dim: int,
          setting: CriticSetting, seed: int, samples: int = EVALUATION_SAMPLES) -> CheckResult:
    """Trains a fresh adversary against the frozen q on the data points x and measures its KL
    against the true one per point. sample_q(x, seed) draws one z ~ q(z|x) per row of x and
    log_q(x, z) is its exact log-density, both traceable TensorFlow functions."""
    start = time.perf_counter()
    adversary, optimizer = build_critic(x.shape[1], latent_dim, setting, seed)
    train_critic(adversary, optimizer, sample_q, x, setting, seed)
    critic_kl, true_kl, stderr, scale = evaluate_critic(adversary, sample_q, log_q, x,
                                                        samples, seed)
    return CheckResult(critic_kl, true_kl, critic_kl - true_kl, stderr, scale,
                       time.perf_counter() - start)

"""The importance-weighted autoencoder (IWAE; Burda, Grosse, Salakhutdinov 2016): the VAE's
Gaussian q(z|x) and decoder, trained on the K-sample bound

    log (1/K) sum_k p(x, z_k) / q(z_k|x),   z_k ~ q(z|x),

which equals the ELBO at K = 1 and rises towards log p(x) as K grows."""

from configs import VAEConfig
from model import TERM_NAMES, AtLeast, ModelSpec, lazy_module, term_means
from vae import VAE

tf = lazy_module("tensorflow")
DEFAULT_SAMPLES = 8       # K of an IWAE run with defaults (compare.py's, sweep.py's)


def importance_weighted_bound(log_weights):
    """log (1/K) sum_k exp(log_weights[..., k]) over the last axis, by logsumexp; each log
    weight is one sample's log p(x, z_k) - log q(z_k|x), i.e. its single-sample ELBO."""
    k = tf.cast(tf.shape(log_weights)[-1], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, -1) - tf.math.log(k)


class IWAE(VAE):
    def __init__(self, spec: ModelSpec, config: VAEConfig, n_pixels: int):
        super().__init__(spec, config, n_pixels)
        self.importance_samples = config.importance_samples

    def importance_terms(self, x, seed, k: int):
        """The terms at K = k samples z_k ~ q(z|x) per row of x, each of shape [k, batch], and
        the k-sample bound per row [batch]."""
        batch = tf.shape(x)[0]
        terms = self.terms(tf.tile(x, [k, 1]), seed)
        terms = type(terms)(*(tf.reshape(t, [k, batch]) for t in terms))
        return terms, importance_weighted_bound(tf.transpose(terms.elbo))

    def train_step(self, x, seed) -> dict:
        with tf.GradientTape() as tape:
            terms, bound = self.importance_terms(x, seed, self.importance_samples)
            loss = -tf.reduce_mean(bound)      # maximise the K-sample bound
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return {**term_means(terms), **self.spec.extra_metrics(tf.reduce_mean(bound))}

    def evaluation_extras(self, x, seed, samples: int) -> dict:
        """The K-sample bound per data point, averaged over samples // K independent
        bounds; x holds each data point repeated `samples` times."""
        k = self.importance_samples
        points = tf.convert_to_tensor(x)[::samples]
        _, bound = self.importance_terms(tf.repeat(points, samples // k, 0), seed, k)
        per_point = tf.reduce_mean(tf.reshape(bound, [points.shape[0], -1]), 1).numpy()
        [name] = self.spec.extra_metric_names           # the bound, as in training
        return {**super().evaluation_extras(x, seed, samples), name: float(per_point.mean()),
                f"{name}_per_point": per_point.tolist(), "importance_samples": k}


SPECS = (ModelSpec(
    name="iwae", label="IWAE (K={importance_samples})", config_class=VAEConfig,
    implementation=IWAE, metric_names=TERM_NAMES + ("iwae_bound",),
    description="the VAE's networks trained on the K-sample importance-weighted bound",
    variant_settings={"importance_samples": AtLeast(2, DEFAULT_SAMPLES)},
    variant_defaults={"4px": {"batch_size": 128}, "9px": {"batch_size": 128}},
    conflicts={"posterior": "gaussian"}, compared_by_default=False),)

"""True quantities of a trained model, beside the training-time estimates.

- log p(x) in a 2-D latent space is exact: it integrates p(x|z) p(z) over the latent plane
  with the midpoint rule on a square grid. The prior puts under 1e-8 of its mass outside
  [-6, 6]^2, and a 400 x 400 grid (cell width 0.03) resolves decoder boundaries far sharper
  than those a trained decoder draws. The even point count keeps the axes on cell edges, so a
  decoder that switches on the sign of a coordinate is integrated exactly.
- During training, log p(x) is tracked on a 200 x 200 grid (cell width 0.06), about 8 times
  cheaper; on the trained default decoders it agrees with the final grid to about 1e-4, and
  the smoke tests check that it agrees to 1e-3. Where D > 2 nothing is tracked.
- In D > 2 dimensions (and in 2-D with log_px = "ais"), log p(x) comes from annealed
  importance sampling (ais.py): a stochastic lower bound, reported with its standard error
  over the chains, their effective sample size, and a bidirectional Monte Carlo (BDMC) gap
  measured on data simulated from the trained model, which bounds AIS's own error there.
- A model with a density for q (spec.exact_log_q: the VAE) has its ELBO averaged over many z,
  with its exact log q.
- An implicit q(z|x) (the AVB's) has no density to evaluate, so its true ELBO
  = E_q[log p(x|z) + log p(z)] + H(q) takes the entropy H(q) = -E_q[log q(z|x)] from the
  Kozachenko-Leonenko nearest-neighbour estimator on fresh posterior samples, with the volume
  of the D-dimensional ball. It assumes no shape for q, and its error can have either sign;
  in 2-D, with 8000 samples and the 5th neighbour it is within about 0.02 nats on a Gaussian
  of any scale and on q's with corners (a quadrant, a narrow wedge), which the tests check.
  Its bias grows with D (README, "Latent dimensions").
- An implicit q need not have a density at all: a ReLU encoder can map sets of noise of
  positive probability onto lines or points. Then H(q) and the true ELBO are minus infinity,
  while every finite sample gives a finite estimate that keeps falling as the sample grows. So
  the estimate is made on nested samples of KNN_SAMPLE_SIZES, and `elbo_converged` says
  whether it settled (within ENTROPY_TOLERANCE at every data point, with no atoms); when it
  did not, the reported ELBO is only an upper estimate of a bound that may be minus infinity.
- The posterior gap KL(q(z|x) || p(z|x)) = log p(x) - ELBO.
"""

from typing import NamedTuple

import math

import numpy as np
import tensorflow as tf
from scipy.spatial import cKDTree

import ais
from configs import QUADRATURE_DIM, TrainConfig
from densities import bernoulli_log_likelihood, standard_normal_log_density
from rundir import CRITIC_ELBO

GRID_EXTENT = 6.0
GRID_POINTS = 400
TRACKING_GRID_POINTS = 200
ELBO_SAMPLES = 4096
KNN_SAMPLE_SIZES = (8000, 32000)   # nested samples of q per data point
KNN_NEIGHBOUR = 5
# A point's entropy estimate counts as converged when it moves by at most this between the
# sample sizes: the estimator's noise on a density is about 0.01 nats, and a q that puts mass w
# on lines moves by about w log 4 from 8000 to 32000 samples, so w >= 4 % is caught.
ENTROPY_TOLERANCE = 0.05
COINCIDENT_DISTANCE = 1e-6   # relative to the samples' spread: twins closer than this
COINCIDENT_LIMIT = 1e-3      # fraction of samples with a twin above which q has atoms
MIN_SPREAD = 1e-30
MIN_SQ_DIST = 1e-300      # keeps log finite when samples coincide


class LatentGrid(NamedTuple):
    z: tf.Tensor            # [G, 2] cell centres
    log_weight: tf.Tensor   # [G] log p(z) + log(cell area)


def latent_grid(extent: float = GRID_EXTENT, points: int = GRID_POINTS) -> LatentGrid:
    width = 2.0 * extent / points
    centres = np.linspace(-extent + width / 2, extent - width / 2, points, dtype=np.float32)
    z = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    z = tf.constant(z)
    return LatentGrid(z, standard_normal_log_density(z) + 2.0 * np.log(width))


def log_px_on_grid(decoder, x, grid: LatentGrid) -> tf.Tensor:
    """log p(x) = log sum over grid cells of p(x|z) p(z) dz, for each row of x: shape [N]."""
    log_px_given_z = bernoulli_log_likelihood(
        tf.convert_to_tensor(x)[:, None, :], decoder(grid.z)[None, :, :])   # [N, G]
    return tf.reduce_logsumexp(log_px_given_z + grid.log_weight[None, :], axis=1)


def exact_log_px(decoder, x, grid: LatentGrid | None = None) -> np.ndarray:
    """log p(x) for each row of x, on the evaluation grid unless another is given: shape [N]."""
    return log_px_on_grid(decoder, x, grid or latent_grid()).numpy()


def make_log_px_tracker(decoder, x, latent_dim: int):
    """A compiled function giving the mean log p(x) over the rows of x on the coarser tracking
    grid, cheap enough to call during training; None where the latent space is not 2-D."""
    if latent_dim != QUADRATURE_DIM:
        return None
    grid = latent_grid(points=TRACKING_GRID_POINTS)
    return tf.function(lambda: tf.reduce_mean(log_px_on_grid(decoder, x, grid)),
                       jit_compile=True)


def log_unit_ball_volume(d: int) -> float:
    """log of the volume pi^(d/2) / Gamma(d/2 + 1) of the unit ball in d dimensions."""
    return (d / 2) * math.log(math.pi) - math.lgamma(d / 2 + 1)


def knn_entropy(z: np.ndarray, k: int = KNN_NEIGHBOUR) -> float:
    """Kozachenko-Leonenko estimate of the differential entropy of the samples z [n, D]:
    H = psi(n) - psi(k) + log V_D + (D / 2) mean log r_k^2, with r_k each sample's distance to
    its k-th nearest other sample and V_D the volume of the unit D-ball (V_2 = pi)."""
    d = z.shape[1]
    kth_distance = nearest_distances(z, k)[:, -1]
    psi_n_minus_psi_k = np.sum(1.0 / np.arange(k, len(z)))
    return float(psi_n_minus_psi_k + log_unit_ball_volume(d)
                 + np.mean((d / 2) * np.log(np.maximum(kth_distance ** 2, MIN_SQ_DIST))))


def nearest_distances(z: np.ndarray, k: int) -> np.ndarray:
    """[n, k]: each sample's distances to its k nearest other samples, by a k-d tree (exact;
    queried on every core)."""
    z = np.asarray(z, np.float64)
    return cKDTree(z).query(z, k + 1, workers=-1)[0][:, 1:]   # column 0 is the sample itself


def coincident_fraction(z: np.ndarray) -> float:
    """The fraction of samples with another sample closer than COINCIDENT_DISTANCE times the
    samples' spread: zero for a density, the mass of the atoms where q has atoms."""
    z = np.asarray(z, np.float64)
    spread = max(float(np.sqrt(np.sum(np.var(z, 0)))), MIN_SPREAD)
    return float(np.mean(nearest_distances(z, 1)[:, 0] < COINCIDENT_DISTANCE * spread))


class EntropyCheck(NamedTuple):
    """Nearest-neighbour entropy estimates of one q at growing nested sample sizes."""
    by_sample_size: dict          # n -> entropy estimate on the first n samples
    coincident_fraction: float    # of the largest sample

    @property
    def converged(self) -> bool:
        """Whether the estimate has settled: a density's estimate moves by little more than
        its noise between sample sizes; a q with mass on lines or points (no density, entropy
        minus infinity) keeps falling, by about log 4 times that mass per 4 times the samples."""
        estimates = list(self.by_sample_size.values())
        return (max(estimates) - min(estimates) <= ENTROPY_TOLERANCE
                and self.coincident_fraction <= COINCIDENT_LIMIT)


def entropy_check(z: np.ndarray) -> EntropyCheck:
    """Entropy estimates on the first n of the samples z, for each n in KNN_SAMPLE_SIZES."""
    return EntropyCheck({n: knn_entropy(z[:n]) for n in KNN_SAMPLE_SIZES},
                        coincident_fraction(z))


class ImplicitELBO(NamedTuple):
    """The true ELBO of one data point under an implicit q, at each sample size."""
    by_sample_size: dict          # n -> E_q[log p(x|z) + log p(z)] + H(q), on n samples
    entropy: EntropyCheck

    @property
    def value(self) -> float:
        """The estimate on the most samples; an upper estimate when not converged."""
        return self.by_sample_size[max(self.by_sample_size)]


def implicit_elbo(model, x, seed) -> ImplicitELBO:
    """E_q[log p(x|z) + log p(z)] + H(q) for one data point x [1, P] on fresh posterior samples,
    with the entropy H(q) = -E_q[log q(z|x)] from their nearest neighbours, at each of
    KNN_SAMPLE_SIZES (nested samples) so that its convergence can be judged."""
    z = model.sample_posterior(tf.repeat(x, max(KNN_SAMPLE_SIZES), 0), seed)
    log_joint = (bernoulli_log_likelihood(x, model.decoder(z))
                 + standard_normal_log_density(z)).numpy()
    entropy = entropy_check(z.numpy())
    return ImplicitELBO({n: float(np.mean(log_joint[:n])) + h
                         for n, h in entropy.by_sample_size.items()}, entropy)


def implicit_elbo_metrics(model, x_all, point_seeds) -> dict:
    """metrics.json's ELBO entries for an implicit q: the largest sample's estimate as `elbo`,
    the estimate at each sample size, and whether it converged at every data point."""
    points = [implicit_elbo(model, x_all[i:i + 1], s) for i, s in enumerate(point_seeds)]
    converged = [p.entropy.converged for p in points]
    return {"elbo_per_point": [p.value for p in points],
            "elbo_by_sample_size": {str(n): float(np.mean([p.by_sample_size[n] for p in points]))
                                    for n in KNN_SAMPLE_SIZES},
            "elbo_converged": all(converged), "elbo_converged_per_point": converged,
            "coincident_fraction_per_point": [p.entropy.coincident_fraction for p in points],
            "elbo_method": "nearest-neighbour entropy"}


def explicit_elbo_metrics(model, x_all, point_seeds) -> dict:
    """metrics.json's ELBO entries for a q with a density: exact up to Monte Carlo error."""
    return {"elbo_per_point": [explicit_elbo(model, x_all[i:i + 1], s)
                               for i, s in enumerate(point_seeds)],
            "elbo_converged": True, "elbo_method": "exact log q"}


def log_px_estimate(model, x, config: TrainConfig) -> tuple:
    """(log p(x) per row of x, metrics.json's entries on how it was computed)."""
    if config.log_px_method == "quadrature":
        return exact_log_px(model.decoder, x), {"log_px_method": "quadrature"}
    return ais_metrics(model, tf.constant(x), config)


def evaluate_run(model, dataset, config: TrainConfig) -> dict:
    """True quantities of a trained model, per data point and as means; see the module doc."""
    x_all = tf.constant(dataset.x)
    log_px, log_px_metrics = log_px_estimate(model, dataset.x, config)
    seed = tf.constant([config.seed, 1], tf.int64)
    point_seeds = tf.unstack(tf.random.experimental.stateless_split(seed, dataset.n_points))
    elbo_metrics = (explicit_elbo_metrics if model.spec.exact_log_q
                    else implicit_elbo_metrics)(model, x_all, point_seeds)
    elbo = np.array(elbo_metrics["elbo_per_point"])
    metrics = {"log_px": float(log_px.mean()), "log_px_per_point": log_px.tolist(),
               **log_px_metrics,
               "optimum_log_px": dataset.optimum_log_px, "elbo": float(elbo.mean()),
               **elbo_metrics, "posterior_gap": float((log_px - elbo).mean()),
               "posterior_gap_per_point": (log_px - elbo).tolist()}
    x = tf.repeat(x_all, ELBO_SAMPLES, axis=0)
    if "elbo" in model.spec.critic_estimates:
        metrics.update(critic_elbo(model, x, seed, dataset.n_points))
    metrics.update(model.evaluation_extras(x, seed))
    return metrics


# log p(x) by annealed importance sampling, and BDMC's bound on its error (ais.py).

AIS_SEED, BDMC_SEED = 2, 3    # second words of the evaluation's seeds, apart from the ELBO's 1


def ais_start(model, x, config: TrainConfig) -> ais.Start:
    """Where each data point's config.ais_chains chains start: the prior, or the model's own
    q(z|x) (registry.make_config allows it only where q has a density)."""
    chains, n_points = config.ais_chains, int(x.shape[0])
    if config.ais_start == "prior":
        return ais.prior_start(chains, n_points, model.latent_dim)
    x_chains = tf.tile(x, [chains, 1])              # row c * N + n: chain c of point n

    def sample(seed):
        return tf.reshape(model.sample_posterior(x_chains, seed), [chains, n_points, -1])

    def log_prob(z):
        z = tf.reshape(z, [chains * n_points, -1])
        return tf.reshape(model.log_q(x_chains, z), [chains, n_points])
    return ais.Start(sample, log_prob)


def simulate(decoder, n_points: int, latent_dim: int, seed):
    """(x [n, P], z [n, D]) from the model's joint: z ~ p(z), x ~ p(x|z), each pixel on with
    probability sigmoid(logit); z is an exact sample of p(z|x) for that x."""
    z_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    z = tf.random.stateless_normal([n_points, latent_dim], z_seed)
    p_on = tf.sigmoid(decoder(z))
    return tf.cast(tf.random.stateless_uniform(tf.shape(p_on), x_seed) < p_on, tf.float32), z


def ais_metrics(model, x, config: TrainConfig) -> tuple:
    """(log p(x) per row of x by AIS, metrics.json's entries on it: each estimate's standard
    error and effective sample size, their means, and the BDMC bounds on simulated data)."""
    settings = dict(latent_dim=model.latent_dim, steps=config.ais_steps,
                    leapfrog_steps=config.ais_leapfrog_steps, schedule_name=config.ais_schedule)
    forward = ais.forward(ais.bernoulli_log_likelihood_fn(model.decoder, x),
                          ais_start(model, x, config),
                          seed=tf.constant([config.seed, AIS_SEED], tf.int64), **settings)
    bdmc = ais.bdmc(
        simulate=lambda seed: simulate(model.decoder, config.bdmc_points, model.latent_dim,
                                       seed),
        make_log_likelihood=lambda x_sim: ais.bernoulli_log_likelihood_fn(model.decoder, x_sim),
        make_start=lambda x_sim: ais_start(model, x_sim, config),
        seed=tf.constant([config.seed, BDMC_SEED], tf.int64), **settings)
    n_points = len(forward.log_px)
    return forward.log_px, {
        "log_px_method": "ais",
        "log_px_stderr": float(np.sqrt(np.sum(forward.stderr ** 2)) / n_points),
        "log_px_stderr_per_point": forward.stderr.tolist(),
        "log_px_ess_per_point": forward.ess.tolist(),
        "ais_acceptance": forward.acceptance,
        "bdmc_gap": bdmc.gap, "bdmc_lower": float(np.mean(bdmc.lower)),
        "bdmc_upper": float(np.mean(bdmc.upper)),
        "ais": {"steps": config.ais_steps, "chains": config.ais_chains,
                "leapfrog_steps": config.ais_leapfrog_steps, "schedule": config.ais_schedule,
                "start": config.ais_start, "bdmc_points": config.bdmc_points}}


def critic_elbo(model, x, seed, n_points: int) -> dict:
    """The critic's estimate of the ELBO (what the model optimises), beside the true one."""
    per_point = tf.reduce_mean(tf.reshape(model.terms(x, seed).elbo, [n_points, -1]), 1).numpy()
    return {CRITIC_ELBO: float(per_point.mean()),
            f"{CRITIC_ELBO}_per_point": per_point.tolist()}


def explicit_elbo(model, x, seed) -> float:
    """The ELBO of a model with a density for q, for one data point x [1, P], averaged over
    ELBO_SAMPLES draws of z."""
    return float(tf.reduce_mean(model.terms(tf.repeat(x, ELBO_SAMPLES, 0), seed).elbo))

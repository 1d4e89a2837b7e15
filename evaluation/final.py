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
- A semi-implicit q(z|x) (model.bounded_log_q) has no closed-form density, but an estimate of
  log q from mixing draws whose ELBO is a lower bound that rises to the true ELBO as the draws
  grow: the ELBO reported is that bound at the most of BOUND_DRAWS, and `elbo_converged` says
  whether it settled (within ENTROPY_TOLERANCE of the bound at a quarter of the draws); in 2-D
  the nearest-neighbour estimate below stands beside it as a cross-check.
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
- A data set that holds test images out (data.py) is evaluated on them: the first
  config.evaluated_test_points of its fixed test order, and log p(x) also on as many training
  images (train_log_px) to show how much the model overfits. Averaging hundreds of images,
  each takes fewer draws of q (HELD_OUT_ELBO_SAMPLES, HELD_OUT_KNN_SAMPLE_SIZES), the entropy's
  convergence is judged on the mean over the images (MEAN_ENTROPY_TOLERANCE), and metrics.json
  keeps, beyond PER_POINT_LIMIT images, each mean with its standard error over the images
  (<name>_image_stderr) instead of per-image lists.
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

import data
from configs import QUADRATURE_DIM, TrainConfig
from densities import bernoulli_log_likelihood, standard_normal_log_density
from evaluation import ais, critic_error
from evaluation.entropy import (COINCIDENT_LIMIT, ENTROPY_TOLERANCE, MEAN_ENTROPY_TOLERANCE,
                                EntropyCheck, entropy_check)
from evaluation.quadrature import exact_log_px
from evaluation.sizes import (BOUND_DRAWS, ELBO_SAMPLES, HELD_OUT_ELBO_SAMPLES,
                              HELD_OUT_KNN_SAMPLE_SIZES, KNN_SAMPLE_SIZES, POINTS_PER_CHUNK)
from harness.rundir import CRITIC_ELBO

PER_POINT = "_per_point"     # metrics.json's per-data-point lists end so
PER_POINT_LIMIT = 64         # data points above which those lists give way to summaries
SUMMARISED = ("log_px", "elbo", "posterior_gap", CRITIC_ELBO, "train_log_px")


class ImplicitELBO(NamedTuple):
    """The true ELBO of one data point under an implicit q, at each sample size."""
    by_sample_size: dict          # n -> E_q[log p(x|z) + log p(z)] + H(q), on n samples
    entropy: EntropyCheck

    @property
    def value(self) -> float:
        """The estimate on the most samples; an upper estimate when not converged."""
        return self.by_sample_size[max(self.by_sample_size)]


def posterior_draws(model, x, seed, n: int) -> tuple:
    """(z [n, D] drawn from q(z|x) for one data point x [1, P], log p(x|z) + log p(z) [n])."""
    z = model.sample_posterior(tf.repeat(x, n, 0), seed)
    return z, bernoulli_log_likelihood(x, model.decoder(z)) + standard_normal_log_density(z)


def implicit_elbo(model, x, seed, sample_sizes: tuple = KNN_SAMPLE_SIZES,
                  draw=posterior_draws) -> ImplicitELBO:
    """E_q[log p(x|z) + log p(z)] + H(q) for one data point x [1, P] on fresh posterior samples
    (from draw, posterior_draws or a compiled copy of it), with the entropy
    H(q) = -E_q[log q(z|x)] from their nearest neighbours, at each of sample_sizes (nested
    samples) so that its convergence can be judged."""
    z, log_joint = draw(model, x, seed, max(sample_sizes))
    entropy = entropy_check(z.numpy(), sample_sizes)
    log_joint = log_joint.numpy()
    return ImplicitELBO({n: float(np.mean(log_joint[:n])) + h
                         for n, h in entropy.by_sample_size.items()}, entropy)


def no_progress(phase: str):
    """Progress that shows nothing. A progress is called with a phase's name as the phase
    begins and returns its report(done, total), called after each part of the phase; either
    may raise to stop the evaluation (the harness raises on a stop signal)."""
    return ais.no_report


def each_point(progress, phase: str, evaluate, n_points: int) -> list:
    """[evaluate(i) for i in range(n_points)], reporting each point as a part of the phase."""
    report, values = progress(phase), []
    for i in range(n_points):
        values.append(evaluate(i))
        report(i + 1, n_points)
    return values


def implicit_elbo_metrics(model, x_all, point_seeds, sizes: "Sizes",
                          progress=no_progress) -> dict:
    """metrics.json's ELBO entries for an implicit q: the largest sample's estimate as `elbo`,
    the estimate at each sample size, and whether it converged: at every data point, or
    where sizes.judged_on_mean, on their mean (with no atoms at any point)."""
    draw = tf.function(posterior_draws, reduce_retracing=True)
    points = each_point(progress, "true ELBO (nearest-neighbour entropy)",
                        lambda i: implicit_elbo(model, x_all[i:i + 1], point_seeds[i],
                                                sizes.knn_sample_sizes, draw),
                        len(point_seeds))
    converged = [p.entropy.converged for p in points]
    by_size = {n: float(np.mean([p.entropy.by_sample_size[n] for p in points]))
               for n in sizes.knn_sample_sizes}
    if sizes.judged_on_mean:
        converged_overall = (max(by_size.values()) - min(by_size.values())
                             <= MEAN_ENTROPY_TOLERANCE
                             and all(p.entropy.coincident_fraction <= COINCIDENT_LIMIT
                                     for p in points))
    else:
        converged_overall = all(converged)
    return {"elbo_per_point": [p.value for p in points],
            "elbo_by_sample_size": {str(n): float(np.mean([p.by_sample_size[n] for p in points]))
                                    for n in sizes.knn_sample_sizes},
            "entropy_by_sample_size": {str(n): h for n, h in by_size.items()},
            "elbo_converged_fraction": float(np.mean(converged)),
            "elbo_converged": converged_overall, "elbo_converged_per_point": converged,
            "coincident_fraction_per_point": [p.entropy.coincident_fraction for p in points],
            "elbo_method": "nearest-neighbour entropy"}


def explicit_elbo_metrics(model, x_all, point_seeds, sizes: "Sizes",
                          progress=no_progress) -> dict:
    """metrics.json's ELBO entries for a q with a density: exact up to Monte Carlo error."""
    elbo = tf.function(lambda x, seed: explicit_elbo(model, x, seed, sizes.elbo_samples))
    return {"elbo_per_point": each_point(progress, "true ELBO (exact log q)",
                                         lambda i: float(elbo(x_all[i:i + 1], point_seeds[i])),
                                         len(point_seeds)),
            "elbo_converged": True, "elbo_method": "exact log q"}


def bounded_elbo_metrics(model, x_all, point_seeds, sizes: "Sizes",
                         progress=no_progress) -> dict:
    """metrics.json's ELBO entries for a q whose log density is estimated from mixing draws
    (model.bounded_log_q): the lower bound at each of BOUND_DRAWS, the largest as `elbo`, and
    whether it settled between them (at every data point, or on the mean where
    sizes.judged_on_mean); where D = 2 the nearest-neighbour estimate beside it."""
    bound = tf.function(model.elbo_bound, reduce_retracing=True)
    by_draws = each_point(progress, "ELBO bound (mixing draws)", lambda i: {
        draws: float(bound(x_all[i:i + 1], point_seeds[i], sizes.elbo_samples, draws)[0])
        for draws in BOUND_DRAWS}, len(point_seeds))
    fewest, most = min(BOUND_DRAWS), max(BOUND_DRAWS)
    change = [p[most] - p[fewest] for p in by_draws]
    metrics = {"elbo_per_point": [p[most] for p in by_draws],
               "elbo_by_draws": {str(n): float(np.mean([p[n] for p in by_draws]))
                                 for n in BOUND_DRAWS},
               "elbo_converged": bool(abs(np.mean(change)) <= MEAN_ENTROPY_TOLERANCE
                                      if sizes.judged_on_mean
                                      else max(map(abs, change)) <= ENTROPY_TOLERANCE),
               "elbo_method": f"lower bound from {most} mixing draws", "elbo_lower_bound": True}
    if model.latent_dim == QUADRATURE_DIM:
        cross_check = implicit_elbo_metrics(model, x_all, point_seeds, sizes, progress)
        metrics.update({"elbo_nearest_neighbour": float(np.mean(cross_check["elbo_per_point"])),
                        "elbo_nearest_neighbour_converged": cross_check["elbo_converged"]})
    return metrics


def elbo_metrics(model, x_all, point_seeds, sizes: "Sizes", progress=no_progress) -> dict:
    """metrics.json's ELBO entries, by the model's kind of q: a density, a bound from mixing
    draws, or implicit."""
    measure = (explicit_elbo_metrics if model.spec.exact_log_q
               else bounded_elbo_metrics if model.bounded_log_q else implicit_elbo_metrics)
    return measure(model, x_all, point_seeds, sizes, progress)


def log_px_estimate(model, x, config: TrainConfig, seed_word: int, progress=no_progress,
                    images: str = "", annealer=None) -> tuple:
    """(log p(x) per row of x, metrics.json's entries on how it was computed); seed_word keys
    AIS's randomness apart for each set of images evaluated, named by `images` in the
    progress; annealer: the model's AIS program (ais_annealer), built here if not given."""
    if config.log_px_method == "quadrature":
        report = progress(f"log p(x){images} by quadrature")
        return exact_log_px(model.decoder, x, report=report), {"log_px_method": "quadrature"}
    return ais_log_px(model, tf.constant(x), config, seed_word,
                      progress(f"log p(x){images} by AIS"), annealer)


def chunk_seed(seed, index: int):
    """The seed of chunk `index` of an evaluation: the evaluation's own seed for the first, so
    that up to POINTS_PER_CHUNK data points are evaluated as in one call."""
    return seed if index == 0 else tf.random.experimental.stateless_fold_in(seed, index)


class Sizes(NamedTuple):
    """How many draws of q the evaluation takes per data point, and how the nearest-neighbour
    entropy's convergence is judged."""
    elbo_samples: int            # for the ELBO of a q with a density, T's and the extras
    knn_sample_sizes: tuple      # the nested samples of the nearest-neighbour entropy
    judged_on_mean: bool         # convergence of the mean entropy over the data points, not
                                 # of each point's


def evaluation_sizes(dataset) -> Sizes:
    """Fewer draws per image where the evaluation averages many held-out images; their
    entropy's convergence is judged on the mean, as each image's noisier estimate fails the
    per-point check by chance at a few per cent of them."""
    if dataset.x_test is None:
        return Sizes(ELBO_SAMPLES, KNN_SAMPLE_SIZES, False)
    return Sizes(HELD_OUT_ELBO_SAMPLES, HELD_OUT_KNN_SAMPLE_SIZES, True)


def by_chunks(evaluate, x_all, seed, samples: int, report=ais.no_report) -> dict:
    """evaluate(x, seed, samples), x holding each data point repeated `samples` times, on
    chunks of POINTS_PER_CHUNK data points of x_all, merged: per-point lists joined, float means
    averaged (weighted by the chunk's points), anything else as the first chunk gave it."""
    chunks = []
    for index, start in enumerate(range(0, int(x_all.shape[0]), POINTS_PER_CHUNK)):
        x = tf.repeat(x_all[start:start + POINTS_PER_CHUNK], samples, axis=0)
        chunks.append((len(x) // samples, evaluate(x, chunk_seed(seed, index), samples)))
        report(min(start + POINTS_PER_CHUNK, int(x_all.shape[0])), int(x_all.shape[0]))
    total, merged = sum(n for n, _ in chunks), dict(chunks[0][1])
    for key, value in merged.items():
        if key.endswith(PER_POINT):
            merged[key] = [v for _, chunk in chunks for v in chunk[key]]
        elif isinstance(value, float):
            merged[key] = sum(n * chunk[key] for n, chunk in chunks) / total
    return merged


def summarised(metrics: dict, n_points: int) -> dict:
    """metrics.json's entries with each of SUMMARISED's standard error over the data points
    beside its mean, and without per-point lists where there are over PER_POINT_LIMIT."""
    summaries = {f"{name}_image_stderr": float(np.std(metrics[name + PER_POINT], ddof=1)
                                               / math.sqrt(n_points))
                 for name in SUMMARISED if name + PER_POINT in metrics and n_points > 1}
    kept = {key: value for key, value in metrics.items()
            if not key.endswith(PER_POINT) or n_points <= PER_POINT_LIMIT}
    return {**kept, **summaries}


def evaluate_run(model, dataset, config: TrainConfig, progress=no_progress) -> dict:
    """True quantities of a trained model on the images it is evaluated on (the test images
    where the data set holds some out, else all), per data point and as means, and log p(x)
    on as many training images; see the module doc. Each phase reports to progress."""
    x_eval = data.test_images(dataset, config.evaluated_test_points)
    x_all, n_points = tf.constant(x_eval), len(x_eval)
    # One AIS program for every AIS run of this evaluation (ais.Annealer).
    annealer = ais_annealer(model, config) if config.log_px_method == "ais" else None
    log_px, log_px_metrics = log_px_estimate(model, x_eval, config, AIS_SEED, progress,
                                             annealer=annealer)
    seed = tf.constant([config.seed, 1], tf.int64)
    point_seeds = tf.unstack(tf.random.experimental.stateless_split(seed, n_points))
    sizes = evaluation_sizes(dataset)
    elbo_entries = elbo_metrics(model, x_all, point_seeds, sizes, progress)
    elbo = np.array(elbo_entries["elbo_per_point"])
    metrics = {"evaluated_on": "test" if dataset.x_test is not None else "all",
               "n_evaluated": n_points, "split": dataset.split,
               "log_px": float(log_px.mean()), "log_px_per_point": log_px.tolist(),
               **log_px_metrics,
               "optimum_log_px": dataset.optimum_log_px, "elbo": float(elbo.mean()),
               **elbo_entries, "posterior_gap": float((log_px - elbo).mean()),
               "posterior_gap_per_point": (log_px - elbo).tolist()}
    if config.log_px_method == "ais":
        metrics.update(bdmc_metrics(model, config, progress("BDMC on simulated data"),
                                    annealer))
    if dataset.x_test is not None:
        train_log_px, train_metrics = log_px_estimate(
            model, data.training_subset(dataset, n_points), config, TRAIN_AIS_SEED, progress,
            " of the training subset", annealer)
        metrics.update({"train_log_px": float(train_log_px.mean()),
                        "train_log_px_per_point": train_log_px.tolist(),
                        **{f"train_{key}": value for key, value in train_metrics.items()
                           if key.startswith(("log_px_stderr", "log_px_ess"))}})
    if "elbo" in model.spec.critic_estimates:
        metrics.update(by_chunks(lambda x, s, k: critic_elbo(model, x, s, k), x_all, seed,
                                 sizes.elbo_samples, progress("ELBO estimated by T")))
    metrics.update(by_chunks(model.evaluation_extras, x_all, seed, sizes.elbo_samples,
                             progress("the model's own terms")))
    return summarised(metrics, n_points)


# The adversary's error (critic_error.py), where D = 2.

def critic_maps(model, dataset, config: TrainConfig, progress=no_progress) -> list:
    """[(index into the shown images, critic_error.CriticMap)] for data.figure_points of the
    shown images, where the model has a critic of log q and the latent space is 2-D; [] else."""
    if (config.latent_dim != QUADRATURE_DIM
            or "log_qz_given_x" not in model.spec.critic_estimates):
        return []
    x_shown, labels = data.shown_points(dataset)
    seed = tf.constant([config.seed, CRITIC_SEED], tf.int64)
    points = data.figure_points(labels)

    def point_map(i):
        n = points[i]            # a NumPy integer, as the seed's fold-in has always taken it
        return int(n), critic_error.critic_map(model, x_shown[n:n + 1],
                                               tf.random.experimental.stateless_fold_in(seed, n))
    return each_point(progress, "the adversary's error maps", point_map, len(points))


def critic_metrics(maps: list) -> dict:
    """metrics.json's entries of the maps: T's bias in the KL, per point and its mean."""
    if not maps:
        return {}
    bias = [m.kl_bias for _, m in maps]
    return {"critic_kl_bias": float(np.mean(bias)), "critic_kl_bias_per_point": bias,
            "critic_kl_bias_points": [n for n, _ in maps],
            "critic_kl_bias_method": f"histogram of {critic_error.HISTOGRAM_SAMPLES} q samples "
                                     f"on {critic_error.HISTOGRAM_BINS}^2 cells"}


# log p(x) by annealed importance sampling, and BDMC's bound on its error (ais.py).

AIS_SEED, BDMC_SEED, TRAIN_AIS_SEED = 2, 3, 4   # second words of the evaluation's seeds,
                                                # apart from the ELBO's 1
CRITIC_SEED = 5
MOMENT_SEED = 6
VALIDATION_SEED = 7     # the validation figure's, during training (validation.py)
MOMENT_SAMPLES = 1024        # draws of an implicit q whose moments make its AIS start
MIN_START_VARIANCE = 1e-6    # keeps the start a density where q's draws coincide


def q_log_prob(model):
    """log q(z|x) of a model whose q has a density, as an AIS start's log density:
    (z [chains, N, D], x [N, P], no params) -> [chains, N]."""
    def log_prob(z, x, params):
        chains, n_points = tf.shape(z)[0], tf.shape(z)[1]
        x_chains = tf.tile(x, [chains, 1])          # row c * N + n: chain c of point n
        z = tf.reshape(z, [chains * n_points, -1])
        return tf.reshape(model.log_q(x_chains, z), [chains, n_points])
    return log_prob


def ais_annealer(model, config: TrainConfig) -> ais.Annealer:
    """The model's compiled AIS loop for the start config.ais_start picks (ais_start), built
    once per evaluation and shared by all its AIS runs."""
    if config.ais_start == "prior":
        start_log_prob = ais.standard_normal_log_prob
    elif model.gaussian_q or not model.spec.exact_log_q:
        start_log_prob = ais.gaussian_log_prob
    else:
        start_log_prob = q_log_prob(model)
    return ais.Annealer(ais.bernoulli_log_likelihood_fn(model.decoder), start_log_prob,
                        config.ais_leapfrog_steps)


def ais_start(model, x, config: TrainConfig) -> ais.Start:
    """Where each data point's config.ais_chains chains start: the prior, or near the
    posterior: the model's own q(z|x) where q has a density (given by its mean and variance
    where it is Gaussian, so that the compiled loop does not run the encoder), else (an
    implicit q) the Gaussian with the mean and variance of MOMENT_SAMPLES draws of q per data
    point, the start the AVB authors' AIS uses, which is AC's r(z|x). Its log density is the
    one ais_annealer gives the program."""
    chains, n_points = config.ais_chains, int(x.shape[0])
    if config.ais_start == "prior":
        return ais.prior_start(chains, n_points, model.latent_dim)
    if model.gaussian_q:
        mean, log_var = model.gaussian_posterior(x)
        return ais.gaussian_start(mean, log_var, chains)
    if not model.spec.exact_log_q:
        seed = tf.constant([config.seed, MOMENT_SEED], tf.int64)
        z = tf.reshape(model.sample_posterior(tf.tile(x, [MOMENT_SAMPLES, 1]), seed),
                       [MOMENT_SAMPLES, n_points, -1])
        mean, variance = tf.nn.moments(z, axes=[0])
        return ais.gaussian_start(mean, tf.math.log(variance + MIN_START_VARIANCE), chains)
    x_chains = tf.tile(x, [chains, 1])              # row c * N + n: chain c of point n

    def sample(seed):
        return tf.reshape(model.sample_posterior(x_chains, seed), [chains, n_points, -1])
    return ais.Start(sample)


def simulate(decoder, n_points: int, latent_dim: int, seed):
    """(x [n, P], z [n, D]) from the model's joint: z ~ p(z), x ~ p(x|z), each pixel on with
    probability sigmoid(logit); z is an exact sample of p(z|x) for that x."""
    z_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    z = tf.random.stateless_normal([n_points, latent_dim], z_seed)
    p_on = tf.sigmoid(decoder(z))
    return tf.cast(tf.random.stateless_uniform(tf.shape(p_on), x_seed) < p_on, tf.float32), z


def ais_settings(model, config: TrainConfig) -> dict:
    return dict(latent_dim=model.latent_dim, steps=config.ais_steps,
                schedule_name=config.ais_schedule)


def ais_log_px(model, x, config: TrainConfig, seed_word: int, report=ais.no_report,
               annealer=None) -> tuple:
    """(log p(x) per row of x by AIS, metrics.json's entries on it: each estimate's standard
    error and effective sample size, and their means). annealer: ais_annealer's, built here
    if not given."""
    forward = ais.forward(annealer or ais_annealer(model, config), x,
                          ais_start(model, x, config),
                          seed=tf.constant([config.seed, seed_word], tf.int64),
                          report=report, **ais_settings(model, config))
    n_points = len(forward.log_px)
    return forward.log_px, {
        "log_px_method": "ais",
        "log_px_stderr": float(np.sqrt(np.sum(forward.stderr ** 2)) / n_points),
        "log_px_stderr_per_point": forward.stderr.tolist(),
        "log_px_ess_per_point": forward.ess.tolist(),
        "ais_acceptance": forward.acceptance,
        "ais": {"steps": config.ais_steps, "chains": config.ais_chains,
                "leapfrog_steps": config.ais_leapfrog_steps, "schedule": config.ais_schedule,
                "start": config.ais_start, "bdmc_points": config.bdmc_points}}


def bdmc_metrics(model, config: TrainConfig, report=ais.no_report, annealer=None) -> dict:
    """The BDMC bounds on AIS's error, measured on data simulated from the trained model, with
    the annealer's program (ais_annealer's, built here if not given)."""
    bdmc = ais.bdmc(
        annealer or ais_annealer(model, config),
        simulate=lambda seed: simulate(model.decoder, config.bdmc_points, model.latent_dim,
                                       seed),
        make_start=lambda x_sim: ais_start(model, x_sim, config),
        seed=tf.constant([config.seed, BDMC_SEED], tf.int64), report=report,
        **ais_settings(model, config))
    gap_stderr = bdmc.gap_stderr if math.isfinite(bdmc.gap_stderr) else None  # one point: none
    return {"bdmc_gap": bdmc.gap, "bdmc_gap_stderr": gap_stderr,
            "bdmc_lower": float(np.mean(bdmc.lower)), "bdmc_upper": float(np.mean(bdmc.upper))}


def critic_elbo(model, x, seed, samples: int) -> dict:
    """The critic's estimate of the ELBO (what the model optimises), beside the true one; x
    holds each data point repeated `samples` times."""
    per_point = tf.reduce_mean(tf.reshape(model.terms(x, seed).elbo, [-1, samples]),
                               1).numpy()
    return {CRITIC_ELBO: float(per_point.mean()),
            f"{CRITIC_ELBO}_per_point": per_point.tolist()}


def explicit_elbo(model, x, seed, samples: int = ELBO_SAMPLES) -> tf.Tensor:
    """The ELBO of a model with a density for q, for one data point x [1, P], averaged over
    `samples` draws of z."""
    return tf.reduce_mean(model.terms(tf.repeat(x, samples, 0), seed).elbo)

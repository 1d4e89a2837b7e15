"""log p(x) of a latent-variable model by annealed importance sampling (AIS), with bidirectional
Monte Carlo (BDMC) bounds on simulated data.

The model is p(z) = N(0, I) and a likelihood given as a callable, log_likelihood(z, x) =
log p(x_n | z) for z of shape [chains, N, D] and data x [N, P] -> [chains, N]: nothing here sees
a Keras model.

AIS (Neal 2001) moves each chain from a normalised start p_0 (the prior, or a Gaussian q(z|x))
to the unnormalised posterior p(z) p(x|z) through the intermediate densities

    log f_beta(z) = (1 - beta) log p_0(z) + beta (log p(z) + log p(x|z)),

beta_0 = 0 < beta_1 < ... < beta_T = 1. At step i the weight gains
(beta_i - beta_{i-1}) (log p(z) + log p(x|z) - log p_0(z)) at the current state, and then one
HMC transition (Annealer._hmc: leapfrog steps, identity mass matrix, a Metropolis test) that
leaves f_{beta_i} invariant moves the state. exp(weight) is an unbiased estimate of p(x), so
the log of the chains' mean weight is a stochastic lower bound on log p(x) (Jensen), and
approaches it as T grows.

Why a transition of its own rather than tfp.mcmc's: f_beta is linear in beta, so the log start
and log target densities and their gradients at a state (a Point) give f_beta and its gradient
at every beta. Each state's are computed once, at the leapfrog step that proposes it, and
serve the weight increment and the next temperature's first half step; tfp's kernel would
evaluate them again at each temperature (its bootstrap_results), one decoder gradient in four
at the default 3 leapfrog steps. (tfp.mcmc.sample_annealed_importance_chain has only the linear
schedule, and hands the next temperature a density and gradient computed under the old beta.)

Step sizes, and why every transition leaves its density invariant: each data point has its own
step size, shared by its chains. A forward run carries, beside the chains whose weights it
uses, PILOT_FRACTION as many pilot chains (at least MIN_PILOT_CHAINS), drawn from the same
start with their own seeds and moved by the same transitions. After each transition the step
size moves towards TARGET_ACCEPT_PROB (multiplied or divided by 1 + ADAPTATION_RATE, the rule
of tfp.mcmc.SimpleStepSizeAdaptation) on the pilot chains' mean acceptance probability alone;
the weighted chains never feed it. So the step size used at each temperature is a function of
the data and the pilot chains' randomness only, which is independent of the weighted chains;
given it, every transition of a weighted chain is an HMC kernel with a fixed step size (times
a jitter drawn independently of every state, STEP_JITTER), which leaves its intermediate
density invariant, and Neal's proof gives an unbiased weight given the step sizes, hence
unbiased overall. The pilot chains' weights are discarded. A reverse run adapts nothing: it
takes the step sizes a forward run on the same data recorded at each temperature (BDMC's
forward run), which depend on the data and that run's pilot only, not on the exact posterior
sample the reverse chains start from. Each point's chains are then independent given the step
sizes, so the standard error (which treats them as independent) holds; it is unreliable when
the ESS is near 1 (one chain carries the estimate), where it cannot exceed about 1 nat.

Schedules (SCHEDULES), all with beta_0 = 0 and beta_T = 1:
- "sigmoid": beta_i = (s(i) - s(0)) / (s(T) - s(0)) with s(i) = sigmoid(SIGMOID_SHARPNESS
  (2 i / T - 1)), the schedule Wu et al. (2017) used for decoder-based models. It takes small
  steps at both ends, where the intermediate densities change fastest: near beta = 0 the
  likelihood's weight is switched on and near beta = 1 the posterior is narrow.
- "linear": beta_i = i / T.
- "geometric": beta_i = GEOMETRIC_START ** ((T - i) / (T - 1)) for i >= 1 (equal ratios from
  GEOMETRIC_START to 1), after beta_0 = 0; for T = 1 it is [0, 1].

Bidirectional Monte Carlo (Grosse, Ghahramani, Adams 2015): on data simulated from the model's
joint, z ~ p(z), x ~ p(x|z), the simulated z is an exact posterior sample of its x. Reverse AIS
starts there, runs the transitions from beta = 1 down to 0, and its mean weight estimates
1 / p(x) without bias, so -log of it is a stochastic upper bound on log p(x). Forward AIS on the
same x gives the lower bound; the gap between the two bounds the error of forward AIS on data
like the simulated data.

Estimates per data point, from the log weights w over its C chains: log_px = logsumexp(w) -
log C; with w~ = exp(w - max w), stderr = std(w~) / (mean(w~) sqrt(C)) (the delta method, std
with C - 1 in the denominator); ess = (sum w~)^2 / sum w~^2.

The whole annealing loop, for the chains of all data points at once, is one
tf.function(jit_compile=True) (a tf.while_loop over temperatures, called for STEPS_PER_CALL
temperatures at a time), held by an Annealer: one per model and kind of start, which the
evaluation builds once. Its inputs are the data x, the start's parameters, the schedule, the
initial state, and the per-step seeds and jitters (drawn outside, as each random op inside adds
compile time), padded to MIN_PADDED_STEPS or the next power of two, so that forward and reverse
runs, runs on other data of the same shape, and runs of different lengths share one XLA
program. Compiling it takes about 2 s on a 2-core CPU, which on small problems is much of a
run's time. Nothing is cached by callable: an Annealer and its program go when it goes.

Defaults (measured on the 2-core CPU, shared with other jobs while measuring). A run costs
steps x (leapfrog_steps + 1) gradient evaluations per chain; at equal cost, more temperatures
with short trajectories beat fewer with long ones on the models here. RMS error per data point
(16 chains, 6-8 seeds x 9 one-hot images; truth by quadrature in 2-D, by a 4000-step,
128-chain AIS in 8-D), and gradient evaluations:

    steps x leapfrog       2-D VAE   2-D AVB   8-D VAE   gradients
    500 x 10               0.087     0.113     0.090     5500
    1000 x 3 (default)     0.061     0.109     0.067     4000
    1000 x 2               0.063     0.143     0.052     3000

The reported standard errors matched these RMS errors within about 15 %. On the random 2-D
decoder of tests/test_ais.py these settings (16 chains) are within 0.005 nats of quadrature on
average over the four points (six runs).

The chains default (configs.py) is 64, not 16: on 4px and 9px the points are few, so more
chains cost little, and the error falls as 1 / sqrt(chains). The pilot chains add 1/8 to the
chains' cost (12 % of a run's time on a 9px D = 8 VAE); docs/ais.md has the evaluation's time
against the code before them.
"""

import math
from typing import Callable, NamedTuple

import numpy as np
import tensorflow as tf

import densities
from configs import AIS_SCHEDULES as SCHEDULES, TrainConfig

# The defaults are the evaluation's settings (configs.py), which --help shows.
DEFAULT_STEPS = TrainConfig.ais_steps
DEFAULT_CHAINS = TrainConfig.ais_chains
DEFAULT_LEAPFROG_STEPS = TrainConfig.ais_leapfrog_steps
DEFAULT_SCHEDULE = TrainConfig.ais_schedule
DEFAULT_SEED = (0, 0)

INITIAL_STEP_SIZE = 0.1       # for every data point at beta = 0; adapted from there
TARGET_ACCEPT_PROB = 0.65     # HMC's optimal acceptance rate (Neal 2011) is about 0.65
ADAPTATION_RATE = 0.02        # step size times or divided by 1.02 after each transition
# Pilot chains per weighted chain, and their least number: only they adapt the step sizes.
PILOT_FRACTION = 1 / 8
MIN_PILOT_CHAINS = 4
# Each transition's step sizes are the adapted ones times a factor drawn uniformly from
# 1 -+ STEP_JITTER (one per data point, independent of the state, so every transition still
# leaves its density invariant). A fixed number of leapfrog steps times a fixed step size can
# match a period of the posterior's Hamiltonian flow and bring the chains back to where they
# started; the jitter breaks that (on a near-Gaussian posterior it halves the standard error
# at 3 or 4 leapfrog steps).
STEP_JITTER = 0.5
SIGMOID_SHARPNESS = 4.0       # the delta of Wu et al.'s sigmoid schedule
GEOMETRIC_START = 1e-4        # the geometric schedule's first positive beta
# The schedule, seeds and jitters go to the compiled loop padded to a length of at least
# MIN_PADDED_STEPS (else the next power of two), with the step count as a separate argument,
# so that runs of different lengths share one XLA program (a compile is about 2 s here).
MIN_PADDED_STEPS = 1024
# Temperatures per call of the compiled loop: between calls the host reports progress and a
# stop signal is honoured (a call of this many steps takes about a second on the largest
# default evaluations here).
STEPS_PER_CALL = 100


def no_report(done: int, total: int) -> None:
    """A report that shows nothing: `report(done, total)` is called after each part of a long
    computation, and may raise to stop it."""


def schedule(name: str, steps: int) -> np.ndarray:
    """beta_0 = 0 < ... < beta_steps = 1 (float64, length steps + 1)."""
    if steps < 1:
        raise ValueError(f"AIS needs at least one step, got {steps}")
    i = np.arange(steps + 1, dtype=np.float64)
    if name == "linear":
        betas = i / steps
    elif name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-SIGMOID_SHARPNESS * (2.0 * i / steps - 1.0)))
        betas = (s - s[0]) / (s[-1] - s[0])
    elif name == "geometric":
        if steps == 1:
            betas = np.array([0.0, 1.0])
        else:
            betas = np.concatenate(
                [[0.0], GEOMETRIC_START ** ((steps - i[1:]) / (steps - 1))])
    else:
        raise ValueError(f"unknown AIS schedule {name!r}; choose from {SCHEDULES}")
    betas[0], betas[-1] = 0.0, 1.0
    return betas


class Start(NamedTuple):
    """Where each data point's chains start: a normalised density, whose log is the
    Annealer's start_log_prob(z, x, params), given by its own tensors params."""
    sample: Callable     # seed -> z [chains, N, D]
    params: tuple = ()   # start_log_prob's parameters (inputs of the compiled loop)


def standard_normal_log_prob(z, x, params):
    """The prior's log density N(z; 0, I), the start of prior_start: [chains, N]."""
    return densities.standard_normal_log_density(z)


def gaussian_log_prob(z, x, params):
    """log N(z; mean, diag(exp(log_var))) per data point, params = (mean, log_var) [N, D]: the
    start of gaussian_start."""
    mean, log_var = params
    return densities.gaussian_log_density(z, mean, log_var)


def prior_start(chains: int, n_points: int, latent_dim: int) -> Start:
    """Chains started at the prior N(0, I) (standard_normal_log_prob)."""
    return Start(
        sample=lambda seed: tf.random.stateless_normal([chains, n_points, latent_dim], seed))


def gaussian_start(mean, log_var, chains: int = DEFAULT_CHAINS) -> Start:
    """Chains started at a diagonal Gaussian N(mean, diag(exp(log_var))) of each data point;
    mean and log_var [N, D] (gaussian_log_prob)."""
    mean = tf.convert_to_tensor(mean, tf.float32)
    log_var = tf.convert_to_tensor(log_var, tf.float32)
    shape = tf.concat([[chains], tf.shape(mean)], 0)

    def sample(seed):
        return mean + tf.exp(0.5 * log_var) * tf.random.stateless_normal(shape, seed)

    return Start(sample=sample, params=(mean, log_var))


def bernoulli_log_likelihood_fn(decoder):
    """log p(x|z) for a decoder mapping z [batch, D] -> logits [batch, P]: a callable
    (z [chains, N, D], binary x [N, P]) -> [chains, N]."""
    def log_likelihood(z, x):
        shape = tf.shape(z)
        logits = decoder(tf.reshape(z, [-1, shape[2]]))
        logits = tf.reshape(logits, tf.concat([shape[:2], [-1]], 0))
        return densities.bernoulli_log_likelihood(x, logits)

    return log_likelihood


class AISResult(NamedTuple):
    log_px: np.ndarray      # [N] log of the mean weight over the chains
    stderr: np.ndarray      # [N] its standard error (delta method on the weights)
    ess: np.ndarray         # [N] effective sample size (sum w)^2 / sum w^2 over chains
    log_weights: np.ndarray  # [chains, N] (of a reverse run: its weights estimate 1 / p(x))
    acceptance: float       # mean HMC acceptance probability over all steps and chains
    step_sizes: np.ndarray  # [steps, N] the step size of each temperature (before jitter)

    @property
    def step_size(self) -> np.ndarray:
        """[N] the step sizes of the last temperature."""
        return self.step_sizes[-1]


class BDMCResult(NamedTuple):
    lower: np.ndarray  # [M] forward AIS on the simulated data
    upper: np.ndarray  # [M] reverse AIS
    gap: float         # mean(upper - lower)
    gap_stderr: float  # its standard error over the simulated points


class NonFiniteWeights(ArithmeticError):
    """Some AIS weights are NaN or Inf; the message names the first such data point."""


class Point(NamedTuple):
    """The chains' states z [chains, N, D] with their log target (log p(z) + log p(x|z)) and
    log start densities [chains, N] and the gradients of both [chains, N, D]."""
    z: tf.Tensor
    target: tf.Tensor
    start: tf.Tensor
    grad_target: tf.Tensor
    grad_start: tf.Tensor


def pilot_chains(chains: int) -> int:
    """The pilot chains that adapt the step sizes of a forward run of `chains` chains."""
    return max(MIN_PILOT_CHAINS, math.ceil(PILOT_FRACTION * chains))


class Annealer:
    """One model's compiled annealing loop (see the module doc), for a likelihood
    log_likelihood(z, x), a kind of start start_log_prob(z, x, params) and a number of
    leapfrog steps; the data and the start's parameters are inputs of each run."""

    def __init__(self, log_likelihood, start_log_prob=standard_normal_log_prob,
                 leapfrog_steps: int = DEFAULT_LEAPFROG_STEPS):
        self.log_likelihood, self.start_log_prob = log_likelihood, start_log_prob
        self.leapfrog_steps = int(leapfrog_steps)
        self.run = tf.function(self._run, jit_compile=True, reduce_retracing=True)

    def _run(self, begin, end, betas, x, params, z, log_w, step_size, accepted, pilot, adapt,
             step_sizes, seeds, jitters):
        """The temperatures begin < k <= end: (begin, end, betas [S + 1], x [N, P], the
        start's params, z [chains, N, D] whose first `pilot` rows are pilot chains, log
        weights [chains, N] float64, the current step_size [N, 1], summed acceptance
        probability of the other chains, pilot, adapt, step_sizes [S, N, 1], seeds [S, 2],
        jitters [S, N, 1]) -> (z, log weights, summed acceptance, step_size, step_sizes) after
        those temperatures, for any padded length S >= end. A run is a sequence of calls, each
        continuing from the state the last one returned, so that the host can report progress
        and honour a stop between them (STEPS_PER_CALL).

        At each k the weight gains (betas[k] - betas[k-1]) (log target - log start) at z,
        then one HMC transition invariant for the density at betas[k] moves z, with the step
        size of temperature k: where adapt, the current one, recorded in step_sizes[k] and then
        moved on the pilot rows' acceptance alone; else step_sizes[k] as given. Forward AIS
        passes the schedule, reverse AIS the schedule reversed (its log weights then estimate
        log 1 / p(x)). The seeds and jitters are drawn outside: each random op in the compiled
        function adds about a second to XLA's compile time, the main cost on small problems."""
        betas = tf.cast(betas, z.dtype)
        # The increments use the betas that the transitions use, in float64.
        delta = tf.cast(betas[1:], tf.float64) - tf.cast(betas[:-1], tf.float64)
        is_pilot = tf.range(tf.shape(z)[0]) < pilot               # [chains]
        pilot_mask = tf.cast(is_pilot, z.dtype)[:, None]          # [chains, 1]

        def log_start(z):
            return self.start_log_prob(z, x, params)

        def log_target(z):
            return densities.standard_normal_log_density(z) + self.log_likelihood(z, x)

        def densities_at(z):
            """(log target, log start, their gradients) at z: every density f_beta and its
            gradient is a mix of these, so one evaluation serves every temperature."""
            with tf.GradientTape() as tape:
                tape.watch(z)
                target = log_target(z)
            grad_target = tape.gradient(target, z)
            with tf.GradientTape() as tape:
                tape.watch(z)
                start = log_start(z)
            return Point(z, target, start, grad_target, tape.gradient(start, z))

        def body(k, point, log_w, step_size, accepted, step_sizes):
            beta = betas[k + 1]
            log_w += delta[k] * tf.cast(point.target - point.start, tf.float64)
            used = tf.where(adapt, step_size, step_sizes[k])
            step_sizes = tf.tensor_scatter_nd_update(step_sizes, [[k]], [used])
            point, accept = self._hmc(densities_at, point, beta, used * jitters[k], seeds[k])
            accepted += tf.reduce_sum(accept * (1.0 - pilot_mask))
            pilot_accept = (tf.reduce_sum(accept * pilot_mask, 0)
                            / tf.maximum(tf.reduce_sum(pilot_mask), 1.0))[:, None]
            step_size = tf.where(pilot_accept < TARGET_ACCEPT_PROB,
                                 used / (1.0 + ADAPTATION_RATE), used * (1.0 + ADAPTATION_RATE))
            return k + 1, point, log_w, step_size, accepted, step_sizes

        _, point, log_w, step_size, accepted, step_sizes = tf.while_loop(
            lambda k, *_: k < end, body,
            (begin, densities_at(z), log_w, step_size, accepted, step_sizes))
        return point.z, log_w, accepted, step_size, step_sizes

    def _hmc(self, densities_at, point, beta, step_size, seed):
        """One HMC transition (Neal 2011) invariant for log f_beta = (1 - beta) log start +
        beta log target, with leapfrog_steps steps of step_size [N, 1] and an identity mass
        matrix; seed [2, 2]: the momentum's and the accept test's. -> (the new Point, each
        chain's acceptance probability [chains, N]). A non-finite proposal is rejected."""
        def log_f(p):
            return (1.0 - beta) * p.start + beta * p.target

        def grad_f(p):
            return (1.0 - beta) * p.grad_start + beta * p.grad_target

        momentum = tf.random.stateless_normal(tf.shape(point.z), seed[0])
        proposal, p = point, momentum + 0.5 * step_size * grad_f(point)
        for i in range(self.leapfrog_steps):
            proposal = densities_at(proposal.z + step_size * p)
            p += (0.5 if i == self.leapfrog_steps - 1 else 1.0) * step_size * grad_f(proposal)
        log_accept = (log_f(proposal) - 0.5 * tf.reduce_sum(tf.square(p), -1)
                      - log_f(point) + 0.5 * tf.reduce_sum(tf.square(momentum), -1))
        log_accept = tf.where(tf.math.is_finite(log_accept), log_accept, -np.inf)
        uniform = tf.random.stateless_uniform(tf.shape(log_accept), seed[1])
        take = tf.math.log(uniform) < log_accept
        new = Point(*(tf.where(take[..., None] if a.shape.rank == 3 else take, b, a)
                      for a, b in zip(point, proposal)))
        return new, tf.exp(tf.minimum(log_accept, 0.0))


def _seed(seed):
    return tf.cast(tf.convert_to_tensor(seed), tf.int64)


def _anneal(annealer: Annealer, x, start: Start, z, pilot: int, latent_dim, betas, seed,
            direction: str, step_sizes=None, report=no_report) -> AISResult:
    """Runs the annealer from states z [pilot + chains, N, D], the first `pilot` rows pilot
    chains (whose weights are dropped); step_sizes [steps, N]: the step size of each
    temperature, or None to adapt them on the pilot chains."""
    x = tf.convert_to_tensor(x, tf.float32)
    z = tf.convert_to_tensor(z, tf.float32)
    if z.shape.rank != 3 or z.shape[2] != latent_dim:
        raise ValueError(f"AIS states must be [chains, N, {latent_dim}], got {z.shape}")
    chains, n_points = z.shape[0] - pilot, z.shape[1]
    steps = len(betas) - 1
    padded = max(MIN_PADDED_STEPS, 1 << (steps - 1).bit_length())
    adapt = step_sizes is None
    if adapt:
        step_sizes = np.full([steps, n_points], INITIAL_STEP_SIZE, np.float32)
    elif np.shape(step_sizes) != (steps, n_points):
        raise ValueError(f"step sizes must be [{steps}, {n_points}], got {np.shape(step_sizes)}")
    step_sizes = np.concatenate([step_sizes, np.ones([padded - steps, n_points], np.float32)])
    step_sizes = tf.constant(step_sizes[:, :, None], tf.float32)
    step_size = step_sizes[0]
    step_seeds, jitter_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    seeds = tf.reshape(tf.random.experimental.stateless_split(step_seeds, 2 * padded),
                       [padded, 2, 2])
    jitters = 1.0 + STEP_JITTER * tf.random.stateless_uniform([padded, n_points, 1],
                                                              jitter_seed, -1.0, 1.0)
    betas = np.concatenate([betas, np.full(padded - steps, betas[-1])])
    betas = tf.constant(betas, tf.float64)
    log_w = tf.zeros([pilot + chains, n_points], tf.float64)
    accepted = tf.constant(0.0, tf.float32)
    for begin in range(0, steps, STEPS_PER_CALL):
        end = min(begin + STEPS_PER_CALL, steps)
        z, log_w, accepted, step_size, step_sizes = annealer.run(
            tf.constant(begin, tf.int32), tf.constant(end, tf.int32), betas, x, start.params, z,
            log_w, step_size, accepted, tf.constant(pilot, tf.int32), tf.constant(adapt),
            step_sizes, seeds, jitters)
        report(end, steps)
    log_w = log_w.numpy()[pilot:]
    bad = ~np.isfinite(log_w).all(0)
    if bad.any():
        raise NonFiniteWeights(f"AIS weights of data point {int(np.argmax(bad))} are NaN or "
                               f"Inf ({direction}, {steps} steps)")
    log_mean = _log_mean_exp(log_w)
    scaled = np.exp(log_w - log_w.max(0))
    stderr = (scaled.std(0, ddof=1) / (scaled.mean(0) * math.sqrt(chains)) if chains > 1
              else np.full(n_points, np.inf))
    ess = scaled.sum(0) ** 2 / np.square(scaled).sum(0)
    return AISResult(
        log_px=log_mean if direction == "forward" else -log_mean,
        stderr=stderr, ess=ess, log_weights=log_w,
        acceptance=float(accepted) / (steps * chains * n_points),
        step_sizes=step_sizes.numpy()[:steps, :, 0])


def _log_mean_exp(log_w):
    top = log_w.max(0)
    return top + np.log(np.mean(np.exp(log_w - top), 0))


def forward(annealer: Annealer, x, start: Start, latent_dim: int, steps: int = DEFAULT_STEPS,
            schedule_name: str = DEFAULT_SCHEDULE, seed=DEFAULT_SEED,
            report=no_report) -> AISResult:
    """Forward AIS on data x [N, P] from start (beta = 0) to the posterior (beta = 1): log_px
    is a stochastic lower bound on log p(x_n) for each data point. The step sizes adapt on
    pilot chains of their own (module doc), and the result records them. seed: a stateless
    seed, shape [2]; report(done, total) after each STEPS_PER_CALL temperatures."""
    start_seed, run_seed, pilot_seed = tf.unstack(
        tf.random.experimental.stateless_split(_seed(seed), 3))
    z = start.sample(start_seed)
    pilot = pilot_chains(int(z.shape[0]))
    draws = math.ceil(pilot / int(z.shape[0]))
    z_pilot = tf.concat([start.sample(s) for s in tf.unstack(
        tf.random.experimental.stateless_split(pilot_seed, draws))], 0)[:pilot]
    return _anneal(annealer, x, start, tf.concat([z_pilot, z], 0), pilot, latent_dim,
                   schedule(schedule_name, steps), run_seed, "forward", report=report)


def reverse(annealer: Annealer, x, start: Start, z_exact, step_sizes, latent_dim: int,
            steps: int = DEFAULT_STEPS, schedule_name: str = DEFAULT_SCHEDULE,
            seed=DEFAULT_SEED, report=no_report) -> AISResult:
    """Reverse AIS on data x from the posterior (beta = 1) to start (beta = 0), chains started
    at z_exact [chains, N, D], an exact posterior sample: log_px = -log mean(reverse weights)
    is a stochastic upper bound on log p(x_n). step_sizes [steps, N]: a forward run's on the
    same x (its result's step_sizes), which must not depend on z_exact; each temperature
    takes the step size the forward run used there."""
    run_seed = tf.random.experimental.stateless_split(_seed(seed), 3)[1]
    z_exact = tf.convert_to_tensor(z_exact, tf.float32)
    # Pilot rows keep the forward run's program shape; with step sizes given, nothing adapts.
    pilot = pilot_chains(int(z_exact.shape[0]))
    z = tf.concat([z_exact[:1]] * pilot + [z_exact], 0) if pilot else z_exact
    step_sizes = np.asarray(step_sizes, np.float32)
    # Reverse temperature j moves at forward temperature steps - 1 - j; the last, at beta = 0,
    # comes after the last weight and takes the first step size.
    reversed_sizes = np.concatenate([step_sizes[:-1][::-1], step_sizes[:1]])
    return _anneal(annealer, x, start, z, pilot, latent_dim,
                   schedule(schedule_name, steps)[::-1].copy(), run_seed, "reverse",
                   reversed_sizes, report)


def bdmc(annealer: Annealer, simulate, make_start, latent_dim: int,
         steps: int = DEFAULT_STEPS, schedule_name: str = DEFAULT_SCHEDULE, seed=DEFAULT_SEED,
         report=no_report) -> BDMCResult:
    """Bidirectional Monte Carlo: simulate(seed) -> (x_sim [M, P], z_exact [M, D]) from the
    model's joint; forward AIS on x_sim gives lower bounds on log p(x_sim), reverse AIS from
    z_exact, with the forward run's step sizes, upper bounds, both with the annealer's
    program. make_start(x) gives the Start for those x. report(done, total) counts both runs'
    temperatures."""
    simulate_seed, forward_seed, reverse_seed = tf.unstack(
        tf.random.experimental.stateless_split(_seed(seed), 3))
    x_sim, z_exact = simulate(simulate_seed)
    start = make_start(x_sim)
    lower = forward(annealer, x_sim, start, latent_dim, steps, schedule_name, forward_seed,
                    lambda done, total: report(done, 2 * total))
    chains = lower.log_weights.shape[0]
    z_exact = tf.convert_to_tensor(z_exact, tf.float32)
    upper = reverse(annealer, x_sim, start, tf.broadcast_to(z_exact, [chains, *z_exact.shape]),
                    lower.step_sizes, latent_dim, steps, schedule_name, reverse_seed,
                    lambda done, total: report(total + done, 2 * total))
    gaps = upper.log_px - lower.log_px
    return BDMCResult(lower=lower.log_px, upper=upper.log_px, gap=float(np.mean(gaps)),
                      gap_stderr=(float(np.std(gaps, ddof=1) / math.sqrt(len(gaps)))
                                  if len(gaps) > 1 else math.inf))

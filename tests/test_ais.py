"""AIS and BDMC (ais.py) against answers known in closed form or by quadrature.

Each compiled annealing loop costs about 5 s of XLA compilation here (the runs themselves take
well under 1 s), so the tests share them: the closed-form runs use one Annealer per kind of
start, whose data are an input (the NaN test passes spoilt data to the same program), and runs
of up to ais.MIN_PADDED_STEPS steps, forward or reverse, share one program. Three loops are
compiled: the prior start's, the Gaussian start's and the 2-D decoder's.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from evaluation import ais

# Its module fixture is built once: the module's tests run on one worker.
pytestmark = pytest.mark.xdist_group("test_ais")

# The closed-form case: z ~ N(0, I_D), y | z ~ N(A z, s^2 I_P), so p(y) = N(y; 0, A A^T + s^2 I).
# The noise scales differ by 30 times between the points, and so do their posterior widths.
LATENT_DIM = 4
OBS_DIM = 6
NOISE = np.array([0.1, 0.3, 1.0, 3.0])
N_POINTS = len(NOISE)
CHAINS = 16
STEPS = 1000
FEW_STEPS = 10
BDMC_REPEATS = 4
LEAPFROG_STEPS = 3
# Forward AIS must land within this many of its own standard errors of the truth; the floor
# keeps a run whose weights happen to agree closely from demanding more than the estimator gives.
STDERRS = 4.0
STDERR_FLOOR = 0.02
# The narrowest point's posterior is about 30 times narrower than the broadest's; per-point
# adaptation gives step sizes about 20 times apart, a shared step size one.
STEP_SIZE_RATIO = 5.0

# The 2-D decoder: quadrature on a 400 x 400 midpoint grid over [-6, 6]^2 (under 1e-8 of the
# prior's mass lies outside).
GRID_EXTENT = 6.0
GRID_POINTS = 400
QUADRATURE_TOLERANCE = 0.01
DECODER_CHAINS = 64
DECODER_STEPS = 500

_rng = np.random.default_rng(0)
A = _rng.normal(size=(OBS_DIM, LATENT_DIM))
Y = _rng.normal(size=(N_POINTS, LATENT_DIM)) @ A.T + NOISE[:, None] * _rng.normal(
    size=(N_POINTS, OBS_DIM))


def closed_form_log_py():
    out = []
    for y, s in zip(Y, NOISE):
        cov = A @ A.T + s ** 2 * np.eye(OBS_DIM)
        out.append(-0.5 * (y @ np.linalg.solve(cov, y) + np.linalg.slogdet(cov)[1]
                           + OBS_DIM * math.log(2 * math.pi)))
    return np.array(out)


TRUTH = closed_form_log_py()
POSTERIOR_COV = np.array([np.linalg.inv(np.eye(LATENT_DIM) + A.T @ A / s ** 2) for s in NOISE])
POSTERIOR_MEAN = np.einsum("nde,pe,np->nd", POSTERIOR_COV, A, Y) / NOISE[:, None] ** 2

FEW_STEP_SIZES = np.full([FEW_STEPS, N_POINTS], ais.INITIAL_STEP_SIZE, np.float32)
_SEED = tf.constant([3, 4], tf.int64)

_A, _NOISE = (tf.constant(v, tf.float32) for v in (A, NOISE[:, None]))


def gaussian_log_likelihood(z, y):
    """log N(y_n; A z, s_n^2 I) for z [chains, N, D], y [N, P] -> [chains, N]."""
    scaled = (y - tf.einsum("cnd,pd->cnp", z, _A)) / _NOISE
    return -0.5 * tf.reduce_sum(tf.square(scaled) + tf.math.log(2 * math.pi * _NOISE ** 2), -1)


# One program per kind of start, shared by every closed-form test.
PRIOR_ANNEALER = ais.Annealer(gaussian_log_likelihood, ais.standard_normal_log_prob,
                              LEAPFROG_STEPS)
GAUSSIAN_ANNEALER = ais.Annealer(gaussian_log_likelihood, ais.gaussian_log_prob, LEAPFROG_STEPS)


def posterior_sample(seed):
    """One exact draw of z from p(z | y_n) for each point: [N, D]."""
    eps = tf.random.stateless_normal([N_POINTS, LATENT_DIM], seed, dtype=tf.float64)
    return POSTERIOR_MEAN + tf.einsum("nde,ne->nd", np.linalg.cholesky(POSTERIOR_COV), eps)


def within_stderrs(result):
    return np.abs(result.log_px - TRUTH) <= STDERRS * np.maximum(result.stderr, STDERR_FLOOR)


@pytest.fixture(scope="module")
def prior_run():
    return ais.forward(PRIOR_ANNEALER, Y, ais.prior_start(CHAINS, N_POINTS, LATENT_DIM),
                       LATENT_DIM, STEPS, "sigmoid", [1, 2])


def test_forward_ais_from_the_prior_finds_the_closed_form_answer(prior_run):
    assert within_stderrs(prior_run).all(), (prior_run.log_px - TRUTH, prior_run.stderr)
    assert prior_run.log_weights.shape == (CHAINS, N_POINTS)
    assert np.all((prior_run.ess >= 1.0) & (prior_run.ess <= CHAINS))
    assert 0.3 < prior_run.acceptance < 0.95


def test_each_data_point_adapts_its_own_step_size(prior_run):
    narrow, broad = prior_run.step_size[np.argmin(NOISE)], prior_run.step_size[np.argmax(NOISE)]
    assert broad > STEP_SIZE_RATIO * narrow, prior_run.step_size


def test_forward_ais_from_a_gaussian_start_finds_the_closed_form_answer():
    widened = np.log(np.einsum("ndd->nd", POSTERIOR_COV) * 1.5 ** 2)
    start = ais.gaussian_start(POSTERIOR_MEAN, widened, CHAINS)
    result = ais.forward(GAUSSIAN_ANNEALER, Y, start, LATENT_DIM, STEPS, "sigmoid", [3, 4])
    assert within_stderrs(result).all(), (result.log_px - TRUTH, result.stderr)
    # Starting near the posterior, the weights vary far less than from the prior.
    assert result.stderr.mean() < 0.5 * ais.forward(
        PRIOR_ANNEALER, Y, ais.prior_start(CHAINS, N_POINTS, LATENT_DIM), LATENT_DIM,
        STEPS, "sigmoid", [3, 4]).stderr.mean()


def test_bdmc_brackets_the_truth_and_its_gap_shrinks_with_more_steps():
    # BDMC's simulated data are Y itself, with z drawn from Y's exact posterior.
    def simulate(seed):
        return tf.constant(Y, tf.float32), tf.cast(posterior_sample(seed), tf.float32)

    def bdmc(steps, seed):
        return ais.bdmc(PRIOR_ANNEALER, simulate,
                        lambda x: ais.prior_start(CHAINS, N_POINTS, LATENT_DIM), LATENT_DIM,
                        steps, "sigmoid", [seed, 6])

    # A few steps leave the bounds far apart but noisy (a lucky chain can lift a lower bound
    # above the truth): they are averaged over BDMC_REPEATS runs, which share one compiled loop.
    few = [bdmc(FEW_STEPS, seed) for seed in range(BDMC_REPEATS)]
    lower = np.mean([run.lower for run in few])
    upper = np.mean([run.upper for run in few])
    assert lower < TRUTH.mean() < upper, (lower, TRUTH.mean(), upper)
    gaps = few[0].upper - few[0].lower
    assert few[0].gap == pytest.approx(np.mean(gaps))
    assert few[0].gap_stderr == pytest.approx(np.std(gaps, ddof=1) / math.sqrt(N_POINTS))
    many = bdmc(STEPS, 0)
    assert abs(many.gap) < 0.1 * (upper - lower), (many.gap, upper - lower)


def test_ais_on_a_2d_decoder_matches_quadrature():
    keras.utils.set_random_seed(0)
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"),
                                keras.layers.Dense(4)])
    x = np.eye(4, dtype=np.float32)           # the four one-hot 2 x 2 images
    width = 2 * GRID_EXTENT / GRID_POINTS
    centres = np.linspace(-GRID_EXTENT + width / 2, GRID_EXTENT - width / 2, GRID_POINTS)
    grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    logits = decoder(grid.astype(np.float32)).numpy().astype(np.float64)
    log_joint = (x @ logits.T - np.logaddexp(0.0, logits).sum(1)
                 - 0.5 * np.square(grid).sum(1) - math.log(2 * math.pi) + 2 * math.log(width))
    top = log_joint.max(1)
    quadrature = top + np.log(np.exp(log_joint - top[:, None]).sum(1))

    result = ais.forward(ais.Annealer(ais.bernoulli_log_likelihood_fn(decoder),
                                      leapfrog_steps=LEAPFROG_STEPS), x,
                         ais.prior_start(DECODER_CHAINS, 4, 2), 2, DECODER_STEPS,
                         "sigmoid", [7, 8])
    assert abs(np.mean(result.log_px - quadrature)) < QUADRATURE_TOLERANCE, (
        result.log_px - quadrature)


def test_nan_weights_name_the_data_point_in_both_directions():
    start = ais.prior_start(CHAINS, N_POINTS, LATENT_DIM)
    z = tf.broadcast_to(tf.cast(posterior_sample([1, 2]), tf.float32),
                        [CHAINS, N_POINTS, LATENT_DIM])
    spoilt = Y.copy()
    spoilt[2] = np.nan
    # FEW_STEPS, as in the BDMC test, whose compiled loop this reuses (the data are an input).
    with pytest.raises(ais.NonFiniteWeights,
                       match=rf"data point 2 .*\(forward, {FEW_STEPS} steps\)"):
        ais.forward(PRIOR_ANNEALER, spoilt, start, LATENT_DIM, FEW_STEPS, "sigmoid", [1, 2])
    with pytest.raises(ais.NonFiniteWeights,
                       match=rf"data point 2 .*\(reverse, {FEW_STEPS} steps\)"):
        ais.reverse(PRIOR_ANNEALER, spoilt, start, z, FEW_STEP_SIZES, LATENT_DIM, FEW_STEPS,
                    "sigmoid", [1, 2])
    # With the data whole the same runs are finite.
    ais.forward(PRIOR_ANNEALER, Y, start, LATENT_DIM, FEW_STEPS, "sigmoid", [1, 2])


def test_only_the_pilot_chains_adapt_the_step_sizes():
    """The step sizes are a function of the pilot chains alone: weighted chains started far
    elsewhere leave them bit-identical, while other pilot chains change them."""
    pilot = ais.pilot_chains(CHAINS)
    z = tf.random.stateless_normal([pilot + CHAINS, N_POINTS, LATENT_DIM], [5, 6])
    elsewhere = tf.concat([z[:pilot], 3.0 + 2.0 * z[pilot:]], 0)
    other_pilot = tf.concat([3.0 + 2.0 * z[:pilot], z[pilot:]], 0)
    betas = ais.schedule("sigmoid", FEW_STEPS)

    def step_sizes(states):
        return ais._anneal(PRIOR_ANNEALER, Y, ais.prior_start(CHAINS, N_POINTS, LATENT_DIM),
                           states, pilot, LATENT_DIM, betas, _SEED, "forward").step_sizes

    first = step_sizes(z)
    assert first.shape == (FEW_STEPS, N_POINTS)
    np.testing.assert_array_equal(step_sizes(elsewhere), first)
    assert not np.array_equal(step_sizes(other_pilot), first)


def test_a_reverse_run_takes_the_forward_runs_step_sizes_and_adapts_nothing():
    z = tf.broadcast_to(tf.cast(posterior_sample([1, 2]), tf.float32),
                        [CHAINS, N_POINTS, LATENT_DIM])
    sizes = np.linspace(0.01, 0.2, FEW_STEPS * N_POINTS, dtype=np.float32).reshape(
        FEW_STEPS, N_POINTS)
    result = ais.reverse(PRIOR_ANNEALER, Y, ais.prior_start(CHAINS, N_POINTS, LATENT_DIM), z,
                         sizes, LATENT_DIM, FEW_STEPS, "sigmoid", [1, 2])
    # Reverse temperature j is forward temperature FEW_STEPS - 1 - j.
    np.testing.assert_array_equal(result.step_sizes[:-1], sizes[:-1][::-1])
    with pytest.raises(ValueError, match="step sizes must be"):
        ais.reverse(PRIOR_ANNEALER, Y, ais.prior_start(CHAINS, N_POINTS, LATENT_DIM), z,
                    sizes[1:], LATENT_DIM, FEW_STEPS, "sigmoid", [1, 2])


def test_one_program_serves_other_data_of_the_same_shape():
    """The data are an input of the compiled loop: a run on other data traces nothing new."""
    annealer = ais.Annealer(gaussian_log_likelihood, leapfrog_steps=LEAPFROG_STEPS)
    start = ais.prior_start(CHAINS, N_POINTS, LATENT_DIM)
    first = ais.forward(annealer, Y, start, LATENT_DIM, FEW_STEPS, "sigmoid", [1, 2])
    traced = annealer.run.experimental_get_tracing_count()
    other = ais.forward(annealer, Y + 1.0, start, LATENT_DIM, FEW_STEPS, "sigmoid", [1, 2])
    assert annealer.run.experimental_get_tracing_count() == traced
    assert not np.allclose(first.log_px, other.log_px)


@pytest.mark.parametrize("name", ais.SCHEDULES)
@pytest.mark.parametrize("steps", [1, 2, 7, 1000])
def test_schedules_rise_strictly_from_zero_to_one(name, steps):
    betas = ais.schedule(name, steps)
    assert betas.dtype == np.float64 and betas.shape == (steps + 1,)
    assert betas[0] == 0.0 and betas[-1] == 1.0
    assert np.all(np.diff(betas) > 0)


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown AIS schedule"):
        ais.schedule("cosine", 10)

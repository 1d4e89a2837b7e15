"""The validation figure a run selects its best step by: the mean log p(x) of validation images
(data.py's split of the training images, never trained on), measured for every model as the
final evaluation measures it on the test images: by quadrature on the tracking grid of the
first QUADRATURE_POINTS validation images where the run's log p(x) is by quadrature (D = 2),
by AIS with the run's AIS settings and start on the first AIS_POINTS otherwise, with the same
noise at every evaluation, so that the steps of a run differ by their networks alone. The test
images take no part.

An importance-sampling figure (256 draws from a Gaussian fitted to q's draws, mixed with the
prior) was measured first and dropped: at D = 8 on mnist5k its bias grew with training (5 nats
below AIS on the validation images at step 3000, 13 at step 10000), so it chose a step AIS
put 3.1 nats lower (docs/results-images.md).
"""

import numpy as np
import tensorflow as tf

from evaluation import final, quadrature

AIS_POINTS = 32           # validation images of the AIS figure (the first of the split's order)
QUADRATURE_POINTS = 1000  # and of the quadrature figure (full MNIST holds 6000)


def method(config) -> str:
    """How the figure is measured, for metrics.json."""
    if config.log_px_method == "quadrature":
        return (f"quadrature on the tracking grid ({quadrature.TRACKING_GRID_POINTS}^2 points) "
                f"of the first {QUADRATURE_POINTS} validation images at most")
    return (f"AIS on the first {AIS_POINTS} validation images ({config.ais_steps} steps, "
            f"{config.ais_chains} chains, from the {config.ais_start})")


def points(config, n_valid: int) -> int:
    """The number of validation images the figure averages."""
    return min(n_valid, QUADRATURE_POINTS if config.log_px_method == "quadrature" else AIS_POINTS)


def make_estimator(model, x_valid, config):
    """A function () -> the figure, the mean over the validation images x_valid [N, P]."""
    x = tf.constant(x_valid[:points(config, len(x_valid))])
    if config.log_px_method == "quadrature":
        track = quadrature.make_log_px_tracker(model.decoder, x, config.latent_dim)
        return lambda: float(track())
    annealer = final.ais_annealer(model, config)
    return lambda: float(np.mean(final.ais_log_px(model, x, config, final.VALIDATION_SEED,
                                                  annealer=annealer)[0]))

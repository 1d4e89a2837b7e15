"""How much the final evaluation computes: grid points, draws of q and data points per call.
No TensorFlow here: the memory check (harness/memory.py) reads these before anything is built."""

GRID_POINTS = 400            # per side of the final quadrature grid (quadrature.py)
ELBO_SAMPLES = 4096          # draws of q per data point for the ELBO of a q with a density
# A held-out evaluation averages hundreds of images, so each takes fewer draws: the mean's
# Monte Carlo error stays far below its standard error over the images.
HELD_OUT_ELBO_SAMPLES = 256
HELD_OUT_KNN_SAMPLE_SIZES = (2000, 8000)
POINTS_PER_CHUNK = 64        # data points whose ELBO_SAMPLES rows are evaluated in one call
KNN_SAMPLE_SIZES = (8000, 32000)   # nested samples of q per data point (entropy.py)
# Mixing draws of a semi-implicit q's estimate of log q (model.elbo_bound): the bound at the
# most is reported, and it has settled where a quarter of them gives the same within the
# entropy's tolerance.
BOUND_DRAWS = (1024, 4096)

"""A run's memory needs, estimated before anything is built, against what the machine has:
a run that cannot fit stops with one line naming its largest part, before anything is written.
"""

import dataclasses
import os
from pathlib import Path
from typing import NamedTuple

import data
from configs import TrainConfig
from evaluation import sizes
from harness.rundir import PRIOR_IMAGES

BYTES_PER_FLOAT = 4
WORK_COPIES = 3             # values, gradients and a working copy of each activation
PARAMETER_COPIES = 4        # each weight, its gradient and Adam's two moments
ADVERSARY_BATCHES = 2       # a critic sees a batch of posterior and one of prior samples
DATA_COPIES = 2             # the images as loaded and as a constant on the device


class OutOfMemory(Exception):
    """The run needs more memory than there is; nothing was written, or the run was kept at its
    last save."""


class MemoryNeeds(NamedTuple):
    """Rough upper bounds, in bytes, on the memory parts of a run hold (what -> bytes)."""
    one_at_a_time: dict     # computations run one after another: the largest counts
    throughout: dict        # what is held for the whole run


def memory_needs(config: TrainConfig, n_pixels: int, n_shown: int, n_evaluated: int
                 ) -> MemoryNeeds:
    """The widest, deepest network's activations for the rows each computation feeds it
    (a training batch, the posterior snapshot of the n_shown images, the evaluation's latent
    grid, ELBO samples and AIS chains on n_evaluated images); the weights and optimiser state;
    the posterior snapshots of every log step."""
    settings = dataclasses.asdict(config)
    widths = {name[:-len("_width")]: value for name, value in settings.items()
              if name.endswith("_width")}
    depths = {net: settings.get(f"{net}_depth", 1) for net in widths}
    widest, deepest = max([n_pixels, *widths.values()]), max([1, *depths.values()])
    layers = f" through up to {deepest} layers of up to {widest} units"
    rows = {f"a training step at --batch-size {config.batch_size}":
            ADVERSARY_BATCHES * config.batch_size,
            f"the posterior snapshot at --posterior-samples {config.posterior_samples}":
            n_shown * config.posterior_samples,
            "the evaluation's latent grid": sizes.GRID_POINTS ** 2,
            "the ELBO evaluation": sizes.ELBO_SAMPLES * min(n_evaluated, sizes.POINTS_PER_CHUNK),
            "the nearest-neighbour entropy": max(sizes.KNN_SAMPLE_SIZES),
            f"AIS at --ais-chains {config.ais_chains}": config.ais_chains * n_evaluated}
    logs = -(-config.steps // config.log_every)
    snapshot_floats = (n_shown * (config.posterior_samples * config.latent_dim + n_pixels)
                       + PRIOR_IMAGES * n_pixels)
    parameters = sum((depths[net] + 1) * widths[net] ** 2 for net in widths)
    return MemoryNeeds(
        {what + layers: n * widest * deepest * WORK_COPIES * BYTES_PER_FLOAT
         for what, n in rows.items()},
        {"the weights and optimiser state": parameters * PARAMETER_COPIES * BYTES_PER_FLOAT,
         f"the snapshots of {logs} log steps (--steps / --log-every)":
         logs * snapshot_floats * BYTES_PER_FLOAT})


def available_memory() -> int:
    """Bytes of memory this process can still take: MemAvailable (else the free pages), and
    no more than a cgroup limit (in a container) leaves."""
    try:
        meminfo = dict(line.split(":", 1) for line in
                       Path("/proc/meminfo").read_text().splitlines())
        available = int(meminfo["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text())
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


def gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


def check_data(name: str, options: data.DataOptions, test_points: int) -> data.Dataset:
    """data.check, after making sure from the data set's size alone that its images fit in
    memory: a ValueError with a one-line message before anything is built otherwise (a
    one-hot set of a million pixels would take 4 TB as a matrix)."""
    n_points, n_pixels = data.n_points(name), data.n_pixels(name)
    if n_pixels is not None:
        needed = DATA_COPIES * n_points * n_pixels * BYTES_PER_FLOAT
        available = available_memory()
        if needed > available:
            raise ValueError(f"not enough memory for {name}: its {n_points:,} images of "
                             f"{n_pixels:,} pixels need about {gib(needed)}, and "
                             f"{gib(available)} is available")
    return data.check(name, options, test_points)


def check_memory(config: TrainConfig, n_pixels: int, n_shown: int, n_evaluated: int) -> None:
    """Raises OutOfMemory, before anything is built or written, if the run cannot fit."""
    needs = memory_needs(config, n_pixels, n_shown, n_evaluated)
    total = max(needs.one_at_a_time.values()) + sum(needs.throughout.values())
    available = available_memory()
    if total > available:
        every = {**needs.one_at_a_time, **needs.throughout}
        largest = max(every, key=every.get)
        raise OutOfMemory(f"not enough memory: the run needs about {gib(total)}, "
                          f"{gib(every[largest])} of it for {largest}, and "
                          f"{gib(available)} is available")

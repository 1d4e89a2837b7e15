"""The comparison's figures: metrics over training (one panel per metric, every model on each),
and per run the latent picture after training and its animation over training.

Runs come grouped as {model name: [rundir.Run, ...] in seed order}; labels and colours come
from the registry.
"""

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

import data
import registry
from harness import rundir
from model import TERM_NAMES

PANEL_TITLES = {"log_px_given_z": "log p(x|z)", "log_pz": "log p(z)",
                "log_qz_given_x": "log q(z|x)", "elbo": "ELBO", "log_px": "log p(x)"}
PANEL_COLUMNS = 4
X_LABELS = {"steps": "training step", "seconds": "wall-clock seconds since training began"}
LATENT_EXTENT = 4.0          # the latent plane shown: [-4, 4]^2 in every frame
PRIOR_CIRCLES = (1, 2, 3)    # radii in prior standard deviations
GIF_MAX_FRAMES = 60
GIF_DPI = 72
GIF_FRAME_MS = 150
GIF_LAST_FRAME_MS = 2000   # the final state stays on screen before the loop restarts
PNG_DPI = 110
RECONSTRUCTED_PER_CLASS = 3  # test images per class drawn above their reconstructions
POSTERIOR_COLUMNS = 4
REGION_STYLES = ("solid", "dashed")   # of the exact posterior's regions, smallest first
CRITIC_FIGURE_POINTS = 4     # data points the adversary-error figure shows
MIN_DIFFERENCE_SPAN = 0.05   # nats: the colour scale of the error spans at least +- this
DIFFERENCE_PERCENTILE = 95   # and +- this percentile of its size
ZOOM_ROOM = 1.5              # a zoomed posterior panel spans this times its content
MIN_ZOOM_HALF_WIDTH = 0.25
X_TICK_COUNT = 5             # at most, so that step counts like 20000 stay legible


# The metrics figure.

def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Band(NamedTuple):
    """A metric over training: mean over seeds, and its min and max."""
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def logged_values(history: dict, column: str) -> tuple:
    """(steps, seconds, values) at the rows where the column has a value."""
    values = history.get(column, np.full_like(history["step"], np.nan))
    logged = np.isfinite(values)
    return history["step"][logged], history["seconds"][logged], values[logged]


def seed_band(runs: list, column: str, x_axis: str) -> Band | None:
    """The column over training across seeds, on the logged steps of the shortest run."""
    series = [s for s in (logged_values(run.history, column) for run in runs) if len(s[0])]
    if not series:
        return None
    steps = min((s[0] for s in series), key=len)
    values = np.stack([np.interp(steps, s[0], s[2]) for s in series])
    seconds = np.mean([np.interp(steps, s[0], s[1]) for s in series], axis=0)
    x = steps if x_axis == "steps" else seconds
    return Band(x, values.mean(axis=0), values.min(axis=0), values.max(axis=0))


def is_estimate(model: str, column: str) -> bool:
    """Whether the model's column is a learned critic's estimate rather than a true value."""
    return column in registry.get(model).critic_estimates


def model_label(model: str, runs: list) -> str:
    """The model's label, its settings filled in from its (first) run."""
    return registry.get(model).run_label(runs[0].config)


def curve_label(model: str, column: str, runs: list) -> str:
    label = model_label(model, runs) + (" (critic's estimate)" if is_estimate(model, column)
                                        else "")
    return label + (f", mean and min-max of {len(runs)} seeds" if len(runs) > 1 else "")


def plot_band(ax, model: str, runs: list, column: str, x_axis: str) -> None:
    band = seed_band(runs, column, x_axis)
    if band is None:
        return
    colour, sparse = registry.colour(model), len(band.x) < 20 or column == "log_px"
    ax.plot(band.x, band.mean, color=colour, marker="o" if sparse else None, markersize=3,
            linestyle="-." if is_estimate(model, column) else "-",
            label=curve_label(model, column, runs))
    if len(runs) > 1:
        ax.fill_between(band.x, band.low, band.high, color=colour, alpha=0.25, linewidth=0)


def final_x(runs: list, x_axis: str) -> float:
    key = "steps" if x_axis == "steps" else "train_seconds"
    return float(np.mean([run.metrics[key] for run in runs]))


def plot_final(ax, model: str, runs: list, key: str, x_axis: str, label: str,
               marker: str = "D") -> None:
    """The final evaluation from metrics.json as a marker at the end of training."""
    ax.plot(final_x(runs, x_axis), np.mean([run.metrics[key] for run in runs]), marker=marker,
            color=registry.colour(model), markeredgecolor="black", linestyle="none",
            label=f"{model_label(model, runs)} {label}")


def all_converged(runs: list) -> bool:
    """Whether every run's true ELBO estimate converged (rundir.elbo_converged)."""
    return all(rundir.elbo_converged(run.metrics) for run in runs)


def plot_references(ax, column: str, groups: dict, x_axis: str) -> None:
    """The optimum on the log-likelihood panels; the true ELBO (and log p(x) where the history
    has none) at the end of training."""
    for model, runs in groups.items():
        if column == "elbo" and all_converged(runs):
            plot_final(ax, model, runs, "elbo", x_axis, "true ELBO at the end")
        elif column == "elbo":
            plot_final(ax, model, runs, "elbo", x_axis, "true ELBO <= this (diverging "
                       "estimate: q has no density)", marker="v")
        if column == "log_px" and seed_band(runs, "log_px", x_axis) is None:
            plot_final(ax, model, runs, "log_px", x_axis, "log p(x) at the end")
    runs = next(iter(groups.values()))
    if column in ("elbo", "log_px") and runs[0].metrics["optimum_log_px"] is not None:
        ax.axhline(runs[0].metrics["optimum_log_px"], color="0.3", linestyle="--",
                   label=f"optimum -log {runs[0].config['n_points']}")


def draw_panel(ax, column: str, title: str, groups: dict, x_axis: str) -> None:
    from matplotlib.ticker import MaxNLocator

    for model, runs in groups.items():
        plot_band(ax, model, runs, column, x_axis)
    plot_references(ax, column, groups, x_axis)
    ax.set_title(title)
    ax.set_xlabel(X_LABELS[x_axis])
    ax.set_xlim(left=0)
    ax.xaxis.set_major_locator(MaxNLocator(X_TICK_COUNT))
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "not logged by these runs", ha="center", va="center",
                transform=ax.transAxes, color="0.4")


def held_out(groups: dict) -> bool:
    """Whether the runs were evaluated on held-out test images."""
    return next(iter(groups.values()))[0].config["n_test"] > 0


def panel_title(column: str, groups: dict) -> str:
    title = PANEL_TITLES.get(column, column.replace("_", " "))
    return title + " of the test images" if column == "log_px" and held_out(groups) else title


def describe(ax, groups: dict) -> None:
    """The figure's key, in the spare panel."""
    estimated = [model_label(m, runs) for m, runs in groups.items()
                 if registry.get(m).critic_estimates]
    runs = next(iter(groups.values()))
    data_lines = ([f"Terms: on training batches; log p(x) and the final",
                   f"values: on {runs[0].metrics.get('n_evaluated', '')} held-out test "
                   f"images ({runs[0].config['binarisation']}",
                   "binarisation). No optimum is known."] if held_out(groups) else
                  ["Dashed line: the best possible log-likelihood, -log N."])
    lines = ["Means over the steps between logs (history.csv).",
             *([f"{', '.join(estimated)}: log q(z|x) and ELBO (dash-dotted)",
                "are estimates by a learned critic (the adversary T),",
                "which can be biased."] if estimated else []),
             "Diamonds: true values after training (metrics.json);",
             "a triangle: an upper estimate that did not converge.",
             *data_lines,
             "log p(x): quadrature over the latent plane where D = 2;",
             "where D > 2 it is not tracked (AIS after training).",
             *(f"{model_label(m, runs)}: seed(s) "
               f"{', '.join(str(r.config['seed']) for r in runs)}" for m, runs in groups.items())]
    ax.axis("off")
    ax.text(0.0, 0.95, "\n".join(lines), va="top", fontsize=9, transform=ax.transAxes)


def panel_columns(groups: dict) -> list:
    """The ELBO terms and exact log p(x), then every other metric of the models shown."""
    extra = [name for model in groups for name in registry.get(model).metric_names
             if name not in TERM_NAMES]
    return [*TERM_NAMES, "log_px", *dict.fromkeys(extra)]


def plot_metrics(groups: dict, x_axis: str, path: Path) -> None:
    plt = pyplot()
    columns = panel_columns(groups)
    rows = math.ceil((len(columns) + 1) / PANEL_COLUMNS)
    fig, axes = plt.subplots(rows, PANEL_COLUMNS, figsize=(18, 4 * rows), layout="constrained")
    for ax, column in zip(axes.flat, columns):
        draw_panel(ax, column, panel_title(column, groups), groups, x_axis)
    for ax in axes.flat[len(columns):-1]:
        ax.axis("off")
    describe(axes.flat[-1], groups)
    dataset = next(iter(groups.values()))[0].config["dataset"]
    fig.suptitle(f"{' vs '.join(model_label(m, runs) for m, runs in groups.items())} on "
                 f"{dataset}: metrics over training (nats per data point)")
    rundir.write_atomic(path, lambda p: fig.savefig(p, dpi=PNG_DPI))
    plt.close(fig)


# The latent figure and its animation.

def mosaic(images: np.ndarray, image_shape, columns: int, frames, scale: int = 12,
           border: int = 2, gap: int = 3) -> np.ndarray:
    """Grey-scale images [N, pixels] as one RGB picture: a grid of tiles, each framed in its
    colour (frames: [N, 3]) with white between them."""
    tiles = images.reshape(-1, *image_shape).repeat(scale, axis=1).repeat(scale, axis=2)
    framed = np.broadcast_to(np.asarray(frames, float)[:, None, None, :],
                             (len(tiles), tiles.shape[1] + 2 * border,
                              tiles.shape[2] + 2 * border, 3)).copy()
    framed[:, border:-border, border:-border] = tiles[..., None]
    rows = math.ceil(len(framed) / columns)
    framed = np.concatenate([framed, np.ones((rows * columns - len(framed), *framed.shape[1:]))])
    spaced = np.pad(framed, ((0, 0), (gap, gap), (gap, gap), (0, 0)), constant_values=1.0)
    height, width = spaced.shape[1:3]
    return spaced.reshape(rows, columns, height, width, 3).swapaxes(1, 2).reshape(
        rows * height, columns * width, 3)


class Projection(NamedTuple):
    """The plane the latent figure shows: z @ axes [D, 2] (the identity where D = 2)."""
    axes: np.ndarray
    labels: tuple          # the two axes' names
    caption: str           # what the plane is, for the panel's title

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return z.reshape(-1, self.axes.shape[0]) @ self.axes


def latent_projection(z_final: np.ndarray) -> Projection:
    """For D > 2, the first two principal axes of the aggregate posterior at the last log step
    (every data point's samples together), fixed for the run so that the animation does not
    jump. Samples are projected through the origin, so the prior N(0, I) still projects to
    N(0, I) in the plane and its circles stay where they were."""
    z = z_final.reshape(-1, z_final.shape[-1]).astype(np.float64)
    d = z.shape[1]
    if d == 2:
        return Projection(np.eye(2), ("z1", "z2"), "")
    variances, vectors = np.linalg.eigh(np.cov(z, rowvar=False))
    order = np.argsort(variances)[::-1][:2]
    share = variances[order] / max(variances.sum(), np.finfo(float).tiny)
    return Projection(vectors[:, order], tuple(f"principal axis {i + 1} ({100 * f:.0f} % of "
                                               "the variance)" for i, f in enumerate(share)),
                      f"\nprojected on the first two principal axes of all q samples (D = {d})")


# The exact posterior beside q (exact_posterior.GridPosterior of a D = 2 run's trained decoder).

def draw_regions(ax, exact, k: int, colour) -> None:
    """The highest-density regions of the k-th posterior of `exact` as contour lines: the
    smaller region solid, the larger dashed."""
    levels = exact.levels(k)                       # one per HDR_MASS, largest level first
    order = np.argsort(levels)
    ax.contour(exact.centres, exact.centres, exact.mass[k].T, levels=levels[order],
               colors=[colour], linestyles=[REGION_STYLES[i] for i in order],
               linewidths=1.0)


def region_caption(masses) -> str:
    return " and ".join(f"{100 * m:.0f} % ({REGION_STYLES[i]})" for i, m in enumerate(masses))


class LatentFigure:
    """One run's decoded images and posterior samples at a log step, redrawn in place; with
    `exact`, the exact posterior's regions of data.figure_points at the end of training."""

    def __init__(self, run: rundir.Run, dpi: int, exact=None):
        plt = pyplot()
        self.run, self.plt, self.exact = run, plt, exact
        self.projection = latent_projection(run.posterior["z"][-1])
        self.labels = np.asarray(run.config["shown_labels"])
        self.held_out = run.config["n_test"] > 0
        self.colours = plt.get_cmap("tab10")(self.labels % 10)[:, :3]
        self.fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), dpi=dpi, layout="constrained",
                                      width_ratios=(1, 1, 1.1))
        self.images = [self.image_axes(ax, title) for ax, title in zip(axes[:2], (
            (f"{RECONSTRUCTED_PER_CLASS} test images per class, each above its\n"
             "reconstruction: p(x|z) means, z ~ q(z|x)" if self.held_out else
             "reconstructions: p(x|z) means, z ~ q(z|x)\n(frame colour = data point)"),
            "decoded prior samples: p(x|z) means\nat 16 fixed z ~ N(0, I)"))]
        self.scatter = self.latent_axes(axes[2])
        self.title = self.fig.suptitle("")

    def image_axes(self, ax, title: str):
        ax.set_title(title, fontsize=10)
        if "prior_images" not in self.run.posterior:
            ax.text(0.5, 0.5, "not saved in this run's posterior.npz", ha="center",
                    va="center", color="0.4", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        return ax.imshow(np.ones((2, 2, 3)), interpolation="nearest")

    def latent_axes(self, ax):
        for radius in PRIOR_CIRCLES:
            ax.add_patch(self.plt.Circle((0, 0), radius, fill=False, color="0.75",
                                         linestyle="--", linewidth=0.8))
        xlabel, ylabel = self.projection.labels
        ax.set(xlim=(-LATENT_EXTENT, LATENT_EXTENT), ylim=(-LATENT_EXTENT, LATENT_EXTENT),
               aspect="equal", xlabel=xlabel, ylabel=ylabel)
        what = (f"one colour per class, {len(self.labels)} test images"
                if self.held_out else "one colour per data point")
        caption = self.projection.caption
        if self.exact is not None:
            for k, n in enumerate(data.figure_points(self.labels)):
                draw_regions(ax, self.exact, k, self.colours[n])
            caption += (f"\nlines: exact p(z|x), its {region_caption(self.exact.masses)} "
                        "regions" + (", first test image per class" if self.held_out else ""))
        ax.set_title(f"posterior samples z ~ q(z|x), {what}\n"
                     "(grey circles: prior N(0, I) at 1, 2, 3 sd)" + caption, fontsize=10)
        if self.held_out:
            classes = np.unique(self.labels)
            ax.legend(handles=[self.plt.Line2D([], [], marker="o", linestyle="none",
                                               color=self.plt.get_cmap("tab10")(c % 10),
                                               label=str(c)) for c in classes],
                      fontsize=7, loc="upper right", ncols=2, title="class",
                      title_fontsize=7, handletextpad=0.1, columnspacing=0.5)
        return ax.scatter(np.zeros(0), np.zeros(0), s=5, linewidths=0, alpha=0.35)

    def draw(self, index: int) -> np.ndarray:
        """The figure at log step `index` of posterior.npz, as an RGB array."""
        posterior, config = self.run.posterior, self.run.config
        z = posterior["z"][index]
        self.scatter.set_offsets(self.projection(z))
        self.scatter.set_facecolor(np.repeat(self.colours, z.shape[1], axis=0))
        self.draw_images(index)
        self.title.set_text(f"{registry.get(config['model']).run_label(config)} on "
                            f"{config['dataset']}, seed "
                            f"{config['seed']}: step {int(posterior['steps'][index])} of "
                            f"{config['steps']}")
        self.fig.canvas.draw()
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def draw_images(self, index: int) -> None:
        posterior, shape = self.run.posterior, self.run.config["image_shape"]
        if "reconstructions" not in posterior or "prior_images" not in posterior:
            return
        reconstructions = posterior["reconstructions"][index]
        if self.held_out and "shown_images" in posterior:
            images, frames, columns = self.beside_originals(posterior["shown_images"],
                                                            reconstructions)
        else:
            images, frames = reconstructions, self.colours
            columns = math.ceil(math.sqrt(len(reconstructions)))
        self.images[0].set_data(mosaic(images, shape, columns, frames))
        prior = posterior["prior_images"][index]
        self.images[1].set_data(mosaic(prior, shape, 4, np.full((len(prior), 3), 0.6)))
        for image in self.images:
            height, width = image.get_array().shape[:2]
            image.set_extent((-0.5, width - 0.5, height - 0.5, -0.5))

    def beside_originals(self, originals: np.ndarray, reconstructions: np.ndarray) -> tuple:
        """(images, frame colours, columns): one column per class, rows alternating the
        first RECONSTRUCTED_PER_CLASS test images of each class and their reconstructions."""
        classes = np.unique(self.labels)
        index = np.array([np.flatnonzero(self.labels == c)[:RECONSTRUCTED_PER_CLASS]
                          for c in classes]).T                    # [rows, classes]
        order = np.concatenate([np.stack([row, row + len(self.labels)]) for row in index])
        images = np.concatenate([originals, reconstructions])[order.ravel()]
        return images, np.concatenate([self.colours, self.colours])[order.ravel()], len(classes)

    def close(self) -> None:
        self.plt.close(self.fig)


def gif_frames(n_logs: int) -> np.ndarray:
    """At most GIF_MAX_FRAMES log steps, evenly spread, always with the first and last."""
    return np.unique(np.linspace(0, n_logs - 1, min(n_logs, GIF_MAX_FRAMES)).round().astype(int))


def plot_latent(run: rundir.Run, png: Path, gif: Path, exact=None) -> None:
    """The latent figure at the end of training (with the exact posterior's regions where
    `exact` is given) and its animation over training (without them: only the final decoder
    is saved)."""
    import imageio.v3 as iio

    figure = LatentFigure(run, PNG_DPI, exact)
    figure.draw(-1)
    rundir.write_atomic(png, figure.fig.savefig)
    figure.close()
    figure = LatentFigure(run, GIF_DPI)
    frames = [figure.draw(i) for i in gif_frames(len(run.posterior["steps"]))]
    figure.close()
    durations = [GIF_FRAME_MS] * (len(frames) - 1) + [GIF_LAST_FRAME_MS]
    rundir.write_atomic(gif, lambda p: iio.imwrite(
        p, np.stack(frames), duration=durations if len(frames) > 1 else durations[0], loop=0))


def point_title(run: rundir.Run, exact, k: int, n: int) -> str:
    """A posterior panel's title: the point, its exact log p(x) and, where metrics.json holds
    per-point values for it (data sets evaluated on every point), its ELBO and KL."""
    m = run.metrics
    name = (f"class {run.config['shown_labels'][n]}" if run.config["n_test"] else
            f"data point {n}")
    title = f"{name}: log p(x) {exact.log_px[k]:.3f}"
    if m.get("evaluated_on", "all") == "all" and "elbo_per_point" in m:
        elbo = m["elbo_per_point"][n]
        bound = "" if rundir.elbo_converged(m) else "<= "
        title += (f"\nELBO {bound}{elbo:.3f}, KL(q || p(z|x)) "
                  f"{'>= ' if bound else ''}{exact.log_px[k] - elbo:.3f}")
    return title


def zoomed_limits(exact, k: int, z: np.ndarray) -> tuple:
    """(low [2], high [2]): a square around the larger region of the k-th exact posterior and
    q's samples z [samples, 2], with room around them: real images have narrow posteriors."""
    z1, z2 = np.meshgrid(exact.centres, exact.centres, indexing="ij")
    inside = exact.mass[k] >= exact.levels(k).min()
    points = np.concatenate([np.stack([z1[inside], z2[inside]], 1), z])
    centre = (points.min(0) + points.max(0)) / 2
    half = max((points.max(0) - points.min(0)).max() * ZOOM_ROOM / 2, MIN_ZOOM_HALF_WIDTH)
    return centre - half, centre + half


def plot_posteriors(run: rundir.Run, exact, path: Path) -> None:
    """posterior-<model>.png: per data.figure_points image, the exact posterior's density as an
    image, its regions as lines, and q's samples at the last log step on top."""
    plt = pyplot()
    points = data.figure_points(run.config["shown_labels"])
    rows = math.ceil(len(points) / POSTERIOR_COLUMNS)
    columns = min(len(points), POSTERIOR_COLUMNS)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 3.5 * rows),
                             layout="constrained", squeeze=False)
    z = run.posterior["z"][-1]
    colours = plt.get_cmap("tab10")(np.asarray(run.config["shown_labels"]) % 10)
    half = exact.width / 2
    extent = (exact.centres[0] - half, exact.centres[-1] + half) * 2
    for ax, (k, n) in zip(axes.flat, enumerate(points)):
        ax.imshow(exact.mass[k].T, origin="lower", extent=extent, cmap="Greys",
                  interpolation="nearest")
        draw_regions(ax, exact, k, "black")
        ax.scatter(z[n, :, 0], z[n, :, 1], s=4, linewidths=0, color=colours[n], alpha=0.6)
        low, high = (zoomed_limits(exact, k, z[n]) if run.config["n_test"] else
                     (np.full(2, -LATENT_EXTENT), np.full(2, LATENT_EXTENT)))
        ax.set(xlim=(low[0], high[0]), ylim=(low[1], high[1]), aspect="equal")
        ax.set_title(point_title(run, exact, k, n), fontsize=9)
    for ax in axes.flat[len(points):]:
        ax.axis("off")
    config = run.config
    fig.suptitle(f"{registry.get(config['model']).run_label(config)} on {config['dataset']}, "
                 f"seed {config['seed']}: exact posterior p(z|x) (grey; black lines: its "
                 f"{region_caption(exact.masses)} regions) and "
                 "samples of q(z|x) (dots) after training"
                 + (", each panel zoomed on them" if config["n_test"] else ""), fontsize=10)
    rundir.write_atomic(path, lambda p: fig.savefig(p, dpi=PNG_DPI))
    plt.close(fig)


def plot_critic(run: rundir.Run, critic: dict, path: Path) -> None:
    """critic-<model>.png: for the first CRITIC_FIGURE_POINTS points of critic.npz, T's
    estimate of log q(z|x), log q(z|x) from a histogram of q, and their difference where q
    has mass (rundir.read_critic, critic_error.py)."""
    plt = pyplot()
    rows = min(len(critic["points"]), CRITIC_FIGURE_POINTS)
    fig, axes = plt.subplots(rows, 3, figsize=(11, 3.3 * rows), layout="constrained",
                             squeeze=False)
    config = run.config
    for row, ax_row in enumerate(axes):
        n, edges = int(critic["points"][row]), critic["edges"][row]
        log_q, critic_log_q = critic["log_q"][row], critic["critic_log_q"][row]
        kept = np.isfinite(log_q)
        extent = (edges[0, 0], edges[0, -1], edges[1, 0], edges[1, -1])
        low, high = np.nanmin(log_q), np.nanmax(log_q)
        name = (f"class {config['shown_labels'][n]}" if config["n_test"] else
                f"data point {n}")
        difference = np.where(kept, critic_log_q - log_q, np.nan)
        span = max(np.nanpercentile(np.abs(difference), DIFFERENCE_PERCENTILE),
                   MIN_DIFFERENCE_SPAN)       # cells on q's edge, cut by it, go off the scale
        panels = ((np.where(kept, critic_log_q, np.nan), "T's estimate of log q(z|x)",
                   dict(cmap="viridis", vmin=low, vmax=high)),
                  (log_q, "log q(z|x) from a histogram of q", dict(cmap="viridis", vmin=low,
                                                                 vmax=high)),
                  (difference, f"difference: mean under q {critic['kl_bias'][row]:+.3f} "
                               "(T's KL bias)", dict(cmap="RdBu_r", vmin=-span, vmax=span)))
        for ax, (values, title, style) in zip(ax_row, panels):
            image = ax.imshow(values.T, origin="lower", extent=extent, aspect="auto",
                              interpolation="nearest", **style)
            fig.colorbar(image, ax=ax, shrink=0.85)
            ax.set_title(f"{name}: {title}", fontsize=9)
            ax.set(xlabel="z1", ylabel="z2")
    fig.suptitle(f"{registry.get(config['model']).run_label(config)} on {config['dataset']}, "
                 f"seed {config['seed']}: the adversary's error after training, where q has "
                 "mass (cells of the histogram with enough samples)", fontsize=10)
    rundir.write_atomic(path, lambda p: fig.savefig(p, dpi=PNG_DPI))
    plt.close(fig)


# The figures of a sweep: rows of its summary (sweep.summary_row), finished or not.

def figure_value(row: dict, key: str) -> float:
    """A finished run's value for a figure; log_px_gap is log p(x) - optimum."""
    if key == "log_px_gap":      # no optimum is known for real images
        return row["log_px"] - (row["optimum_log_px"] if row["optimum_log_px"] not in (None, "")
                                else math.nan)
    return row[key]


def seed_stats(rows: list, key: str) -> tuple:
    """(mean, min, max) over the finished runs among rows; NaNs when none finished."""
    values = [figure_value(r, key) for r in rows if r["status"] == "finished"]
    return (sum(values) / len(values), min(values), max(values)) if values else (math.nan,) * 3


def groups_of(rows: list, key) -> dict:
    groups = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


SCALING_PANELS = {"log_px_gap": "exact log p(x) - optimum", "posterior_gap":
                  "posterior gap: log p(x) - true ELBO"}
ROBUSTNESS_PANELS = {"elbo": "true ELBO", "log_px": "exact log p(x)"}
LINE_STYLES = ("-", "--", ":", "-.")
PANEL_INCHES = 4.5


def plot_scaling(rows: list, grid: dict, path: Path) -> Path:
    """Per model (and grid values), log p(x) - optimum and the posterior gap against the
    number of data points: mean over seeds, min-max band."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES, PANEL_INCHES))
    sizes = sorted({r["n_points"] for r in rows})
    groups = groups_of(rows, lambda r: (r["model"], tuple(r[k] for k in grid)))
    drawn = []        # models drawn so far: a model's grid values differ in line style
    for (model, values), group in groups.items():
        drawn.append(model)
        label = " ".join([registry.row_label(model, group[0]["dataset"], dict(zip(grid, values))),
                          *(f"{k}={v}" for k, v in zip(grid, values) if v != "")])
        ns = sorted({r["n_points"] for r in group})
        for ax, key in zip(axes, SCALING_PANELS):
            mean, low, high = zip(*(seed_stats([r for r in group if r["n_points"] == n], key)
                                    for n in ns))
            style = dict(color=registry.colour(model), linestyle=LINE_STYLES[
                (drawn.count(model) - 1) % len(LINE_STYLES)])
            ax.plot(ns, mean, marker="o", label=label, **style)
            ax.fill_between(ns, low, high, alpha=0.2, color=style["color"])
    for ax, title in zip(axes, SCALING_PANELS.values()):
        ax.set(xscale="log", xlabel="data points N (Npx)", title=title)
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.axhline(0.0, color="black", linewidth=0.8, linestyle=":")
    axes[0].legend(fontsize="small")
    fig.suptitle("Scaling with the data set: mean over seeds, band from min to max")
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    rundir.write_atomic(path, lambda p: fig.savefig(p, dpi=PNG_DPI, format="png"))
    pyplot().close(fig)
    return path


def diverging(rows: list, metric: str) -> int:
    """How many finished runs among rows have a true ELBO whose entropy estimate did not
    converge (an upper estimate: q has no density); 0 for any other metric."""
    return sum(metric == "elbo" and r["status"] == "finished" and r.get("elbo_converged") is False
               for r in rows)


def plot_robustness(model: str, rows: list, names: list, path: Path) -> Path:
    """The true ELBO and log p(x) over the grid, one row of panels per data set (and per
    value of any grid settings past the first two): a line with a seed band for one
    setting, a heat map for two. Failed runs are marked x; in the ELBO panels, runs whose
    entropy estimate diverged are counted (their ELBO is an upper estimate)."""
    plt = pyplot()
    panels = groups_of(rows, lambda r: (r["dataset"], *(r[k] for k in names[2:])))
    fig, axes = plt.subplots(len(panels), 2, squeeze=False,
                             figsize=(2 * PANEL_INCHES, PANEL_INCHES * len(panels)))
    draw = robustness_line if len(names) == 1 else robustness_map
    for ax_row, (key, group) in zip(axes, panels.items()):
        for ax, (metric, title) in zip(ax_row, ROBUSTNESS_PANELS.items()):
            draw(ax, group, names, metric)
            rest = " ".join(f"{k}={v}" for k, v in zip(names[2:], key[1:]))
            ax.set_title(" ".join(filter(None, [key[0], rest, title])))
    # a setting the label names shows its default, or the grid's name where the grid sweeps it
    label = registry.row_label(model, rows[0]["dataset"], {k: k for k in names})
    fig.suptitle(f"{label}: robustness over {', '.join(names)} "
                 "\n(mean over seeds, min to max; x: a run failed; diverging: runs whose "
                 "ELBO estimate did not converge)")
    return save_figure(fig, path)


def grid_values(rows: list, name: str) -> list:
    return sorted({r[name] for r in rows}, key=lambda v: (isinstance(v, str), v))


def robustness_line(ax, rows: list, names: list, metric: str) -> None:
    name = names[0]
    values = grid_values(rows, name)
    stats = [seed_stats([r for r in rows if r[name] == v], metric) for v in values]
    mean, low, high = zip(*stats)
    positions = range(len(values))
    ax.plot(positions, mean, marker="o", color=registry.colour(rows[0]["model"]))
    ax.fill_between(positions, low, high, alpha=0.2, color=registry.colour(rows[0]["model"]))
    for i, v in enumerate(values):
        failed = sum(r[name] == v and r["status"] != "finished" for r in rows)
        if failed:
            ax.plot(i, 0.02, "x", color="red", markersize=12, transform=ax.get_xaxis_transform())
        n_diverging = diverging([r for r in rows if r[name] == v], metric)
        if n_diverging:
            ax.annotate(f"{n_diverging} diverging", (i, 0.04), xycoords=("data", "axes fraction"),
                        ha="center", fontsize="small", color="red")
    if metric == "log_px" and data.kind_of(rows[0]["dataset"]) is data.ONE_HOT:
        ax.axhline(rows[0]["optimum_log_px"] or -math.log(rows[0]["n_points"]), color="black",
                   linestyle=":", linewidth=0.8, label="optimum")
    ax.set_xticks(list(positions), [str(v) for v in values])
    ax.set_xlabel(name)


def robustness_map(ax, rows: list, names: list, metric: str) -> None:
    first, second = (grid_values(rows, n) for n in names[:2])
    cells = np.full((len(second), len(first)), np.nan)
    for i, b in enumerate(second):
        for j, a in enumerate(first):
            cell = [r for r in rows if r[names[0]] == a and r[names[1]] == b]
            cells[i, j], low, high = seed_stats(cell, metric)
            failed = sum(r["status"] != "finished" for r in cell)
            spread = f"\n{low:.2f} to {high:.2f}" if len(cell) - failed > 1 else ""
            n_diverging = diverging(cell, metric)
            text = "x failed" if failed == len(cell) else f"{cells[i, j]:.3f}{spread}" + (
                f"\n{failed} x failed" if failed else "") + (
                f"\n{n_diverging} diverging" if n_diverging else "")
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="red" if failed or n_diverging else "black",
                    bbox=dict(facecolor="white", alpha=0.7, edgecolor="none"))
    image = ax.imshow(np.ma.masked_invalid(cells), cmap="viridis", aspect="auto")
    ax.figure.colorbar(image, ax=ax)
    ax.set_xticks(range(len(first)), [str(v) for v in first])
    ax.set_yticks(range(len(second)), [str(v) for v in second])
    ax.set(xlabel=names[0], ylabel=names[1])

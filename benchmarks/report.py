"""The benchmark's record (results.json) and its report (RESULTS.md): the targets it is
judged by and the tables, from measured figures alone. No TensorFlow here."""

from typing import NamedTuple

from figures.tables import table_lines

STYLES = ("eager", "tf.function per step", "compiled multi-step loop")
CONFIG_NAMES = ("default", "paper-like")
PAPER_LIKE = {"activation": "elu", "encoder_depth": 3, "encoder_width": 64, "decoder_depth": 3,
              "decoder_width": 64, "batch_size": 512}
# Applied to the models whose config has these settings (the adversarial ones).
PAPER_LIKE_ADVERSARY = {"noise_dim": 16, "adversary_width": 256, "adversary_depth": 2,
                  "adversary_architecture": "residual", "adversary_steps": 1}
THROUGHPUT_DATASET = "4px"
AIS_MODEL, AIS_DATASET, AIS_LATENT_DIM = "vae", "9px", 8   # whose decoder AIS is timed on
AIS_THROUGHPUT_STEPS = 64        # temperatures of each timed AIS run
AIS_EVALUATION_TARGET = 30.0     # seconds of the default AIS evaluation of a 9px, D = 8 run
MATMUL_CHAIN = 16                # products per compiled call of the peak measurement
QUALITY_EVAL_EVERY = 200         # log p(x) evaluations of the time-to-quality runs
# Targets of the speed issue, by (model, data set): nats below the optimum that count as
# quality, and (whole-process seconds, least final log p(x)) of a default run. A model without
# a quality target is timed to its own plateau: its final log p(x) less PLATEAU_TOLERANCE.
QUALITY_TARGETS = {("avb", "4px"): 0.015, ("avb", "9px"): 0.05}
RUN_TARGETS = {("avb", "4px"): (30.0, -1.40), ("avb", "9px"): (90.0, -2.25),
               ("iwae", "4px"): (30.0, -1.50), ("flow", "4px"): (30.0, -1.42),
               ("flow", "9px"): (90.0, -2.25)}
PLATEAU_TOLERANCE = 0.01
PAPER_LIKE_MODEL = "avb"         # the model whose paper-like loop has the throughput targets
HELP_REPEATS = 5
POLL_SECONDS = 0.05
TARGETS = {"fraction of peak": 0.75, "vs tf.function": 1.3, "vs eager": 4.0,
           "help seconds": 0.5}


class Throughput(NamedTuple):
    model: str
    config: str
    style: str
    steps_per_second: float
    flops_per_step: int


class ScriptRun(NamedTuple):
    model: str
    dataset: str
    eval_every: int | None
    wall_seconds: float
    train_seconds: float
    final_log_px: float
    optimum_log_px: float
    peak_rss_mb: float
    log_px_times: list       # (seconds since process start, step, log p(x)) at each evaluation


def time_to_quality(run: ScriptRun) -> tuple:
    """(threshold, seconds since process start when log p(x) first reached it or None)."""
    below_optimum = QUALITY_TARGETS.get((run.model, run.dataset))
    threshold = (run.final_log_px - PLATEAU_TOLERANCE if below_optimum is None
                 else run.optimum_log_px - below_optimum)
    reached = [seconds for seconds, _, log_px in run.log_px_times if log_px >= threshold]
    return threshold, (reached[0] if reached else None)


# The report.

def throughput_table(results: list, peak: float) -> list:
    rate = {(r.model, r.config, r.style): r.steps_per_second for r in results}

    def row(r) -> list:
        eager, per_step = (rate.get((r.model, r.config, s)) for s in STYLES[:2])
        gflops = r.steps_per_second * r.flops_per_step / 1e9
        return [r.model.upper(), r.config, r.style, f"{r.steps_per_second:.1f}",
                ratio(r.steps_per_second, eager), ratio(r.steps_per_second, per_step),
                f"{r.flops_per_step / 1e6:.1f}", f"{gflops:.1f}", f"{100 * gflops / peak:.1f} %"]
    return table_lines(["model", "configuration", "loop", "steps/s", "x eager",
                        "x tf.function per step", "MFLOP/step", "GFLOP/s", "of peak"],
                       [row(r) for r in results], "lllrrrrrr")


def ratio(a, b) -> str:
    return f"{a / b:.2f}" if b else ""


def runs_table(runs: list) -> list:
    def row(run) -> list:
        threshold, reached = time_to_quality(run)
        return [run.model, run.dataset, run.eval_every or "default", f"{run.wall_seconds:.1f}",
                f"{run.train_seconds:.1f}", f"{run.final_log_px:.4f}",
                f"{run.optimum_log_px:.4f}", f"{threshold:.4f}",
                "not reached" if reached is None else f"{reached:.1f}", f"{run.peak_rss_mb:.0f}"]
    return table_lines(["model", "data set", "--eval-every", "whole process (s)", "training (s)",
                        "final exact log p(x)", "optimum", "quality threshold",
                        "reached after (s)", "peak RSS (MB)"], [row(r) for r in runs],
                       "lllrrrrrrr")


def targets(results: list, runs: list, peak: float, help_time: float) -> list:
    """(target, measured, shortfall) for each target of the speed issue that this run
    measured; shortfall is None where the target is met, else how far the figure misses it."""
    rows = []
    for run in runs:
        if (run.model, run.dataset) in RUN_TARGETS and run.eval_every is None:
            seconds, least = RUN_TARGETS[(run.model, run.dataset)]
            misses = ([f"{run.wall_seconds - seconds:.1f} s too slow"]
                      if run.wall_seconds > seconds else []) + (
                [f"{least - run.final_log_px:.4f} nats short"] if run.final_log_px < least else [])
            rows.append((f"{run.model} {run.dataset} defaults: whole process <= {seconds:.0f} s "
                         f"with log p(x) >= {least}", f"{run.wall_seconds:.1f} s, "
                         f"{run.final_log_px:.4f}", ", ".join(misses) or None))
    rate = {(r.model, r.config, r.style): r for r in results}
    loop = rate.get((PAPER_LIKE_MODEL, "paper-like", STYLES[2]))
    if loop:
        fraction = loop.steps_per_second * loop.flops_per_step / 1e9 / peak
        rows.append((f"paper-like AVB: >= {TARGETS['fraction of peak']:.0%} of the matmul peak",
                     f"{fraction:.1%}", shortfall(fraction, TARGETS["fraction of peak"])))
        for style, key in zip(STYLES[:2], ("vs eager", "vs tf.function")):
            other = rate.get((PAPER_LIKE_MODEL, "paper-like", style))
            if other:
                speedup = loop.steps_per_second / other.steps_per_second
                rows.append((f"paper-like AVB: >= {TARGETS[key]}x {style}", f"{speedup:.2f}x",
                             shortfall(speedup, TARGETS[key])))
    if help_time is not None:
        seconds = TARGETS["help seconds"]
        rows.append((f"`train_avb.py --help` < {seconds} s", f"{help_time:.2f} s",
                     f"{help_time - seconds:.2f} s too slow" if help_time >= seconds else None))
    return rows


def shortfall(measured: float, least: float) -> str | None:
    """None if measured >= least, else how far below it, in percent of the target."""
    return None if measured >= least else f"{100 * (1 - measured / least):.0f} % short"


def paper_like_limit(results: list, shapes: dict) -> list:
    """Step times of the paper-like AVB beside the time its matrix products alone take at the
    measured rates of the adversary's shapes: how close the loop is to what bounds it."""
    rate = {r.style: r for r in results
            if (r.model, r.config) == (PAPER_LIKE_MODEL, "paper-like")}
    loop, per_step = rate.get(STYLES[2]), rate.get(STYLES[1])
    if not (loop and per_step and shapes):
        return []
    loop_ms, per_step_ms = 1000 / loop.steps_per_second, 1000 / per_step.steps_per_second
    needed = per_step_ms / TARGETS["vs tf.function"]
    bounds = "; ".join(f"{1e3 * loop.flops_per_step / 1e9 / g:.1f} ms at the {shape} rate"
                       for shape, g in shapes.items())
    return ["## What bounds the paper-like AVB", "",
            f"One iteration is {loop.flops_per_step / 1e9:.2f} GFLOP of matrix products, almost "
            "all of them the adversary's 256-wide layers. The compiled loop takes "
            f"{loop_ms:.1f} ms per iteration and one tf.function per step "
            f"{per_step_ms:.1f} ms; {TARGETS['vs tf.function']}x the latter's speed means "
            f"{needed:.1f} ms. The products alone would take {bounds}.", ""]


def ais_section(record: dict, best: float) -> list:
    lines = ["## AIS", "",
             f"Forward AIS on {record['dataset']} with a {record['latent_dim']}-D latent, the "
             f"default chains for every data point ({record['rows']} rows per gradient "
             f"evaluation of the default decoder): "
             f"{record['gradient_evaluations_per_second']:,.0f} leapfrog gradient evaluations "
             f"per second (one per row), {record['gflops']:.1f} GFLOP/s of the decoder's "
             f"products, {record['gflops'] / best:.0%} of the matmul peak."]
    seconds = record["default_evaluation_seconds"]
    if seconds is not None:
        met = "met" if seconds <= AIS_EVALUATION_TARGET else "**missed**"
        lines.append(f"The default AIS evaluation of a run there (forward AIS on every data "
                     f"point plus the BDMC runs, compiling included) took {seconds:.1f} s; "
                     f"target at most {AIS_EVALUATION_TARGET:.0f} s: {met}.")
    return lines + [""]


def report(info: dict, peak: dict, shapes: dict, results: list, runs: list, help_time,
           tracking: dict, seconds: float, ais_record: dict | None = None) -> str:
    best = max(peak.values())
    lines = ["# Benchmark results", "", "Regenerate with `python -m benchmarks.bench` (about "
             "six minutes; run it on an otherwise idle machine); `--from-json "
             "benchmarks/results.json` rewrites it from the saved figures without measuring.",
             "",
             "## Machine", "", *(f"- {k}: {v}" for k, v in info.items()), "",
             "## Targets", "",
             *table_lines(["target", "measured", "met"],
                          [[t, m, "yes" if miss is None else f"**no**: {miss}"]
                           for t, m, miss in targets(results, runs, best, help_time)]), "",
             *peak_section(peak, shapes, best)]
    if results:
        lines += throughput_section(results, shapes, best, seconds)
    if runs:
        lines += runs_section(runs)
    if ais_record:
        lines += ais_section(ais_record, best)
    if tracking:
        lines += ["## Cost of tracking log p(x) during training", "",
                  *(f"- {dataset}: {ms:.1f} ms per evaluation" for dataset, ms in
                    tracking.items()), ""]
    if help_time is not None:
        lines += ["## Start-up", "", f"`python train_avb.py --help`: {help_time:.2f} s "
                  f"(median of {HELP_REPEATS}).", ""]
    return "\n".join(lines)


def peak_section(peak: dict, shapes: dict, best: float) -> list:
    return ["## Matmul peak", "",
            f"float32 square products chained {MATMUL_CHAIN} deep in one XLA call; the peak is "
            "the best size.", "",
            *table_lines(["n", "GFLOP/s"], [[n, f"{g:.1f}"] for n, g in peak.items()], "rr"), "",
            f"Peak: **{best:.1f} GFLOP/s**.", "",
            "The same measurement at the shapes of the paper-like adversary's hidden layers, "
            "which bound what its training loop can reach:", "",
            *table_lines(["product", "GFLOP/s", "of peak"],
                         [[shape, f"{g:.1f}", f"{100 * g / best:.1f} %"]
                          for shape, g in shapes.items()], "lrr"),
            ""]


def throughput_section(results: list, shapes: dict, best: float, seconds: float) -> list:
    return ["## Throughput", "",
            f"Training iterations per second on {THROUGHPUT_DATASET}, each timed for at "
            f"least {seconds:g} s after a warm-up call. Every loop fetches the metrics to "
            "the host when they are logged: eager and tf.function after every step, the "
            "compiled loop after each chunk of --log-every steps (with the posterior "
            "snapshot). FLOPs are the matrix products in the live part of one iteration's "
            "graph (forward, backward, optimiser and every adversary step); element-wise "
            "work is not counted.", "",
            "Paper-like: " + ", ".join(f"{k}={v}" for k, v in PAPER_LIKE.items())
            + "; adversarial models also "
            + ", ".join(f"{k}={v}" for k, v in PAPER_LIKE_ADVERSARY.items())
            + ".", "", *throughput_table(results, best), "",
            *paper_like_limit(results, shapes)]


def runs_section(runs: list) -> list:
    return ["## Whole runs", "",
            "`python train_<model>.py --dataset D` with default settings, timed from "
            "process start (import, compile, training, final evaluation and saving). "
            f"The time-to-quality runs add `--eval-every {QUALITY_EVAL_EVERY}`; "
            "'reached after' is when history.csv first showed an exact log p(x) at or above "
            "the threshold (polled every "
            f"{POLL_SECONDS} s): the optimum minus "
            + ", ".join(f"{nats} ({model} {dataset})"
                        for (model, dataset), nats in QUALITY_TARGETS.items())
            + f", and for the other runs their own final value minus {PLATEAU_TOLERANCE} "
            "(their plateau).", "",
            *runs_table(runs), ""]

"""Training speed against the hardware and against the common ways of writing the loop.

Measures, in one process and one sitting so that the ratios hold on a noisy machine:
  1. steps/s of the VAE and the AVB, at the defaults and at a paper-like configuration, run
     fully eager, as one tf.function per step with the metrics fetched every step, and as the
     project's compiled multi-step loop (training.make_chunk_runner);
  2. the FLOPs of one training iteration (matrix products counted in the step's graph) and the
     achieved GFLOP/s as a fraction of the machine's measured matmul peak;
  3. time to quality: wall seconds from process start until the exact log p(x) in history.csv
     reaches its target, for default runs of train_vae.py and train_avb.py;
  4. the whole default run (wall time, final log p(x), peak resident memory) and the time
     `train_avb.py --help` takes.
Writes RESULTS.md (and results.json) beside this script unless --out says otherwise.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("eager", "tf.function per step", "compiled multi-step loop")
CONFIG_NAMES = ("default", "paper-like")
PAPER_LIKE = {"activation": "elu", "encoder_depth": 3, "encoder_width": 64, "decoder_depth": 3,
              "decoder_width": 64, "batch_size": 512}
# Applied to the models whose config has these settings (the adversarial ones).
PAPER_LIKE_ADVERSARY = {"noise_dim": 16, "adversary_width": 256, "adversary_depth": 2,
                  "adversary_architecture": "residual", "adversary_steps": 1}
THROUGHPUT_DATASET = "4px"
MATMUL_SIZES = (256, 512, 1024, 2048)
ADVERSARY_SHAPES = ((512, 256), (1024, 256))   # rows, width
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
MATMUL_OPS = {"MatMul": ("transpose_a", "transpose_b"), "BatchMatMulV2": ("adj_x", "adj_y")}
POLL_SECONDS = 0.05
TARGETS = {"fraction of peak": 0.75, "vs tf.function": 1.3, "vs eager": 4.0,
           "help seconds": 0.5}


# The machine.

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    return {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "platform": platform.platform()}


def matmul_rate(m: int, n: int, seconds: float) -> float:
    """GFLOP/s of float32 [m, n] x [n, n] products, chained MATMUL_CHAIN deep in one XLA
    call, each feeding the next."""
    import tensorflow as tf

    a = tf.random.normal([m, n])
    w = tf.random.normal([n, n]) / n ** 0.5      # keeps the chain's values of order one

    @tf.function(jit_compile=True)
    def chain(a, w):
        return tf.while_loop(lambda i, a: i < MATMUL_CHAIN,
                             lambda i, a: (i + 1, tf.matmul(a, w)), (0, a))[1]

    return calls_per_second(lambda: chain(a, w).numpy(), seconds) * MATMUL_CHAIN * 2 * m * n * n / 1e9


def matmul_peak(seconds: float) -> dict:
    """GFLOP/s of square products of each size in MATMUL_SIZES; the peak is the best."""
    return {n: matmul_rate(n, n, seconds) for n in MATMUL_SIZES}


def model_shape_rates(seconds: float) -> dict:
    """GFLOP/s of the paper-like adversary's hidden-layer products, [rows, width] x [width,
    width] for a batch of 512 (encoder/decoder step) and 1024 (q and prior samples)."""
    return {f"[{m}, {n}] x [{n}, {n}]": matmul_rate(m, n, seconds) for m, n in ADVERSARY_SHAPES}


def calls_per_second(call, seconds: float, min_calls: int = 1) -> float:
    """Calls per second of call(), after one warm-up call, over at least `seconds`."""
    call()
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < seconds:
        call()
        calls += 1
    return calls / (time.perf_counter() - start)


# Throughput of the three ways of running the training loop.

def project_modules() -> None:
    """Makes the project's modules importable when this script runs from anywhere."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def make_config(model_name: str, config_name: str):
    import dataclasses

    import registry

    spec = registry.get(model_name)
    settings = {"dataset": THROUGHPUT_DATASET}
    if config_name == "paper-like":
        fields = {f.name for f in dataclasses.fields(spec.config_class)}
        settings |= PAPER_LIKE | {k: v for k, v in PAPER_LIKE_ADVERSARY.items() if k in fields}
    return spec.default_config(**settings)


def new_model(model_name: str, config):
    import keras

    import data
    import registry

    keras.utils.set_random_seed(config.seed)
    x = data.load(config.dataset).x
    return registry.get(model_name).build(config, x.shape[1]), x


def step_function(model, x, config):
    """One training iteration as the loop body runs it: batch and noise from (seed, step)."""
    import tensorflow as tf

    import data

    x = tf.constant(x)

    def step(i):
        key = tf.stack([tf.constant(config.seed, tf.int64), i])
        batch_seed, step_seed = tf.unstack(tf.random.experimental.stateless_split(key, 2))
        return model.train_step(data.sample_batch(x, config.batch_size, batch_seed), step_seed)

    return step


def style_runner(style: str, model, x, config):
    """(call, steps per call) for one way of running the loop; each call ends with the
    metrics on the host, as a training loop that logs them needs."""
    import tensorflow as tf

    import training

    if style == "compiled multi-step loop":
        run_chunk = training.make_chunk_runner(model, tf.constant(x), config)
        counter = iter(range(0, 1 << 40, config.log_every))
        return (lambda: tf.nest.map_structure(lambda t: t.numpy(), run_chunk(
            tf.constant(next(counter)), tf.constant(config.log_every))), config.log_every)
    step = step_function(model, x, config)
    if style == "tf.function per step":
        step = tf.function(step)
    counter = iter(range(1 << 40))
    return (lambda: {k: v.numpy() for k, v in step(tf.constant(next(counter), tf.int64))
                     .items()}, 1)


def count_step_flops(model, x, config) -> int:
    """FLOPs of the matrix products in one training iteration's graph: forward, backward and
    every adversary step (2 M N K per [M, K] x [K, N] product; element-wise work not counted)."""
    import tensorflow as tf

    step = tf.function(step_function(model, x, config))
    return graph_flops(step.get_concrete_function(tf.TensorSpec([], tf.int64)).graph)


def graph_flops(graph) -> int:
    """FLOPs of the live matrix products of a tf.function's graph."""
    if any(node.op in MATMUL_OPS for f in graph.as_graph_def().library.function
           for node in f.node_def):
        raise RuntimeError("the step has matrix products inside nested functions: not counted")
    return sum(matmul_flops(op) for op in live_operations(graph) if op.type in MATMUL_OPS)


def live_operations(graph) -> set:
    """The operations that the step's outputs or its variable updates depend on: the graph
    also holds gradients nobody uses (of T's weights in the encoder/decoder step), which the
    runtime prunes and which are therefore not counted."""
    stateful = [op for op in graph.get_operations() if op.op_def.is_stateful]
    live, pending = set(), [t.op for t in graph.outputs] + stateful
    while pending:
        op = pending.pop()
        if op not in live:
            live.add(op)
            pending += [t.op for t in op.inputs] + list(op.control_inputs)
    return live


def matmul_flops(op) -> int:
    a, b = (t.shape.as_list() for t in op.inputs)
    transpose_a, transpose_b = (op.get_attr(name) for name in MATMUL_OPS[op.type])
    m, k = (a[-1], a[-2]) if transpose_a else (a[-2], a[-1])
    n = b[-2] if transpose_b else b[-1]
    return 2 * m * n * k


class Throughput(NamedTuple):
    model: str
    config: str
    style: str
    steps_per_second: float
    flops_per_step: int


def throughput(models, config_names, seconds: float, styles=STYLES) -> list:
    results = []
    for model_name in models:
        for config_name in config_names:
            config = make_config(model_name, config_name)
            model, x = new_model(model_name, config)
            flops = count_step_flops(model, x, config)
            for style in styles:
                model, x = new_model(model_name, config)
                call, steps = style_runner(style, model, x, config)
                rate = calls_per_second(call, seconds) * steps
                results.append(Throughput(model_name, config_name, style, rate, flops))
                print(f"  {model_name} {config_name:10s} {style:25s} {rate:9.1f} steps/s",
                      flush=True)
    return results


# Whole runs of the scripts, as a user starts them.

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


def read_log_px(history: Path) -> list:
    """(step, log p(x)) of the rows of history.csv that have one; [] while it is not there
    (the run writes it atomically, so it is whole whenever it exists)."""
    import rundir

    try:
        rows = rundir.read_history(history)
    except FileNotFoundError:
        return []
    return [(r["step"], r["log_px"]) for r in rows if r.get("log_px", "") != ""]


def script_flags(model: str) -> list:
    """The flags that select the model among those its script trains."""
    import registry

    return [f"--{k.replace('_', '-')}={v}" for k, v in registry.get(model).variant_settings.items()]


def script_run(model: str, dataset: str, eval_every: int | None, work: Path) -> ScriptRun:
    """Runs the model's script with default settings, watching history.csv for log p(x)."""
    import registry

    out = work / f"{model}-{dataset}-{eval_every or 'default'}"
    command = [sys.executable, str(ROOT / registry.get(model).script), *script_flags(model),
               "--dataset", dataset, "--out", str(out)] + (
        ["--eval-every", str(eval_every)] if eval_every else [])
    seen, stderr = {}, (work / f"{out.name}.stderr").open("w+")
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)   # keeps the child's rusage
        now = time.perf_counter() - start
        for step, log_px in read_log_px(out / "history.csv"):
            seen.setdefault(step, (now, step, log_px))
        if pid:
            break
        time.sleep(POLL_SECONDS)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        stderr.seek(0)
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.read()[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return ScriptRun(model, dataset, eval_every, now, metrics["train_seconds"],
                     metrics["log_px"], metrics["optimum_log_px"], usage.ru_maxrss / 1024,
                     sorted(seen.values()))


def time_to_quality(run: ScriptRun) -> tuple:
    """(threshold, seconds since process start when log p(x) first reached it or None)."""
    below_optimum = QUALITY_TARGETS.get((run.model, run.dataset))
    threshold = (run.final_log_px - PLATEAU_TOLERANCE if below_optimum is None
                 else run.optimum_log_px - below_optimum)
    reached = [seconds for seconds, _, log_px in run.log_px_times if log_px >= threshold]
    return threshold, (reached[0] if reached else None)


def help_seconds() -> float:
    """Median wall time of `python train_avb.py --help`."""
    times = []
    for _ in range(HELP_REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "train_avb.py"), "--help"], cwd=ROOT,
                       capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def log_px_tracking_cost(seconds: float) -> dict:
    """Milliseconds per exact log p(x) evaluation during training (the history's log_px)."""
    import tensorflow as tf

    import evaluation
    import registry

    costs = {}
    for dataset in ("4px", "9px"):
        config = registry.get(PAPER_LIKE_MODEL).default_config(dataset=dataset)
        model, x = new_model(PAPER_LIKE_MODEL, config)
        track = evaluation.make_log_px_tracker(model.decoder, tf.constant(x))
        costs[dataset] = 1000 / calls_per_second(lambda: float(track()), seconds)
    return costs


# The report.

def throughput_table(results: list, peak: float) -> list:
    lines = ["| model | configuration | loop | steps/s | x eager | x tf.function per step "
             "| MFLOP/step | GFLOP/s | of peak |", "| --- | --- | --- | ---: | ---: | ---: "
             "| ---: | ---: | ---: |"]
    rate = {(r.model, r.config, r.style): r.steps_per_second for r in results}
    for r in results:
        eager, per_step = (rate.get((r.model, r.config, s)) for s in STYLES[:2])
        gflops = r.steps_per_second * r.flops_per_step / 1e9
        lines.append(f"| {r.model.upper()} | {r.config} | {r.style} | {r.steps_per_second:.1f} "
                     f"| {ratio(r.steps_per_second, eager)} | {ratio(r.steps_per_second, per_step)}"
                     f" | {r.flops_per_step / 1e6:.1f} | {gflops:.1f} | {100 * gflops / peak:.1f} % |")
    return lines


def ratio(a, b) -> str:
    return f"{a / b:.2f}" if b else ""


def runs_table(runs: list) -> list:
    lines = ["| model | data set | --eval-every | whole process (s) | training (s) | final exact "
             "log p(x) | optimum | quality threshold | reached after (s) | peak RSS (MB) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in runs:
        threshold, reached = time_to_quality(run)
        lines.append(f"| {run.model} | {run.dataset} | {run.eval_every or 'default'} "
                     f"| {run.wall_seconds:.1f} | {run.train_seconds:.1f} "
                     f"| {run.final_log_px:.4f} | {run.optimum_log_px:.4f} | {threshold:.4f} "
                     f"| {'not reached' if reached is None else f'{reached:.1f}'} "
                     f"| {run.peak_rss_mb:.0f} |")
    return lines


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


def report(info: dict, peak: dict, shapes: dict, results: list, runs: list, help_time,
           tracking: dict, seconds: float) -> str:
    best = max(peak.values())
    lines = ["# Benchmark results", "", "Regenerate with `python benchmarks/bench.py` (about "
             "six minutes; run it on an otherwise idle machine); `--from-json "
             "benchmarks/results.json` rewrites it from the saved figures without measuring.",
             "",
             "## Machine", "", *(f"- {k}: {v}" for k, v in info.items()), "",
             "## Targets", "", "| target | measured | met |", "| --- | --- | --- |",
             *(f"| {t} | {m} | {'yes' if miss is None else f'**no**: {miss}'} |"
               for t, m, miss in targets(results, runs, best, help_time)), "",
             "## Matmul peak", "",
             f"float32 square products chained {MATMUL_CHAIN} deep in one XLA call; the peak is "
             "the best size.", "", "| n | GFLOP/s |", "| ---: | ---: |",
             *(f"| {n} | {g:.1f} |" for n, g in peak.items()), "",
             f"Peak: **{best:.1f} GFLOP/s**.", "",
             "The same measurement at the shapes of the paper-like adversary's hidden layers, "
             "which bound what its training loop can reach:", "",
             "| product | GFLOP/s | of peak |", "| --- | ---: | ---: |",
             *(f"| {shape} | {g:.1f} | {100 * g / best:.1f} % |" for shape, g in shapes.items()),
             ""]
    if results:
        lines += ["## Throughput", "",
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
    if runs:
        lines += ["## Whole runs", "",
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
    if tracking:
        lines += ["## Cost of tracking log p(x) during training", "",
                  *(f"- {dataset}: {ms:.1f} ms per evaluation" for dataset, ms in
                    tracking.items()), ""]
    if help_time is not None:
        lines += ["## Start-up", "", f"`python train_avb.py --help`: {help_time:.2f} s "
                  f"(median of {HELP_REPEATS}).", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="least time each throughput and peak measurement runs (default: 3)")
    project_modules()
    import registry

    parser.add_argument("--models", nargs="+", choices=registry.names(),
                        default=list(registry.names()),
                        help="models to measure (default: every registered one)")
    parser.add_argument("--configs", nargs="+", choices=CONFIG_NAMES, default=list(CONFIG_NAMES),
                        help="configurations whose throughput to measure (default: both)")
    parser.add_argument("--skip-runs", action="store_true",
                        help="skip the whole training runs (time to quality, memory, targets "
                             "of the default runs) and the --help timing")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"),
                        help="Markdown report to write; results.json goes beside it "
                             "(default: benchmarks/RESULTS.md)")
    parser.add_argument("--from-json", type=Path, metavar="RESULTS_JSON",
                        help="measure nothing: rewrite the report from a results.json that an "
                             "earlier run wrote")
    return parser


def measure(args) -> dict:
    """Every measurement, as the JSON record that results.json holds."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    record = {"machine": machine(), "seconds": args.seconds}
    print("matmul peak", flush=True)
    record["matmul_peak_gflops"] = matmul_peak(args.seconds)
    record["adversary_shape_gflops"] = model_shape_rates(args.seconds)
    print("throughput", flush=True)
    results = throughput(args.models, args.configs, args.seconds)
    runs, help_time, tracking = [], None, {}
    if not args.skip_runs:
        tracking = log_px_tracking_cost(args.seconds)
        help_time = help_seconds()
        with tempfile.TemporaryDirectory() as work:
            for model in args.models:
                for dataset in ("4px", "9px"):
                    for eval_every in (None, QUALITY_EVAL_EVERY):
                        print(f"run {model} {dataset} --eval-every {eval_every or 'default'}",
                              flush=True)
                        runs.append(script_run(model, dataset, eval_every, Path(work)))
    return {**record, "throughput": [r._asdict() for r in results],
            "runs": [r._asdict() for r in runs], "help_seconds": help_time,
            "log_px_tracking_ms": tracking}


def render(record: dict) -> str:
    """RESULTS.md from a results.json record."""
    return report(record["machine"], record["matmul_peak_gflops"],
                  record["adversary_shape_gflops"],
                  [Throughput(**r) for r in record["throughput"]],
                  [ScriptRun(**r) for r in record["runs"]], record["help_seconds"],
                  record["log_px_tracking_ms"], record["seconds"])


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    if args.from_json:
        try:
            record = json.loads(args.from_json.read_text())
            text = render(record)
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"--from-json {args.from_json}: not a results.json this script "
                         f"wrote ({error})")
    else:
        record = measure(args)
        text = render(record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if not args.from_json:
        args.out.with_name("results.json").write_text(json.dumps(record, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()

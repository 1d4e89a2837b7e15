"""The benchmark's measurements (benchmarks/bench.py runs them and writes the report): the
machine's matmul peak, the training loop's throughput in three styles with its FLOPs, whole
runs of the scripts as a user starts them, and the --help time."""

import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from evaluation import ais
import data
from evaluation import final, quadrature
import registry
from harness import rundir
from harness import training
from benchmarks.report import (AIS_DATASET, AIS_LATENT_DIM, AIS_MODEL, AIS_THROUGHPUT_STEPS,
                               HELP_REPEATS, MATMUL_CHAIN, PAPER_LIKE, PAPER_LIKE_ADVERSARY,
                               PAPER_LIKE_MODEL, POLL_SECONDS, QUALITY_EVAL_EVERY, STYLES,
                               THROUGHPUT_DATASET, ScriptRun, Throughput)

ROOT = Path(__file__).resolve().parents[1]
MATMUL_SIZES = (256, 512, 1024, 2048)
ADVERSARY_SHAPES = ((512, 256), (1024, 256))   # rows, width
MATMUL_OPS = {"MatMul": ("transpose_a", "transpose_b"), "BatchMatMulV2": ("adj_x", "adj_y")}


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

    return {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__,
            "platform": platform.platform()}


def matmul_rate(m: int, n: int, seconds: float) -> float:
    """GFLOP/s of float32 [m, n] x [n, n] products, chained MATMUL_CHAIN deep in one XLA
    call, each feeding the next."""

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

def make_config(model_name: str, config_name: str):
    spec = registry.get(model_name)
    settings = {"dataset": THROUGHPUT_DATASET}
    if config_name == "paper-like":
        fields = {f.name for f in dataclasses.fields(spec.config_class)}
        settings |= PAPER_LIKE | {k: v for k, v in PAPER_LIKE_ADVERSARY.items() if k in fields}
    return registry.default_config(model_name, **settings)


def new_model(model_name: str, config):
    keras.utils.set_random_seed(config.seed)
    x = data.load(config.dataset).x
    return registry.get(model_name).build(config, x.shape[1]), x


def step_function(model, x, config):
    """One training iteration exactly as the compiled loop's body runs it
    (training.train_step_at): batch and noise from (seed, step)."""
    x, seed = tf.constant(x), tf.constant(config.seed, tf.int64)
    return lambda step: training.train_step_at(model, x, config.batch_size, seed, step)


def style_runner(style: str, model, x, config):
    """(call, steps per call) for one way of running the loop; each call ends with the
    metrics on the host, as a training loop that logs them needs."""
    if style == "compiled multi-step loop":
        run_chunk = training.make_chunk_runner(model, tf.constant(x), tf.constant(x), config)
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

def read_log_px(history: Path) -> list:
    """(step, log p(x)) of the rows of history.csv that have one; [] while it is not there
    (the run writes it atomically, so it is whole whenever it exists)."""

    try:
        rows = rundir.read_history(history)
    except FileNotFoundError:
        return []
    return [(r["step"], r["log_px"]) for r in rows if r.get("log_px", "") != ""]


def script_run(model: str, dataset: str, eval_every: int | None, work: Path) -> ScriptRun:
    """Runs the model's script with default settings, watching history.csv for log p(x)."""

    out = work / f"{model}-{dataset}-{eval_every or 'default'}"
    command = [sys.executable, str(ROOT / registry.script_of(registry.get(model))),
               "--model", model, "--dataset", dataset, "--out", str(out)] + (
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
    costs = {}
    for dataset in ("4px", "9px"):
        config = registry.default_config(PAPER_LIKE_MODEL, dataset=dataset)
        model, x = new_model(PAPER_LIKE_MODEL, config)
        track = quadrature.make_log_px_tracker(model.decoder, tf.constant(x),
                                               config.latent_dim)
        costs[dataset] = 1000 / calls_per_second(lambda: float(track()), seconds)
    return costs


def decoder_matmul_flops(decoder, rows: int) -> int:
    """FLOPs of one gradient evaluation of log p(x|z) for `rows` z: the decoder's forward
    products (2 rows n_in n_out per Dense layer) and twice that for the backward pass."""
    forward = sum(2 * rows * int(np.prod(w.shape)) for w in decoder.trainable_weights
                  if len(w.shape) == 2)
    return 3 * forward


def ais_measurements(seconds: float, default_evaluation: bool) -> dict:
    """AIS on AIS_DATASET with an AIS_LATENT_DIM-D latent (an untrained AIS_MODEL: the cost of
    an HMC step does not depend on the weights): leapfrog gradient evaluations per second over
    short forward runs of the default chains, their GFLOP/s, and where asked the wall time of
    the default evaluation (forward AIS on every data point plus the BDMC runs)."""
    config = registry.default_config(AIS_MODEL, dataset=AIS_DATASET, latent_dim=AIS_LATENT_DIM)
    model, x = new_model(AIS_MODEL, config)
    x = tf.constant(x)
    annealer = final.ais_annealer(model, config)
    start = final.ais_start(model, x, config)

    def run():
        ais.forward(annealer, x, start, config.latent_dim, AIS_THROUGHPUT_STEPS,
                    config.ais_schedule)
    runs_per_second = calls_per_second(run, seconds)
    # The pilot chains that adapt the step sizes are computed too.
    rows = (config.ais_chains + ais.pilot_chains(config.ais_chains)) * int(x.shape[0])
    gradients = AIS_THROUGHPUT_STEPS * (config.ais_leapfrog_steps + 1)
    record = {"dataset": AIS_DATASET, "latent_dim": AIS_LATENT_DIM, "rows": rows,
              "gradient_evaluations_per_second": runs_per_second * gradients * rows,
              "gflops": runs_per_second * gradients * decoder_matmul_flops(model.decoder, rows)
              / 1e9, "default_evaluation_seconds": None}
    if default_evaluation:
        fresh = registry.get(AIS_MODEL).build(config, int(x.shape[1]))   # compiles anew
        begin = time.perf_counter()
        annealer = final.ais_annealer(fresh, config)    # as the evaluation: one program
        final.ais_log_px(fresh, x, config, final.AIS_SEED, annealer=annealer)
        final.bdmc_metrics(fresh, config, annealer=annealer)
        record["default_evaluation_seconds"] = time.perf_counter() - begin
    return record


def measure(args) -> dict:
    """Every measurement, as the JSON record that results.json holds."""
    record = {"machine": machine(), "seconds": args.seconds}
    print("matmul peak", flush=True)
    record["matmul_peak_gflops"] = matmul_peak(args.seconds)
    record["adversary_shape_gflops"] = model_shape_rates(args.seconds)
    print("throughput", flush=True)
    results = throughput(args.models, args.configs, args.seconds)
    print("AIS", flush=True)
    ais_record = ais_measurements(args.seconds, not args.skip_runs)
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
            "log_px_tracking_ms": tracking, "ais": ais_record}

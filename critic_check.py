"""The adversary on a known q: freeze a trained run whose q(z|x) has a density (VAE, IWAE,
flow), train a fresh adversary of the AVB's design against it, and compare T's KL estimate
E_q[T(x, z)] with the true KL(q(z|x) || p(z)) per data point (critic_fit.py). This measures the
adversary's estimation error apart from the encoder's training.

The adversary starts from the AVB's defaults for the run's data set, with --steps steps. Each
flag below takes one value or several: the default setting is checked first, then each value
of each flag given, one flag at a time with the others at their defaults (with --grid, every
combination instead), each for every seed. The points are every data point of a one-hot set,
or the first test image of each class of a real one (data.figure_points); T is trained on
batches of those points only.

Written into --out (replaced if there): results.csv (one row per setting, seed and point),
summary.csv and summary.md (one row per setting; and each point's error against its q's
scale). Ctrl-C keeps the settings already checked.
"""

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

import numpy as np

import registry
from harness import exits, rundir
from harness import startup
from configs import (CriticSetting, OneLineErrorParser, positive_float, positive_int,
                     seed_value)
from figures.tables import number, table_lines

CHECK_STEPS = 10_000          # adversary steps of the default setting
ACCURACY = 0.02               # nats: a KL estimate this close to the truth counts as accurate
SCHEDULES = ("constant", "cosine")
AXES = ("adversary_width", "adversary_depth", "adversary_learning_rate", "steps",
        "batch_size", "schedule")
RESULT_FIELDS = (*AXES, "activation", "seed", "point", "label", "q_scale", "true_kl", "critic_kl", "error",
                 "error_stderr", "seconds")
SUMMARY_FIELDS = ("setting", *AXES, "runs", "mean_error", "mean_abs_error", "max_abs_error",
                  "accurate", "seconds")


@dataclasses.dataclass
class CheckConfig:
    run: Path
    values: dict                   # axis -> the values given (empty: the default only)
    seeds: tuple = (0, 1, 2)
    samples: int = 8192
    grid: bool = False
    out: Path | None = None        # None: runs/critic-check-<run directory's name>


def parse_args(argv=None) -> CheckConfig:
    parser = OneLineErrorParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run directory of a model whose q has a "
                                               "density (vae, iwae, flow)")
    parser.add_argument("--adversary-width", type=positive_int, nargs="+", metavar="W",
                        help="hidden units per adversary layer (default: the AVB's on the "
                             "run's data set)")
    parser.add_argument("--adversary-depth", type=positive_int, nargs="+", metavar="D",
                        help="hidden layers of the adversary (default: the AVB's)")
    parser.add_argument("--adversary-learning-rate", type=positive_float, nargs="+",
                        metavar="LR", help="Adam learning rate of the adversary (default: "
                                           "the AVB's)")
    parser.add_argument("--steps", type=positive_int, nargs="+", metavar="N",
                        help=f"adversary steps (default: {CHECK_STEPS})")
    parser.add_argument("--batch-size", type=positive_int, nargs="+", metavar="N",
                        help="data points per adversary step, each with one q and one prior "
                             "draw (default: the AVB's)")
    parser.add_argument("--schedule", choices=SCHEDULES, nargs="+",
                        help="the adversary's learning rate over the steps: constant, or "
                             "cosine decay to zero (default: the AVB's on the data set)")
    parser.add_argument("--seeds", type=seed_value, nargs="+", default=[0, 1, 2],
                        metavar="SEED", help="seeds of the adversary's weights and draws, "
                                             "each setting checked with each (default: 0 1 2)")
    parser.add_argument("--samples", type=positive_int, default=8192,
                        help="draws of q per point for both KLs (default: 8192)")
    parser.add_argument("--grid", action="store_true",
                        help="check every combination of the values given, not one flag at "
                             "a time")
    parser.add_argument("--out", type=Path, help="where the tables land (default: "
                                                 "runs/critic-check-<run's directory name>)")
    args = parser.parse_args(argv)
    values = {axis: getattr(args, axis) for axis in AXES if getattr(args, axis)}
    return CheckConfig(args.run, values, tuple(dict.fromkeys(args.seeds)), args.samples,
                       args.grid, args.out)


def run_settings(run: Path) -> dict:
    """The run's config.json, checked to be a saved run whose q has a density; RunDirError
    (one line) otherwise."""
    rundir.check_readable(run, "RUN", "run directory")
    settings = rundir.read_config(run / rundir.CONFIG_FILE)
    spec = registry.get(settings["model"])
    if not spec.exact_log_q:
        q_models = ", ".join(name for name in registry.names() if registry.get(name).exact_log_q)
        raise rundir.RunDirError(f"{run} is a run of {spec.name}, whose q is implicit; the "
                                 f"check needs a q with a density ({q_models})")
    if not (run / rundir.STATE_FILE).is_file():
        raise rundir.RunDirError(f"{run} holds no saved state ({rundir.STATE_FILE})")
    return settings


def default_setting(settings: dict) -> CriticSetting:
    """The AVB's adversary on the run's data set, CHECK_STEPS steps."""
    avb = registry.default_config("avb", dataset=settings["dataset"],
                                  latent_dim=settings.get("latent_dim", 2))
    return CriticSetting(avb.adversary_width, avb.adversary_depth, avb.adversary_learning_rate,
                         CHECK_STEPS, avb.batch_size, settings.get("activation", "relu"),
                         avb.schedule)


def settings_to_check(default: CriticSetting, values: dict, grid: bool) -> list:
    """The default first, then each axis's values one at a time (or, with grid, every
    combination), without repeats."""
    if grid and values:
        combos = [dict(zip(values, combo)) for combo in itertools.product(*values.values())]
    else:
        combos = [{axis: value} for axis, axis_values in values.items() for value in axis_values]
    return list(dict.fromkeys([default] + [dataclasses.replace(default, **combo)
                                           for combo in combos]))


def setting_name(setting: CriticSetting, default: CriticSetting) -> str:
    """The axes where a setting differs from the default, or 'default'."""
    changed = [f"{axis}={getattr(setting, axis)}" for axis in AXES
               if getattr(setting, axis) != getattr(default, axis)]
    return " ".join(changed) or "default"


def summary_row(setting: CriticSetting, default: CriticSetting, rows: list) -> dict:
    error = np.array([row["error"] for row in rows])
    return {"setting": setting_name(setting, default),
            **{axis: getattr(setting, axis) for axis in AXES},
            "runs": len({row["seed"] for row in rows}), "mean_error": error.mean(),
            "mean_abs_error": np.abs(error).mean(), "max_abs_error": np.abs(error).max(),
            "accurate": np.mean(np.abs(error) <= ACCURACY),
            "seconds": np.mean([row["seconds"] for row in rows])}


def summary_markdown(run: Path, step: int, summary: list, results: list) -> str:
    lines = [f"# The adversary on the frozen q of {run} (step {step})", "",
             "T's KL estimate E_q[T] minus the true KL(q || p(z)), per data point; "
             f"'accurate' is the share of points and seeds within {ACCURACY} nats.", ""]
    lines += table_lines(
        ["setting", "seeds", "mean error", "mean abs error", "max abs error", "accurate",
         "seconds"],
        [[s["setting"], s["runs"], number(s["mean_error"], 3), number(s["mean_abs_error"], 3),
          number(s["max_abs_error"], 3), f"{s['accurate']:.0%}", f"{s['seconds']:.1f}"]
         for s in summary], "lrrrrrr")
    points = sorted({(row["point"], row["label"]) for row in results})
    names = [s["setting"] for s in summary]
    by_point = {}
    for row in results:
        by_point.setdefault(row["point"], {}).setdefault(row["setting"], []).append(row)
    lines += ["", "Each point's mean error over the seeds, narrowest q first (q's scale: the "
                  "geometric mean of its standard deviations):", ""]
    order = sorted(points, key=lambda p: np.mean([r["q_scale"] for r in
                                                  by_point[p[0]]["default"]]))

    def point_row(point, label) -> list:
        cells = by_point[point]
        first = cells["default"][0]
        return [point, label, number(first["q_scale"], 3), number(first["true_kl"], 3),
                *(number(np.mean([r["error"] for r in cells[name]]), 3) for name in names)]
    lines += table_lines(["point", "class", "q's scale", "true KL", *names],
                         [point_row(*p) for p in order], "r" * (4 + len(names)))
    return "\n".join(lines) + "\n"


def write_tables(out: Path, run: Path, step: int, summary: list, results: list) -> None:
    rundir.write_csv(out / "results.csv", ("setting",) + RESULT_FIELDS, results)
    rundir.write_csv(out / "summary.csv", SUMMARY_FIELDS, summary)
    markdown = summary_markdown(run, step, summary, results)
    rundir.write_atomic(out / "summary.md", lambda p: p.write_text(markdown))


def check(config: CheckConfig) -> int:
    """Runs the check and writes its tables; returns the exit status."""
    settings = run_settings(config.run)
    default = default_setting(settings)
    to_check = settings_to_check(default, config.values, config.grid)
    out = config.out or Path(rundir.RUNS_ROOT) / f"critic-check-{config.run.resolve().name}"
    rundir.check_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{len(to_check)} settings x {len(config.seeds)} seeds on the q of {config.run}; "
          f"tables in {out}", flush=True)
    tf = startup.import_tensorflow()
    tf.get_logger().setLevel("ERROR")   # each check traces its own adversary's step: expected
    from evaluation import critic_fit   # here, after parsing and checks: --help never loads TensorFlow

    q = critic_fit.frozen_q(config.run, settings)
    summary, results = [], []
    try:
        for setting in to_check:
            name, rows = setting_name(setting, default), []
            for seed in config.seeds:
                result = critic_fit.check(q.sample_q, q.log_q, q.x, q.latent_dim, setting,
                                          seed, config.samples)
                rows += [{"setting": name, **dataclasses.asdict(setting), "seed": seed,
                          "point": i, "label": int(q.labels[i]), "q_scale": result.q_scale[i],
                          "true_kl": result.true_kl[i], "critic_kl": result.critic_kl[i],
                          "error": result.error[i], "error_stderr": result.error_stderr[i],
                          "seconds": result.seconds} for i in range(len(q.x))]
            results += rows
            summary.append(summary_row(setting, default, rows))
            s = summary[-1]
            print(f"{name}: mean error {s['mean_error']:+.3f}, max |error| "
                  f"{s['max_abs_error']:.3f}, {s['accurate']:.0%} within {ACCURACY} "
                  f"({s['seconds']:.1f} s per seed)", flush=True)
            write_tables(out, config.run, q.step, summary, results)
    except KeyboardInterrupt as stop:
        print(f"critic_check: interrupted; the {len(summary)} settings checked are in {out}",
              file=sys.stderr)
        return exits.status_of(stop)
    return exits.FINISHED


def main(argv=None) -> None:
    startup.catch_stop_signals()      # SIGTERM ends it as Ctrl-C does, the finished settings kept
    config = parse_args(argv)
    try:
        status = check(config)
    except (rundir.RunDirError, rundir.WriteFailed) as error:
        print(f"critic_check: error: {error}", file=sys.stderr)
        status = exits.status_of(error)
    startup.end_process(status)


if __name__ == "__main__":
    main()

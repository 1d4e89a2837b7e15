"""A sweep's record: which runs failed (failed.json), the timing of its last invocation that
trained (timing.json), and summary.csv, summary.md and the figures, one row per run."""

import json
from pathlib import Path

import data
from figures import plots
import registry
from harness import rundir
from figures.tables import DECIMALS, number, table_lines

FAILURES_FILE = "failed.json"
TIMING_FILE = "timing.json"
SUMMARY_METRICS = ("log_px", "log_px_stderr", "bdmc_gap", "optimum_log_px", "train_log_px",
                   "valid_log_px", "best_step", "elbo", "elbo_converged", "elbo_lower_bound",
                   rundir.CRITIC_ELBO, "critic_kl_bias", "posterior_gap", "train_seconds")


def read_failures(out: Path) -> dict:
    path = out / FAILURES_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def record_failures(out: Path, outcomes: dict) -> None:
    failures = read_failures(out)
    failures.update({name: o["error"] for name, o in outcomes.items() if o["status"] == "failed"})
    for name in [n for n, o in outcomes.items() if o["status"] == "finished"]:
        failures.pop(name, None)
    if failures:          # where every run failed before writing, out is still to be made
        Path(out).mkdir(parents=True, exist_ok=True)
        rundir.write_json(out / FAILURES_FILE, failures)


def summary_row(plan, grid: dict, failures: dict) -> dict:
    metrics = rundir.final_metrics(plan.path)
    settings = dict(plan.settings)
    status = ("finished" if metrics else "failed" if plan.path.name in failures
              else "unfinished")
    return {"model": plan.model, "dataset": plan.dataset,
            "n_points": data.n_points(plan.dataset), "seed": plan.seed,
            **{k: settings.get(k, "") for k in grid},
            **{k: metrics.get(k, "") for k in SUMMARY_METRICS}, "status": status,
            "error": failures.get(plan.path.name, "") if status == "failed" else "",
            "run_dir": str(plan.path)}


def markdown_summary(rows: list, grid: dict, timing: str) -> str:
    head = ["model", "data set", "seed", *grid, "log p(x) (test images where held out)",
            "its AIS standard error", "BDMC gap", "optimum", "training-subset log p(x)",
            "validation log p(x)", "best step", "true ELBO", "converged", "ELBO a lower bound",
            "ELBO estimated by T", "critic's KL bias", "posterior gap", "training time (s)",
            "status", "run directory"]
    lines = table_lines(head, [
        [registry.row_label(r["model"], r["dataset"], {k: r[k] for k in grid}), r["dataset"],
         str(r["seed"]),
         *(str(r[k]) for k in grid),
         *(number(r[k], DECIMALS.get(k, 4)) for k in SUMMARY_METRICS[:-1]),
         number(r["train_seconds"], DECIMALS["train_seconds"]),
         r["status"] + (f": {r['error']}" if r["error"] else ""), r["run_dir"]]
        for r in rows])
    return (f"# Sweep: {len(rows)} runs\n\n{timing}\n\nLog-likelihoods in nats per data "
            "point; the posterior gap is log p(x) - true ELBO. Where a data set holds test "
            "images out, log p(x), the ELBO and T's estimate are measured on them, and the "
            "training-subset log p(x) on as many training images.\n\n" + "\n".join(lines) + "\n")


def write_summary(out: Path, plans: list, grid: dict, grid_names: dict, timing: str) -> list:
    """summary.csv, summary.md and the figures of a sweep's plans (sweep.Plan) over the grid,
    whose settings grid_names[model] apply to each model; returns the paths written."""
    failures = read_failures(out)
    rows = [summary_row(plan, grid, failures) for plan in plans]
    columns = list(rows[0])
    rundir.write_csv(out / "summary.csv", columns, rows)
    text = markdown_summary(rows, grid, timing)
    rundir.write_atomic(out / "summary.md", lambda p: p.write_text(text))
    return [out / "summary.csv", out / "summary.md",
            *write_figures(out, rows, grid, grid_names)]


def write_figures(out: Path, rows: list, grid: dict, grid_names: dict) -> list:
    """scaling.png when more than one data set is swept, robustness-<model>.png for each
    model a grid setting applies to."""
    paths = []
    finished = [r for r in rows if r["status"] == "finished"]
    if len({r["dataset"] for r in rows}) > 1 and finished:
        paths.append(plots.plot_scaling(finished, grid, out / "scaling.png"))
    for model, names in grid_names.items():
        own = [r for r in rows if r["model"] == model]
        if names and any(r["status"] == "finished" for r in own):
            paths.append(plots.plot_robustness(model, own, names, out / f"robustness-{model}.png"))
    return paths


def timing_text(out: Path, outcomes: dict, seconds: float, ray_startup: float,
                slots: int) -> str:
    """The timing of this invocation, or, when it trained nothing, of the last one that
    trained (kept in TIMING_FILE)."""
    if outcomes:
        run_seconds = sum(o["seconds"] for o in outcomes.values())
        rundir.write_json(out / TIMING_FILE, {
            "runs": len(outcomes), "seconds": seconds, "ray_startup": ray_startup,
            "slots": slots, "run_seconds": run_seconds,
            "busy_fraction": run_seconds / (slots * seconds)})
    if not (out / TIMING_FILE).is_file():
        return "No run was trained by this sweep command."
    t = json.loads((out / TIMING_FILE).read_text())
    return (f"The last invocation that trained took {t['seconds']:.1f} s of wall time for "
            f"{t['runs']} runs, {t['slots']} at a time (Ray start-up {t['ray_startup']:.1f} "
            f"s). The runs took {t['run_seconds']:.1f} s one after another (each timed in "
            f"its task, TensorFlow's import to the final evaluation): the {t['slots']} "
            f"slots were busy with runs {100 * t['busy_fraction']:.0f} % of the wall time.")

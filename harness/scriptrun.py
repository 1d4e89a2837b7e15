"""What a training script does once its command line is parsed and its run claimed
(runstart.py): train, print a summary, and turn each way a run can end into one line and the
exit status harness/exits.py gives it."""

import sys

import registry
from harness import exits, rundir, training
from harness.rundir import WriteFailed


def report(result: training.RunResult) -> None:
    """A short summary of a finished run on stdout."""
    m = result.metrics
    optimum = m["optimum_log_px"]
    optimum = "" if optimum is None else f"  (optimum {optimum:.4f})"
    on = f" of {m['n_evaluated']} test images" if m.get("evaluated_on") == "test" else ""
    if "best_step" in m:
        print(f"evaluated at the best step {m['best_step']} of {m['steps']}: validation log p(x) "
              f"{m['valid_log_px']:.4f} on {m['validation_points']} held-out training images "
              f"({m['validation_method']})")
    if m.get("log_px_method", "quadrature") == "quadrature":
        print(f"exact log p(x){on} {m['log_px']:.4f}{optimum}")
    else:
        print(f"log p(x){on} by AIS {m['log_px']:.4f} +- {m['log_px_stderr']:.4f} (standard "
              f"error){optimum}; BDMC gap {m['bdmc_gap']:.4f}"
              + (f" +- {m['bdmc_gap_stderr']:.4f}" if m.get("bdmc_gap_stderr") is not None else "")
              + " on simulated data")
    if "train_log_px" in m:
        print(f"log p(x) of as many training images {m['train_log_px']:.4f}")
    if "elbo" in m:
        print(f"ELBO {rundir.elbo_text(m)}  posterior gap {m['posterior_gap']:.4f}")
    if rundir.CRITIC_ELBO in m:
        print(f"ELBO estimated by T {m[rundir.CRITIC_ELBO]:.4f}  (biased estimate)")
    print(f"{m['steps']} steps in {m['train_seconds']:.1f} s ({m['steps_per_second']:.0f} steps/s)"
          f"; run saved in {result.out_dir}")


def run(request) -> int:
    """Trains and reports as a script does; returns the exit status (harness/exits.py)."""
    name, out_dir = registry.spec_for(request.config).name, rundir.run_dir(request.config)
    try:
        report(training.train(request.config, resume=request.resume))
    except exits.Interrupted as stopped:
        print(f"{name}: {stopped}", file=sys.stderr)
        return exits.status_of(stopped)
    except WriteFailed as error:
        print(f"{name}: error: {error}; {rundir.kept_save(out_dir)}", file=sys.stderr)
        return exits.status_of(error)
    except (*exits.FAILURES, *exits.REFUSALS) as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return exits.status_of(error)
    except KeyboardInterrupt as stop:
        print(f"{name}: interrupted outside the training loop; what the run had saved is in "
              f"{out_dir}", file=sys.stderr)
        return exits.status_of(stop)
    return exits.FINISHED

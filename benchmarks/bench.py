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
Writes RESULTS.md (and results.json) beside this script unless --out says otherwise. Run it
from the project's root as `python -m benchmarks.bench`.
"""

import argparse
import json
from pathlib import Path

import registry
from harness import rundir
from benchmarks import report
from configs import OneLineErrorParser, positive_float


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=positive_float, default=3.0,
                        help="least time each throughput and peak measurement runs (default: 3)")
    parser.add_argument("--models", nargs="+", choices=registry.names(),
                        default=list(registry.names()),
                        help="models to measure (default: every registered one)")
    parser.add_argument("--configs", nargs="+", choices=report.CONFIG_NAMES,
                        default=list(report.CONFIG_NAMES),
                        help="configurations whose throughput to measure (default: both)")
    parser.add_argument("--skip-runs", action="store_true",
                        help="skip the whole training runs (time to quality, memory, targets "
                             "of the default runs), the --help timing and the timing of the "
                             "default AIS evaluation")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"),
                        help="Markdown report to write; results.json goes beside it "
                             "(default: benchmarks/RESULTS.md)")
    parser.add_argument("--from-json", type=Path, metavar="RESULTS_JSON",
                        help="measure nothing: rewrite the report from a results.json that an "
                             "earlier run wrote")
    return parser


def render(record: dict) -> str:
    """RESULTS.md from a results.json record."""
    return report.report(record["machine"], record["matmul_peak_gflops"],
                  record["adversary_shape_gflops"],
                  [report.Throughput(**r) for r in record["throughput"]],
                  [report.ScriptRun(**r) for r in record["runs"]], record["help_seconds"],
                  record["log_px_tracking_ms"], record["seconds"], record.get("ais"))


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rundir.check_writable(args.out, "--out", file=True)
    except rundir.RunDirError as error:
        parser.error(str(error))
    if args.from_json:
        try:
            record = json.loads(args.from_json.read_text())
            text = render(record)
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"--from-json {args.from_json}: not a results.json this script "
                         f"wrote ({error})")
    else:
        from benchmarks import measure   # here, after parsing: --help never loads TensorFlow

        record = measure.measure(args)
        text = render(record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rundir.write_atomic(args.out, lambda p: p.write_text(text))
    if not args.from_json:
        rundir.write_json(args.out.with_name("results.json"), record)
    print(text)


if __name__ == "__main__":
    main()

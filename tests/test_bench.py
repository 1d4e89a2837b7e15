"""The benchmark: its FLOP counts on cases counted by hand, and a smoke run of the script."""

import json

import pytest
import tensorflow as tf

import networks
from benchmarks import measure, report
from tests.conftest import call_main


def test_flops_count_live_products_only():
    """y = (x W1) W2 and a gradient step on W1 only: the forward products, dL/dh = dL/dy W2^T and
    dL/dW1 = x^T dL/dh count; the unused dL/dW2 = h^T dL/dy does not."""
    m, k, n1, n2 = 32, 5, 7, 3
    x = tf.random.normal([m, k])
    w1, w2 = tf.Variable(tf.random.normal([k, n1])), tf.Variable(tf.random.normal([n1, n2]))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(x @ w1 @ w2)
        grad_w1, _ = tape.gradient(loss, [w1, w2])
        w1.assign_sub(0.1 * grad_w1)
        return loss

    graph = step.get_concrete_function().graph
    expected = 2 * (m * k * n1 + m * n1 * n2) + 2 * m * n2 * n1 + 2 * k * m * n1
    assert measure.graph_flops(graph) == expected


def test_ais_gradient_flops_count_the_decoders_products_forward_and_back():
    decoder = networks.build_decoder(5, 4, 1, latent_dim=3)      # z[3] -> 4 -> 5 logits
    rows = 10
    assert measure.decoder_matmul_flops(decoder, rows) == 3 * 2 * rows * (3 * 4 + 4 * 5)


@pytest.mark.slow
def test_bench_script_writes_its_report(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    result = call_main(capsys, "benchmarks/bench.py", "--seconds", "0.05", "--models", "vae",
                       "--configs", "default", "--skip-runs", "--out", out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "## Machine" in text and "Peak: **" in text
    for style in report.STYLES:
        assert f"| VAE | default | {style} |" in text
    record = json.loads((tmp_path / "results.json").read_text())
    assert len(record["throughput"]) == len(report.STYLES)
    assert all(r["steps_per_second"] > 0 and r["flops_per_step"] > 0
               for r in record["throughput"])
    assert max(record["matmul_peak_gflops"].values()) > 0
    assert record["ais"]["gradient_evaluations_per_second"] > 0 and record["ais"]["gflops"] > 0
    assert record["ais"]["default_evaluation_seconds"] is None       # --skip-runs
    assert "## AIS" in text and "leapfrog gradient evaluations per second" in text

    again = tmp_path / "again.md"
    result = call_main(capsys, "benchmarks/bench.py", "--from-json", tmp_path / "results.json",
                       "--out", again)
    assert result.returncode == 0, result.stderr
    assert again.read_text() == text


def test_bench_refuses_a_file_that_is_not_its_record(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text('{"machine": {}}')
    result = call_main(capsys, "benchmarks/bench.py", "--from-json", bad,
                       "--out", tmp_path / "RESULTS.md")
    assert result.returncode == 2
    assert "not a results.json" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "RESULTS.md").exists()


def test_targets_say_by_how_much_they_are_missed():
    rates = {"eager": 5.0, "tf.function per step": 50.0, "compiled multi-step loop": 60.0}
    results = [report.Throughput("avb", "paper-like", style, rate, 2e9)
               for style, rate in rates.items()]
    rows = {target: (measured, miss) for target, measured, miss
            in report.targets(results, [], peak=150.0, help_time=0.7)}
    assert rows["paper-like AVB: >= 75% of the matmul peak"] == ("80.0%", None)
    assert rows["paper-like AVB: >= 4.0x eager"] == ("12.00x", None)
    assert rows["paper-like AVB: >= 1.3x tf.function per step"] == ("1.20x", "8 % short")
    assert rows["`train_avb.py --help` < 0.5 s"] == ("0.70 s", "0.20 s too slow")
    limit = "\n".join(report.paper_like_limit(results, {"[512, 256] x [256, 256]": 100.0}))
    assert "16.7 ms per iteration" in limit and "20.0 ms" in limit
    assert "15.4 ms" in limit and "20.0 ms at the [512, 256] x [256, 256] rate" in limit

"""Speed against the hardware limit: steps per second of each model's compiled training loop,
the evaluation's throughput, and the scripts' start-up times (bench.py; RESULTS.md)."""

"""Benchmark harness: model cost and speed, data-pipeline throughput, machine matmul peak.

``scripts/benchmark.py`` (:mod:`r2mfnet.apps.benchmark`) is the command line; the pieces are importable:

- :mod:`~r2mfnet.benchmark.flops`: FLOPs of a forward / training step, matmul peak FLOP/s;
- :mod:`~r2mfnet.benchmark.cascade`: :class:`TwoUNetCascade`, the reference R2MF-Net is budgeted against;
- :mod:`~r2mfnet.benchmark.timing`: interleaved timing (every task once per round, medians) and
  peak-memory probes;
- :mod:`~r2mfnet.benchmark.model_bench`: training throughput, inference latency, memory, per
  switch combination (channels_last, bf16/fp16 autocast, torch.compile);
- :mod:`~r2mfnet.benchmark.data_bench`: decoded / cached / augmented images per second per worker;
- :mod:`~r2mfnet.benchmark.report`: the whole run as JSON and markdown tables.
"""

"""Benchmark harness: model cost and speed, data-pipeline throughput, machine matmul peak.

``scripts/benchmark.py`` (:mod:`r2mfnet.apps.benchmark`) is the command line; the pieces are importable:

- :mod:`~r2mfnet.benchmark.peak`: the machine's matmul peak FLOP/s (the FLOPs of a forward /
  training step come from :mod:`r2mfnet.models.flops`, and the two-U-Net cascade that R2MF-Net
  is budgeted against from :mod:`r2mfnet.models.two_unet_cascade`: the model summary shares both);
- :mod:`~r2mfnet.benchmark.timing`: interleaved timing (every task once per round, medians) and
  peak-memory probes;
- :mod:`~r2mfnet.benchmark.model_bench`: training throughput, inference latency, memory, per
  switch combination (channels_last, bf16/fp16 autocast, torch.compile);
- :mod:`~r2mfnet.benchmark.data_bench`: decoded / cached / augmented images per second per worker;
- :mod:`~r2mfnet.benchmark.runner`: the whole run (every task timed in the same rounds), as a dict
  written as JSON;
- :mod:`~r2mfnet.benchmark.report`: that dict as markdown tables.
"""

"""Reliability of training runs: kills, non-finite losses, corrupt files, missing cases."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from r2mfnet.errors import DataError, TrainingError
from r2mfnet.checkpoint import load_checkpoint
from r2mfnet.training.losses import DiceCELoss
from r2mfnet.training.run import train
from tests.helpers import ROOT, compose_config, run_script, tiny_overrides

# model=r2mfnet_v1: the staged R2MF-Net, so that these runs have stages (and the step counts) they were written for
LONGER = ["model=r2mfnet_v1", "trainer.coarse_epochs=4", "trainer.fine_epochs=3", "evaluate_after_training=false"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_sigterm_mid_run_then_resume_is_bit_identical(tmp_path, cache_dir):
    """All three runs are subprocesses of the same script and environment, so that the thread
    count (which changes float summation order) is the same for each of them."""
    overrides = tiny_overrides(cache_dir, *LONGER)
    reference_dir = tmp_path / "reference"
    ref = run_script("train.py", [*overrides, f"hydra.run.dir={reference_dir}"], timeout=900)  # also generates the data
    assert ref.returncode == 0, ref.stderr[-2000:]
    reference = load_checkpoint(reference_dir / "checkpoints" / "latest.pt")

    run_dir = tmp_path / "killed"
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/train.py"), *overrides, f"hydra.run.dir={run_dir}",
         "trainer.checkpoint_every_steps=1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    latest = run_dir / "checkpoints" / "latest.pt"
    deadline = time.time() + 120
    while not latest.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 130, stderr[-2000:]
    assert "trainer.resume" in stderr and "Traceback" not in stderr
    state = load_checkpoint(latest)
    assert 0 < state["global_step"] < reference["global_step"], "the kill must land mid-run"

    resumed = run_script("train.py", [*overrides, f"hydra.run.dir={tmp_path / 'unused'}", f"trainer.resume={latest}"], timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = load_checkpoint(latest)  # a resumed run continues in its own folder
    assert final["global_step"] == reference["global_step"]
    a, b = reference["model"], final["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


class _NaNAfter(DiceCELoss):
    """A loss that turns non-finite at its ``n``-th training call, as a diverging run would
    (validation calls, made without autograd, are not counted)."""

    def __init__(self, n: int):
        super().__init__()
        self.calls, self.n = 0, n

    def forward(self, outputs, target):
        loss = super().forward(outputs, target)
        if not torch.is_grad_enabled():
            return loss
        self.calls += 1
        return loss * float("nan") if self.calls == self.n else loss


def test_nonfinite_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, cache_dir, monkeypatch):
    import r2mfnet.training.run as run_module

    monkeypatch.setattr(run_module, "DiceCELoss", lambda *a, **k: _NaNAfter(n=8))
    with pytest.raises(TrainingError, match="non-finite loss") as info:
        train(compose_config(tiny_overrides(cache_dir, *LONGER)), tmp_path / "nan")
    assert "on_nonfinite=skip" in str(info.value)
    kept = load_checkpoint(tmp_path / "nan" / "checkpoints" / "latest.pt")
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def test_nonfinite_loss_can_be_skipped(tmp_path, cache_dir, monkeypatch):
    import r2mfnet.training.run as run_module

    monkeypatch.setattr(run_module, "DiceCELoss", lambda *a, **k: _NaNAfter(n=3))
    result = train(compose_config(tiny_overrides(cache_dir, *LONGER, "trainer.on_nonfinite=skip")), tmp_path / "skip")
    weights = load_checkpoint(result["train"].latest_checkpoint)["model"]
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_corrupt_checkpoint_is_reported_by_the_scripts(tmp_path):
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    result = run_script("evaluate.py", [f"checkpoint={bad}"])
    assert result.returncode == 2
    assert "best.pt" in result.stderr and "corrupted" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluation_fails_when_a_requested_view_cannot_be_evaluated(tmp_path, cache_dir):
    from r2mfnet.data.build_datasets import load_splits
    from r2mfnet.evaluation.score_views import evaluate_records
    from r2mfnet.inference.predictor import Predictor
    from r2mfnet.models import create

    run = compose_config(tiny_overrides(cache_dir))
    from r2mfnet.training.run_config import validate

    cfg = validate(run)
    records = load_splits(cfg.data)["test"]
    broken = records[0].__class__(**{**records[0].__dict__, "image": tmp_path / "gone.png"})
    predictor = Predictor(create("unet", base_channels=4, depth=2), input_size=(64, 32), device="cpu")
    with pytest.raises(DataError, match=r"1 of \d+ requested views could not be evaluated"):
        evaluate_records(predictor, [broken, *records[1:]], tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "summary.json").exists(), "no partial results may be written"

"""Checkpoints written before a change still load and predict the same.

``tests/fixtures/checkpoint_v3_*.pt`` are ``best.pt`` and ``best_coarse.pt`` of a tiny R2MF-Net
smoke run (format version 3, the trainer of December 2026, before :class:`LoadedCheckpoint`),
and ``checkpoint_v3_expected.npz`` their model-size probabilities on a fixed image as the
predictor of that day gave them. A loader or predictor change that reads them differently (lost
stage, wrong input size, CLAHE, weights) fails here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from r2mfnet.checkpoint import load_trained
from r2mfnet.errors import ConfigError
from r2mfnet.inference import build_predictor
from r2mfnet.inference.predictor import Predictor

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _image() -> np.ndarray:
    """The fixed input the expected probabilities were computed on."""
    rng = np.random.default_rng(0)
    img = (rng.random((96, 40)) * 1000).astype(np.float32)
    img[20:80, 15:25] += 2000
    return img


@pytest.mark.parametrize("name,stage,runs", [("best", "fine", "joint"), ("best_coarse", "coarse", "coarse")])
def test_old_checkpoint_loads_with_its_preprocessing_config_and_stage(name, stage, runs):
    loaded = load_trained(FIXTURES / f"checkpoint_v3_{name}.pt")
    assert loaded.input_size == (64, 32) and loaded.use_clahe is False
    assert loaded.stage == stage and loaded.model.stage == runs
    assert loaded.config["model"]["name"] == "r2mfnet"
    assert not hasattr(loaded.model, "preprocess_config")  # nothing stuck onto the model


@pytest.mark.parametrize("name", ["best", "best_coarse"])
def test_old_checkpoint_predicts_what_it_predicted(name):
    expected = np.load(FIXTURES / "checkpoint_v3_expected.npz", allow_pickle=False)[name]
    predictor = build_predictor({"checkpoint": str(FIXTURES / f"checkpoint_v3_{name}.pt"),
                                 "device": "cpu", "postprocess": False})
    assert isinstance(predictor, Predictor) and predictor.letterbox.height == 64
    (probs, _), = list(predictor.model_probabilities([_image()]))
    np.testing.assert_allclose(probs["prob"], expected, atol=1e-5)


def test_predictor_section_keys_are_typed_and_named():
    with pytest.raises(ConfigError, match="threshold"):
        build_predictor({"checkpoint": str(FIXTURES / "checkpoint_v3_best.pt"), "threshold": "high"})
    with pytest.raises(ConfigError, match="checkpoint= is required"):
        build_predictor({"threshold": 0.4})
    with pytest.raises(ConfigError, match="onnx_model= is required"):
        build_predictor({"backend": "onnx"})
    with pytest.raises(ConfigError, match="backend must be one of"):
        build_predictor({"backend": "tensorrt"})


def test_overrides_win_over_the_section():
    predictor = build_predictor({"checkpoint": "elsewhere.pt", "threshold": 0.5, "output_dir": "ignored"},
                                checkpoint=FIXTURES / "checkpoint_v3_best.pt", threshold=0.3, device="cpu")
    assert predictor.threshold == 0.3 and predictor.device.type == "cpu"

"""Inference at original resolution: the predictors and the one function that builds them.

``build_predictor(section)`` (:mod:`r2mfnet.inference.build_predictor`) is what every command and runner
calls; the predictor classes are in ``predictor`` (PyTorch) and ``onnx_predictor`` (ONNX Runtime).
"""
from r2mfnet.inference.build_predictor import PredictorConfig, build_predictor

__all__ = ["PredictorConfig", "build_predictor"]

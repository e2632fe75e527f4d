"""Inference with ONNX Runtime at each image's original resolution, without PyTorch.

A clinic's CPU server often has no PyTorch. :class:`OnnxPredictor` runs a model written by
``r2mfnet-export`` with ONNX Runtime and gives what :class:`~r2mfnet.inference.predictor.Predictor`
gives (the methods the predict application calls: ``predict_mask(s)``, ``predict_probabilities``,
``predict_label_maps``, ``predict_with_halves``, ``threshold``, ``tta_flip``, ``postprocess``), by
the same rules:

* preprocessing from the model file's own contract (:mod:`r2mfnet.inference.onnx_contract`):
  :func:`~r2mfnet.data.preprocess.normalize_intensity`, optional CLAHE and the
  :class:`~r2mfnet.data.preprocess.Letterbox` and its inverse (NumPy and OpenCV);
* probabilities by :func:`~r2mfnet.inference.postprocess.probabilities_np` (the NumPy twin of the
  torch rule), flip TTA averaging probabilities as :func:`~r2mfnet.inference.postprocess.flip_tta`
  does, the threshold after mapping back, and :func:`~r2mfnet.inference.postprocess.clean_mask`
  with the coarse mask as the column when the model outputs ``coarse_logits``.

Nothing here or in what it imports loads ``torch`` (tests/deploy runs it with torch blocked).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from r2mfnet.data.preprocess import Letterbox, LetterboxTransform, clahe, normalize_intensity
from r2mfnet.errors import ConfigError
from r2mfnet.inference.onnx_contract import NORMALIZE_RULES, contract_from_metadata
from r2mfnet.inference.postprocess import CleanupParams, cleanup_params, half_key, probabilities_np
from r2mfnet.inference.predictions import MaskPredictions

OUTPUT_KEYS = {"logits": "prob", "coarse_logits": "coarse_prob"}
DEPLOY_HINT = "install the deploy extra: pip install 'r2mfnet[deploy]'"


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"backend=onnx needs onnxruntime; {DEPLOY_HINT}") from None
    return onnxruntime


def make_session(path: str | Path, threads: int = 0) -> Any:
    """An ONNX Runtime CPU session for ``path``; ``threads`` > 0 fixes intra-op threads (else ORT's
    default). A missing or unreadable file is a :class:`ConfigError` naming it."""
    ort = _onnxruntime()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model '{path}' does not exist (an .onnx file written by r2mfnet-export)")
    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for a damaged file
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"model '{path}' cannot be loaded by ONNX Runtime ({first})") from None


def preprocess_image(image: np.ndarray, letterbox: Letterbox, normalize: tuple[float, float] = (0.5, 99.5),
                     use_clahe: bool = False) -> tuple[np.ndarray, LetterboxTransform]:
    """Raw image (any range, original size) -> model-size float32 array and its transform: the
    steps of :meth:`r2mfnet.inference.predictor.Predictor.preprocess`, with the contract's values."""
    img01 = normalize_intensity(image, *normalize)
    if use_clahe:
        img01 = clahe(img01)
    transform = letterbox.fit(img01.shape[:2])
    return transform.apply_image(img01).astype(np.float32), transform


class OnnxPredictor(MaskPredictions):
    """Original-size probabilities, masks and label maps from an exported ONNX model.

    ``threshold``, ``postprocess`` and ``cleanup`` default to the values recorded in the model's
    contract at export; given explicitly (the predict command's options) they win.
    """

    def __init__(self, path: str | Path, threshold: float | None = None, tta_flip: bool = False,
                 postprocess: bool | None = None,
                 cleanup: CleanupParams | Mapping[str, Any] | None = None, threads: int = 0) -> None:
        self.path = Path(path)
        self.session = make_session(self.path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.contract = contract_from_metadata(meta, self.path)
        c = self.contract
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        if "logits" not in self.output_names:
            raise ConfigError(f"{self.path}: the model has no 'logits' output (outputs: "
                              f"{', '.join(self.output_names)})")
        height, width = (int(v) for v in c["input_size"])
        self.letterbox = Letterbox(height, width)
        self.normalize = NORMALIZE_RULES[c["normalize"]["rule"]]
        self.use_clahe = bool(c["clahe"]["enabled"])
        self.threshold = float(c["threshold"] if threshold is None else threshold)
        self.tta_flip = bool(tta_flip)
        post = c["postprocess"]
        self.postprocess = bool(post.get("cleanup", True) if postprocess is None else postprocess)
        self.cleanup = cleanup_params(post.get("cleanup_params") if cleanup is None else cleanup)

    # ------------------------------------------------------------------ what predict asks
    @property
    def model_config(self) -> dict[str, Any]:
        """The exported model's configuration (as ``Predictor.model.model_config``)."""
        return dict(self.contract["model_config"])

    @property
    def num_classes(self) -> int:
        return int(self.model_config.get("num_classes", 1))

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, LetterboxTransform]:
        """Raw image -> model-size float32 array and its transform (the contract's rule)."""
        return preprocess_image(image, self.letterbox, self.normalize, self.use_clahe)

    def run_model(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The model's outputs (float32 logits) for a ``[B, 1, H, W]`` float32 batch."""
        values = self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(batch, np.float32)})
        return dict(zip(self.output_names, values))

    def _probabilities(self, batch: np.ndarray, coarse: bool, halves: bool = False) -> dict[str, np.ndarray]:
        """Class probabilities of a batch, flip TTA averaged, with ``halves`` each pass's own too
        (the rule and the keys of ``flip_tta``)."""
        keys = {k: v for k, v in OUTPUT_KEYS.items() if coarse or k == "logits"}
        out = self.run_model(batch)
        prob = {keys[k]: probabilities_np(v) for k, v in out.items() if k in keys}
        if not self.tta_flip:
            return prob
        mirrored = self.run_model(np.ascontiguousarray(batch[..., ::-1]))
        result: dict[str, np.ndarray] = {}
        for key, name in keys.items():
            if name in prob:
                mirror_prob = probabilities_np(mirrored[key])
                result[name] = 0.5 * (prob[name] + mirror_prob[..., ::-1])
                if halves:
                    result[half_key("plain", name)] = prob[name]
                    result[half_key("mirrored", name)] = mirror_prob
        return result

    def model_probabilities(self, images: Sequence[np.ndarray], batch_size: int = 4, coarse: bool = False,
                            halves: bool = False) -> Iterator[tuple[dict[str, np.ndarray], LetterboxTransform]]:
        """Per image, model-size probabilities ``{"prob": [C, H, W]}`` (and ``"coarse_prob"``, and
        with ``halves`` each TTA pass's own) with the transform back to its size; as
        :meth:`Predictor.model_probabilities`."""
        for start in range(0, len(images), batch_size):
            prepared = [self.preprocess(img) for img in images[start : start + batch_size]]
            batch = np.stack([p[0] for p in prepared])[:, None]
            probs = self._probabilities(batch, coarse, halves)
            for i, (_, transform) in enumerate(prepared):
                yield {k: v[i] for k, v in probs.items()}, transform


__all__ = ["OnnxPredictor", "make_session", "preprocess_image", "DEPLOY_HINT"]

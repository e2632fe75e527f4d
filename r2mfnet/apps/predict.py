"""``r2mfnet-predict`` / ``scripts/predict.py``: masks, overlays, Cobb angles and reports.

Root config ``configs/predict.yaml``. Inputs: :mod:`r2mfnet.data.inputs` (image, folder or
manifest; the file-name view rule); masks from a checkpoint's predictor (an 18-class checkpoint
gives vertebra label maps and named levels) or, with ``masks=manifest``, the manifest's own;
what is written: :mod:`r2mfnet.apps.predict_output`. Exit code 0: all inputs processed; 1: some
inputs could not be read (reported, the rest processed); 2: the run could not start (bad
option, checkpoint or manifest). Rules: ``docs/clinical.md``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from r2mfnet.apps.common import build_predictor, required
from r2mfnet.apps.predict_output import MaskFn, run_predictions
from r2mfnet.cli import hydra_entry
from r2mfnet.data.inputs import VIEW_RULE, InputView, collect_inputs
from r2mfnet.errors import ConfigError, DataError

USAGE = ("r2mfnet-predict checkpoint=PATH input=FILE_OR_FOLDER_OR_MANIFEST output_dir=DIR "
         "(or backend=onnx onnx_model=model.onnx instead of checkpoint)")


def _mask_sources(cfg: DictConfig, masks_src: str, settings: dict[str, Any]
                  ) -> tuple[MaskFn | None, MaskFn | None, str]:
    """``(get_mask, get_labels, label)``: where each view's mask (or label map) comes from."""
    if masks_src == "manifest":
        from r2mfnet.data.io import read_mask

        def manifest_mask(iv: InputView, raw: np.ndarray) -> np.ndarray:
            if iv.mask is None:
                raise DataError("this manifest row has no mask", path=iv.path)
            return read_mask(iv.mask)

        return manifest_mask, None, "manifest masks, not predicted"
    onnx = cfg.get("backend") == "onnx"
    if not onnx and not cfg.get("checkpoint"):
        raise ConfigError("checkpoint=PATH is required (a best.pt written by scripts/train.py)"
                          ", or masks=manifest to measure a manifest's own masks")
    predictor = build_predictor(cfg)  # a Predictor, or an OnnxPredictor for backend=onnx
    source = {"backend": "onnx", "onnx_model": str(cfg.onnx_model)} if onnx else {"checkpoint": str(cfg.checkpoint)}
    settings.update(**source, threshold=predictor.threshold, tta_flip=predictor.tta_flip)

    def predicted_mask(iv: InputView, raw: np.ndarray) -> np.ndarray:
        return predictor.predict_mask(raw)

    def get_labels(iv: InputView, raw: np.ndarray) -> np.ndarray:
        return predictor.predict_label_maps([raw])[0]

    model_config = predictor.model_config if onnx else predictor.model.model_config
    has_levels = int(model_config.get("num_classes", 1)) > 1
    return predicted_mask, get_labels if has_levels else None, "predicted masks"


def run(cfg: DictConfig) -> int:
    """Predict, measure and write every input case; print a summary; return the exit code."""
    from r2mfnet.measure.case import METHODS

    input_path = required(cfg, "input", USAGE)
    output_dir = required(cfg, "output_dir", USAGE)
    masks_src = str(cfg.get("masks", "predicted"))
    if masks_src not in ("predicted", "manifest"):
        raise ConfigError(f"masks must be 'predicted' or 'manifest', got '{masks_src}'")
    method = str(cfg.get("method", "vertebrae"))
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got '{method}'")
    cases, ignored, kind = collect_inputs(str(input_path), masks_src)
    settings: dict[str, Any] = {"created_by": "scripts/predict.py", "input": str(input_path),
                                "input_kind": kind, "masks": masks_src}
    if kind != "manifest":
        settings["view_rule"] = VIEW_RULE
    get_mask, get_labels, label = _mask_sources(cfg, masks_src, settings)
    from r2mfnet.apps.predict_dicom import dicom_seg_writer

    write_seg = dicom_seg_writer(cfg.get("dicom_seg", "auto")) if masks_src == "predicted" else None
    summary = run_predictions(cases, Path(str(output_dir)), get_mask, settings, method, label,
                              progress=bool(cfg.get("progress", True)), ignored=ignored,
                              get_labels=get_labels, write_extra=write_seg)
    n_views = sum(len(c.views) for c in cases)
    print(f"\n{len(cases)} case(s), {n_views} view(s) processed; results in {summary.output_dir}")
    measured = sum(1 for c in summary.cases for v in c["views"].values() if v["measured"])
    print(f"measured views: {measured} of {n_views}")
    if summary.ignored:
        print(f"ignored (not image files): {', '.join(summary.ignored)}")
    if summary.failures:
        print(f"\nr2mfnet: {len(summary.failures)} input(s) could not be read and were skipped:",
              file=sys.stderr)
        for f in summary.failures:
            print(f"  - {f['input']}: {f['error']}", file=sys.stderr)
    return summary.exit_code


main = hydra_entry("predict", run)

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
from omegaconf import MISSING, DictConfig

from r2mfnet.apps.predict_output import MaskFn, run_predictions
from r2mfnet.apps.schema import CommandConfig, OutputDirKeys, PredictorKeys, command_config
from r2mfnet.cli import hydra_entry
from r2mfnet.data.inputs import VIEW_RULE, InputView, collect_inputs
from r2mfnet.errors import ConfigError, DataError



@dataclass
class PredictConfig(PredictorKeys, OutputDirKeys, CommandConfig):
    """``configs/predict.yaml``'s keys and types (the values are the YAML's)."""

    input: str = MISSING
    dicom_seg: str = MISSING  # auto | true | false (a string: "auto" is not a boolean)
    method: str = MISSING
    merged_split: str = MISSING  # centreline | expected (r2mfnet.measure.vertebrae.MERGED_SPLITS)
    masks: str = MISSING
    progress: bool = MISSING
    corners: Optional[str] = MISSING


def _mask_sources(c: PredictConfig, masks_src: str, settings: dict[str, Any]
                  ) -> tuple[MaskFn | None, MaskFn | None, str]:
    """``(get_mask, get_labels, label)``: where each view's mask (or label map) comes from."""
    if masks_src == "manifest":
        if c.ensemble:
            raise ConfigError("ensemble= averages the models' predictions; masks=manifest measures the "
                              "manifest's own masks and predicts nothing")
        from r2mfnet.data.io import read_mask

        def manifest_mask(iv: InputView, raw: np.ndarray) -> np.ndarray:
            if iv.mask is None:
                raise DataError("this manifest row has no mask", path=iv.path)
            return read_mask(iv.mask)

        return manifest_mask, None, "manifest masks, not predicted"
    from r2mfnet.inference import build_predictor

    onnx = c.backend == "onnx"
    if not onnx and not c.checkpoint:
        raise ConfigError("checkpoint=PATH is required (a best.pt written by scripts/train.py)"
                          ", or masks=manifest to measure a manifest's own masks")
    predictor = build_predictor(c)  # a Predictor, an EnsemblePredictor, or an OnnxPredictor (backend=onnx)
    source = {"backend": "onnx", "onnx_model": str(c.onnx_model)} if onnx else {"checkpoint": str(c.checkpoint)}
    if c.ensemble:  # the further checkpoints averaged with it (r2mfnet.inference.ensemble)
        source["ensemble"] = [str(p) for p in c.ensemble]
    settings.update(**source, threshold=predictor.threshold, tta_flip=predictor.tta_flip)

    def predicted_mask(iv: InputView, raw: np.ndarray) -> np.ndarray:
        return predictor.predict_mask(raw)

    def get_labels(iv: InputView, raw: np.ndarray) -> np.ndarray:
        return predictor.predict_label_maps([raw])[0]

    if predictor.tta_flip:  # the prediction and its two TTA halves (the review page's flip-TTA
        # flag) from the same two passes: each view is predicted once
        predicted_mask.with_halves = lambda iv, raw: predictor.predict_with_halves(raw)  # type: ignore[attr-defined]
        get_labels.with_halves = (  # type: ignore[attr-defined]
            lambda iv, raw: predictor.predict_with_halves(raw, labels=True))

    model_config = predictor.model_config if onnx else predictor.model.model_config
    has_levels = int(model_config.get("num_classes", 1)) > 1
    return predicted_mask, get_labels if has_levels else None, "predicted masks"


def run(cfg: DictConfig) -> int:
    """Predict, measure and write every input case; print a summary; return the exit code."""
    from r2mfnet.measure.case import METHODS
    from r2mfnet.measure.vertebrae import check_merged_split

    c = command_config(PredictConfig, cfg)
    input_path, output_dir, masks_src, method = c.input, c.output_dir, c.masks, c.method
    if not output_dir:
        raise ConfigError("output_dir= is required (see --help)")
    if masks_src not in ("predicted", "manifest"):
        raise ConfigError(f"masks must be 'predicted' or 'manifest', got '{masks_src}'")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got '{method}'")
    check_merged_split(c.merged_split)
    if c.corners and method != "vertebrae":
        raise ConfigError(f"corners= reads each vertebra's tilt for the end-plate method: use method=vertebrae, "
                          f"not '{method}'")
    corners = None
    if c.corners:
        from r2mfnet.inference.corner_refiner import CornerRefiner

        corners = CornerRefiner.from_file(c.corners)
    cases, ignored, kind = collect_inputs(str(input_path), masks_src)
    settings: dict[str, Any] = {"created_by": "scripts/predict.py", "input": str(input_path),
                                "input_kind": kind, "masks": masks_src}
    if kind != "manifest":
        settings["view_rule"] = VIEW_RULE
    get_mask, get_labels, label = _mask_sources(c, masks_src, settings)
    if c.corners:
        settings["corners"] = str(c.corners)
    from r2mfnet.apps.predict_dicom import dicom_seg_writer

    write_seg = dicom_seg_writer(c.dicom_seg) if masks_src == "predicted" else None
    summary = run_predictions(cases, Path(output_dir), get_mask, settings, method, label,
                              progress=c.progress, ignored=ignored,
                              get_labels=get_labels, write_extra=write_seg,
                              merged_split=c.merged_split, corners=corners)
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


main = hydra_entry("predict", run, renamed=PredictConfig.RENAMED)

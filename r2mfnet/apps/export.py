"""``r2mfnet-export`` / ``scripts/export.py``: a checkpoint as an ONNX file with its contract.

Root config ``configs/export.yaml``. The work is :func:`r2mfnet.deploy.onnx_export.export_checkpoint`
(whole model in eval mode, dynamic batch, preprocessing and post-processing contract in the ONNX
metadata, ONNX Runtime checked against PyTorch before writing); this module reads the options,
prints what was checked, and returns 0. Exit code 2: bad option, checkpoint, missing deploy
extra, or the two backends disagree (nothing written).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig

from r2mfnet.apps.schema import CommandConfig, OutputFileKeys, command_config, types_only
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError
from r2mfnet.inference.build_predictor import TorchPredictorConfig


ExportedPredictorKeys: Any = types_only(TorchPredictorConfig, "ExportedPredictorKeys",
                                        only=("checkpoint", "threshold", "postprocess", "cleanup"))
"""The predictor keys an export records in its contract (it predicts nothing itself: no
``device``, no ``tta_flip``)."""


@dataclass
class ExportConfig(ExportedPredictorKeys, OutputFileKeys, CommandConfig):
    """``configs/export.yaml``'s keys and types (the values are the YAML's)."""

    RENAMED = {"output": "output_file"}
    opset: int = MISSING
    sample: Any = MISSING  # null, an image path or a list of them
    verify_batch: int = MISSING
    atol: float = MISSING
    min_dice: float = MISSING


def _samples(value: object) -> list:
    """Raw images named by ``sample`` (one path or a list), read as predict reads them."""
    if value is None or value == "":
        return []
    from r2mfnet.data.io import read_image

    paths = [value] if isinstance(value, str) else list(value)  # type: ignore[arg-type]
    return [read_image(str(p)).array for p in paths]


def run(cfg: DictConfig) -> int:
    """Export, print the verification numbers, return 0."""
    from r2mfnet.deploy.onnx_export import export_checkpoint

    c = command_config(ExportConfig, cfg)
    if not c.output_file:
        raise ConfigError("output_file= is required (see --help)")
    output = Path(c.output_file)
    if output.suffix.lower() != ".onnx":
        raise ConfigError(f"output_file must end in .onnx, got '{output}'")
    contract = export_checkpoint(
        c.checkpoint, output, opset=c.opset, threshold=c.threshold, postprocess=c.postprocess,
        cleanup=dataclasses.asdict(c.cleanup), samples=_samples(c.sample),
        verify_batch=c.verify_batch, atol=c.atol, min_dice=c.min_dice)
    check = contract["source"]["verification"]
    h, w = contract["input_size"]
    print(f"wrote {output}: {contract['model_config'].get('name')} at {h}x{w}, opset {contract['opset']}, "
          f"outputs {', '.join(contract['outputs'])}, dynamic batch")
    for name, diff in check["max_abs_logit_diff"].items():
        print(f"  ONNX Runtime vs PyTorch on {check['batch']} images, {name}: max |logit diff| "
              f"{diff:.2e}, mask Dice {check['mask_dice'][name]:.5f} (smallest per image)")
    return 0


main = hydra_entry("export", run, renamed=ExportConfig.RENAMED)

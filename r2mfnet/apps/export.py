"""``r2mfnet-export`` / ``scripts/export.py``: a checkpoint as an ONNX file with its contract.

Root config ``configs/export.yaml``. The work is :func:`r2mfnet.deploy.onnx_export.export_checkpoint`
(whole model in eval mode, dynamic batch, preprocessing and post-processing contract in the ONNX
metadata, ONNX Runtime checked against PyTorch before writing); this module reads the options,
prints what was checked, and returns 0. Exit code 2: bad option, checkpoint, missing deploy
extra, or the two backends disagree (nothing written).
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from r2mfnet.apps.common import required
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError

USAGE = "r2mfnet-export checkpoint=PATH output=model.onnx"


def _samples(value: object) -> list:
    """Raw images named by ``sample`` (one path or a list), read as predict reads them."""
    if value is None or value == "":
        return []
    from r2mfnet.data.io import read_image

    paths = [value] if isinstance(value, str) else list(OmegaConf.to_container(value))  # type: ignore[arg-type]
    return [read_image(str(p)).array for p in paths]


def run(cfg: DictConfig) -> int:
    """Export, print the verification numbers, return 0."""
    from r2mfnet.deploy.onnx_export import export_checkpoint

    checkpoint = required(cfg, "checkpoint", USAGE)
    output = Path(str(required(cfg, "output", USAGE)))
    if output.suffix.lower() != ".onnx":
        raise ConfigError(f"output must end in .onnx, got '{output}'")
    cleanup = cfg.get("cleanup")
    contract = export_checkpoint(
        str(checkpoint), output, opset=int(cfg.opset), threshold=float(cfg.threshold),
        postprocess=bool(cfg.postprocess),
        cleanup=None if cleanup is None else OmegaConf.to_container(cleanup),
        samples=_samples(cfg.get("sample")), verify_batch=int(cfg.verify_batch),
        atol=float(cfg.atol), min_dice=float(cfg.min_dice))
    check = contract["source"]["verification"]
    h, w = contract["input_size"]
    print(f"wrote {output}: {contract['model_config'].get('name')} at {h}x{w}, opset {contract['opset']}, "
          f"outputs {', '.join(contract['outputs'])}, dynamic batch")
    for name, diff in check["max_abs_logit_diff"].items():
        print(f"  ONNX Runtime vs PyTorch on {check['batch']} images, {name}: max |logit diff| "
              f"{diff:.2e}, mask Dice {check['mask_dice'][name]:.5f} (smallest per image)")
    return 0


main = hydra_entry("export", run)

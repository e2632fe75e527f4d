"""``r2mfnet-train-corners`` / ``scripts/train_corners.py``: train the corner network.

Root config ``configs/train_corners.yaml``. The network (:mod:`r2mfnet.models.corner_net`) reads a
vertebra's four corners from a level crop of the radiograph; ``evaluate_cobb.py corners=FILE``
and ``predict.py corners=FILE`` then read each vertebra's tilt with it where the masks found the
vertebra (docs/clinical.md, "Corner network"). Training needs radiographs with corner landmarks:
SpineWeb16 (``dataset=spineweb16``) or any manifest whose records have a landmarks JSON.

Which images: with ``split_from=`` a segmentation checkpoint, its own training patients (the
epoch chosen on its validation patients), so that the images held out from the segmentation
model are held out from the corner network as well, and the two can be evaluated together on
them; without it, the manifest's patient split (``val_fraction``, ``test_fraction``, ``seed``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig

from r2mfnet.apps.schema import CommandConfig, OutputFileKeys, command_config
from r2mfnet.apps.common import command_line
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError, DataError


@dataclass
class TrainCornersConfig(OutputFileKeys, CommandConfig):
    """``configs/train_corners.yaml``'s keys and types (the values are the YAML's)."""

    dataset: str = MISSING
    manifest: Optional[str] = MISSING
    root: Optional[str] = MISSING
    cache_dir: str = MISSING
    split_from: Optional[str] = MISSING
    val_fraction: float = MISSING
    test_fraction: float = MISSING
    seed: int = MISSING
    epochs: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    crop_size: int = MISSING
    head: str = MISSING
    threads: Optional[int] = MISSING


def _manifest(c: TrainCornersConfig) -> Path:
    if c.dataset == "spineweb16":
        from r2mfnet.data.spineweb16 import default_root, prepare_spineweb16

        root = Path(c.root) if c.root else default_root()
        return prepare_spineweb16(root, Path(c.cache_dir).expanduser() / "spineweb16")
    if c.dataset == "manifest":
        if not c.manifest:
            raise ConfigError("dataset=manifest needs manifest=PATH (a manifest whose records have landmarks)")
        return Path(c.manifest)
    raise ConfigError(f"dataset must be spineweb16 or manifest, got '{c.dataset}'")


def _splits(c: TrainCornersConfig, records: list) -> tuple[dict[str, list], str]:
    """``{"train", "val", "test"}`` records and where the split came from."""
    from r2mfnet.data.splits import split_by_patient, stored_split

    if c.split_from:
        from r2mfnet.checkpoint import load_checkpoint

        data = (load_checkpoint(Path(c.split_from)).get("config") or {}).get("data") or {}
        if not data:
            raise ConfigError(f"split_from checkpoint '{c.split_from}' stores no data config: its split "
                              "cannot be recomputed (give a best.pt written by scripts/train.py)")
        if c.dataset == "spineweb16" and data.get("source") != "spineweb16":
            raise ConfigError(f"split_from checkpoint '{c.split_from}' was trained on "
                              f"'{data.get('source', 'unknown')}', not SpineWeb16: its split says nothing of these images")
        return stored_split(records, data.get("split") or {}), f"the patient split of '{c.split_from}'"
    return (split_by_patient(records, c.val_fraction, c.test_fraction, c.seed),
            f"patient split val {c.val_fraction}, test {c.test_fraction}, seed {c.seed}")


def run(cfg: DictConfig) -> Path:
    """Train, keep the epoch with the lowest validation tilt error, write the checkpoint and its
    ``.json`` history next to it; return the checkpoint's path."""
    import torch

    from r2mfnet.data.io import read_image
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.inference.corner_refiner import save_corner_net
    from r2mfnet.training.corner_training import CornerTrainConfig, landmark_images, train_corner_net

    c = command_config(TrainCornersConfig, cfg)
    if c.epochs < 1 or c.batch_size < 2:
        raise ConfigError(f"epochs must be >= 1 and batch_size >= 2, got {c.epochs} and {c.batch_size}")
    if c.crop_size < 16 or c.crop_size % 16:
        raise ConfigError(f"crop_size must be a multiple of 16, got {c.crop_size}")
    from r2mfnet.models.corner_net import HEADS

    if c.head not in HEADS:
        raise ConfigError(f"head must be one of {', '.join(HEADS)}, got '{c.head}'")
    if not c.output_file:
        raise ConfigError("output_file= is required (the corner checkpoint to write)")
    if Path(c.output_file).suffix == ".json":
        raise ConfigError(f"output_file must not end in .json ('{c.output_file}'): the training record "
                          "is written next to the checkpoint under that suffix")
    if not c.lr > 0:
        raise ConfigError(f"lr must be > 0, got {c.lr}")
    if c.threads is not None:
        if c.threads < 1:
            raise ConfigError(f"threads must be >= 1 (or null: torch's default), got {c.threads}")
        torch.set_num_threads(int(c.threads))
    manifest = _manifest(c)
    records = load_manifest(manifest, check_images=False)
    if not any(r.landmarks is not None for r in records):
        raise DataError("no record has a landmarks JSON: the corner network learns from corner landmarks",
                        path=manifest)
    parts, where = _splits(c, records)  # split every record (as the checkpoint's split did), then
    parts = {k: [r for r in v if r.landmarks is not None] for k, v in parts.items()}  # keep landmarked ones
    if not parts["train"] or not parts["val"]:
        raise DataError(f"{where} leaves {len(parts['train'])} training and {len(parts['val'])} validation "
                        "images with landmarks: both must be at least one", path=manifest)
    read = lambda p: read_image(p).array  # noqa: E731
    train, val = landmark_images(parts["train"], read), landmark_images(parts["val"], read)
    print(f"corner network: {len(train)} training and {len(val)} validation images ({where})")
    config = CornerTrainConfig(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, size=c.crop_size, head=c.head,
                               seed=c.seed)
    model, history = train_corner_net(train, val, config)
    best = min(history, key=lambda h: h["val_tilt_mae_deg"])
    record: dict[str, Any] = {
        "command": command_line("train_corners"), "manifest": str(manifest), "split": where,
        "train_cases": [t.case_id for t in train], "val_cases": [v.case_id for v in val],
        "best_epoch": best["epoch"], "val_tilt_mae_deg": best["val_tilt_mae_deg"], "history": history}
    out = save_corner_net(model, c.output_file, {"train": {k: record[k] for k in (
        "split", "best_epoch", "val_tilt_mae_deg", "train_cases", "val_cases")}})
    from r2mfnet.atomic import atomic_write_json

    atomic_write_json(Path(out).with_suffix(".json"), record)
    print(f"best epoch {best['epoch']}: validation tilt error {best['val_tilt_mae_deg']:.2f} deg "
          f"(median {best['val_tilt_median_deg']:.2f}); written: {out}")
    return Path(out)


main = hydra_entry("train_corners", run)

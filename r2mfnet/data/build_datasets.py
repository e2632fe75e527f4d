"""From the ``data`` config group to split record lists and datasets.

Every source is first materialised as a manifest (the synthetic generator and the SpineWeb16
adapter both write one into a cache folder), so the rest of the pipeline has one input format.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from r2mfnet.errors import ConfigError, DataError


@dataclass
class SyntheticConfig:
    num_cases: int = 120
    seed: int = 0
    image_height: int = 512
    image_width: int = 256


@dataclass
class SplitConfig:
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    num_folds: int = 0  # >1: k-fold over the non-test patients, ``fold`` picks the validation fold
    fold: int = 0


@dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | manifest | spineweb16
    manifest: Optional[str] = None  # for source=manifest
    root: Optional[str] = None  # for source=spineweb16
    cache_dir: str = ".cache/r2mfnet"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    input_height: int = 256
    input_width: int = 128
    clahe: bool = False
    batch_size: int = 8
    num_workers: int = 0
    persistent_workers: bool = True  # keep DataLoader workers between epochs (exact: the epoch travels with the index)
    pin_memory: Optional[bool] = None  # null = on with CUDA, off on CPU
    cache: bool = True
    augment: Optional[dict[str, Any]] = None
    labels: str = "binary"  # binary | vertebrae (18 classes from the landmarks, docs/vertebrae.md)


def resolve_manifest(cfg: DataConfig) -> Path:
    """Path of the manifest CSV for ``cfg.source``, generating or preparing it on first use."""
    cache = Path(os.path.expanduser(cfg.cache_dir))
    if cfg.source == "synthetic":
        from r2mfnet.data.synthetic import ensure_dataset

        s = cfg.synthetic
        return Path(
            ensure_dataset(
                cache / "synthetic", num_cases=s.num_cases, seed=s.seed,
                image_height=s.image_height, image_width=s.image_width,
            )
        )
    if cfg.source == "manifest":
        if not cfg.manifest:
            raise ConfigError("data.source=manifest needs data.manifest=PATH/TO/manifest.csv")
        path = Path(os.path.expanduser(cfg.manifest))
        if not path.is_file():
            raise DataError("manifest file does not exist (check data.manifest)", path=path)
        return path
    if cfg.source == "spineweb16":
        from r2mfnet.data.spineweb16 import default_root, prepare_spineweb16

        root = Path(os.path.expanduser(cfg.root)) if cfg.root else default_root()
        return Path(prepare_spineweb16(root, cache / "spineweb16"))
    raise ConfigError(f"data.source must be synthetic, manifest or spineweb16, got '{cfg.source}'")


def load_splits(cfg: DataConfig, manifest: Path | None = None) -> dict[str, list]:
    """``{"train", "val", "test"}`` record lists, split by patient (explicit ``split`` wins)."""
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.data.splits import split_records

    records = load_manifest(manifest or resolve_manifest(cfg))
    sp = cfg.split
    return split_records(records, val_fraction=sp.val_fraction, test_fraction=sp.test_fraction, seed=sp.seed,
                         num_folds=sp.num_folds, fold=sp.fold)


def build_dataset(records: list, cfg: DataConfig, train: bool, seed: int = 0):
    """A :class:`SegmentationDataset` at the configured input size (augmented when ``train``)."""
    from r2mfnet.data.dataset import SegmentationDataset

    augment = dict(cfg.augment) if train and cfg.augment else None
    return SegmentationDataset(
        records, image_size=(cfg.input_height, cfg.input_width), augment=augment,
        cache=cfg.cache, clahe=cfg.clahe, seed=seed, label_mode=cfg.labels,
    )


def preprocess_spec(cfg: DataConfig) -> dict[str, Any]:
    """What inference must repeat; stored in every checkpoint."""
    return {"input_size": [cfg.input_height, cfg.input_width], "clahe": cfg.clahe, "normalize": "percentile_0.5_99.5"}

"""Data layer: readers, manifest, preprocessing, augmentation, splits, datasets.

Submodules are imported lazily so that ``import r2mfnet.data`` stays cheap (no torch, OpenCV or
albumentations until they are needed). ``from r2mfnet.data import load_manifest`` works.
"""
from __future__ import annotations

import importlib

from r2mfnet.data.views import LEVELS, MIRRORED_VIEW, QUALITIES, VIEWS

_LAZY = {
    "ImageData": "io",
    "read_image": "io",
    "read_mask": "io",
    "ViewRecord": "manifest",
    "load_manifest": "manifest",
    "write_manifest": "manifest",
    "normalize_intensity": "preprocess",
    "clahe": "preprocess",
    "Letterbox": "preprocess",
    "LetterboxTransform": "preprocess",
    "Augmenter": "augment",
    "build_augmentation": "augment",
    "split_by_patient": "splits",
    "kfold_by_patient": "splits",
    "prepare_spineweb16": "spineweb16",
    "SegmentationDataset": "dataset",
    "load_view": "dataset",
}

__all__ = ["VIEWS", "QUALITIES", "LEVELS", "MIRRORED_VIEW", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f"r2mfnet.data.{_LAZY[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'r2mfnet.data' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

"""The predict command's DICOM Segmentation output: ``<view>_seg.dcm`` beside each DICOM input's PNGs.

``dicom_seg`` option: ``auto`` (default) writes a SEG for every DICOM input when highdicom (the
``deploy`` extra) is installed and says once that it is skipped otherwise; ``true`` requires
highdicom (exit 2 at the start without it); ``false`` never writes one. Other inputs get PNGs
only, as always. The SEG itself: :mod:`r2mfnet.data.dicom_seg`. A SEG that cannot be built (a
header without the UIDs a reference needs) is reported in the view's ``files`` entry as
``dicom_seg_error``; the view's PNGs and measurements are unaffected.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from r2mfnet.data.inputs import InputView
from r2mfnet.errors import ConfigError, R2MFNetError

ExtraFn = Callable[[InputView, np.ndarray, Path], dict]
MODES = ("auto", "true", "false")


def dicom_seg_writer(mode: object) -> ExtraFn | None:
    """The per-view writer for ``dicom_seg=<mode>`` (None: write none)."""
    from r2mfnet.data.dicom_seg import DEPLOY_HINT, SEG_SUFFIX, highdicom_available, is_dicom_file, write_dicom_seg

    text = str(mode).lower()
    if text not in MODES:
        raise ConfigError(f"dicom_seg must be auto, true or false, got '{mode}'")
    if text == "false":
        return None
    # highdicom logs each copied DICOM module at INFO, which the Hydra app's logging would print
    logging.getLogger("highdicom").setLevel(logging.WARNING)
    if not highdicom_available():
        if text == "true":
            raise ConfigError(f"dicom_seg=true needs highdicom; {DEPLOY_HINT}")
        told: list[bool] = []

        def skip(iv: InputView, mask: np.ndarray, folder: Path) -> dict:
            if is_dicom_file(iv.path) and not told:
                told.append(True)
                print(f"r2mfnet: DICOM Segmentation output skipped (highdicom is not installed; "
                      f"{DEPLOY_HINT})", file=sys.stderr)
            return {}

        return skip

    def write(iv: InputView, mask: np.ndarray, folder: Path) -> dict:
        if not is_dicom_file(iv.path):
            return {}
        name = f"{iv.view}{SEG_SUFFIX}"
        try:
            write_dicom_seg(iv.path, mask, folder / name)
        except R2MFNetError as exc:
            return {"dicom_seg_error": str(exc)}
        return {"dicom_seg": name}

    return write


__all__ = ["dicom_seg_writer", "MODES"]

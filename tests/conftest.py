"""Shared test fixtures: a tiny manifest folder built on the fly.

``make_manifest_folder(root, ...)`` writes small radiograph-like PNGs (a column of bright
"vertebrae" on a noisy gradient), their binary masks and a manifest CSV, and returns the CSV
path. File names contain spaces and non-ASCII characters on purpose.
"""
from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def _encode_png(path: Path, arr: np.ndarray) -> None:
    import cv2

    ok, buf = cv2.imencode(".png", arr)
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    buf.tofile(str(path))


def make_view_arrays(
    height: int = 64, width: int = 48, seed: int = 0, shift: int = 0, bit_depth: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8/uint16 HxW, mask uint8 {0,255}) of a tiny synthetic spine."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    img = 0.2 + 0.2 * yy / height + 0.05 * rng.standard_normal((height, width))
    mask = np.zeros((height, width), bool)
    n = 5
    block = height / (n + 1)
    cx = width // 2 + shift
    for i in range(n):
        y0 = int(block * (i + 0.5)) + 2
        y1 = int(block * (i + 1.3))
        x0, x1 = max(cx - width // 8 + (i % 2), 0), min(cx + width // 8 + (i % 2), width)
        mask[y0:y1, x0:x1] = True
    img[mask] += 0.45
    img = np.clip(img, 0, 1)
    maxv = 255 if bit_depth == 8 else 65535
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return (img * maxv).round().astype(dtype), mask.astype(np.uint8) * 255


def make_manifest_folder(
    root: Path,
    n_cases: int = 3,
    views=("coronal", "left_bending", "right_bending"),
    size: tuple[int, int] = (64, 48),
    seed: int = 0,
    qualities=("high", "medium", "low"),
    extra_columns: bool = True,
) -> Path:
    """Write images, masks and ``manifest.csv`` under ``root``; return the CSV path."""
    root = Path(root)
    lines = ["case_id,view,image,mask,quality,split,pixel_spacing_mm,patient_id" if extra_columns
             else "case_id,view,image,mask"]
    for c in range(n_cases):
        case = f"case {c:02d}"
        for v, view in enumerate(views):
            img, mask = make_view_arrays(size[0], size[1], seed=seed * 1000 + c * 10 + v, shift=(v - 1) * 3)
            img_rel = f"images/{case} {view} é.png"
            mask_rel = f"masks/{case} {view} é.png"
            _encode_png(root / img_rel, img)
            _encode_png(root / mask_rel, mask)
            if extra_columns:
                q = qualities[c % len(qualities)] if qualities else ""
                lines.append(f"{case},{view},{img_rel},{mask_rel},{q},,0.5,patient {c // 2}")
            else:
                lines.append(f"{case},{view},{img_rel},{mask_rel}")
    csv_path = root / "manifest.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path


@pytest.fixture
def manifest_factory():
    """The :func:`make_manifest_folder` function, for tests that need their own variant."""
    return make_manifest_folder


@pytest.fixture
def tiny_manifest(tmp_path) -> Path:
    """A valid manifest folder: 3 cases x 3 views, 64 x 48 px PNGs; returns the CSV path."""
    return make_manifest_folder(tmp_path / "tiny manifest ü")

"""Contact sheet: a grid of a few cases x 3 views, each as image and image + mask outline.

Reading the written files (not the generator's arrays) makes the sheet a check of what is on
disk: bit depth, mask alignment and landmarks as a data loader will see them.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from r2mfnet.atomic import atomic_write
from r2mfnet.data.views import VIEWS
from r2mfnet.errors import DataError

_SHORT = {"coronal": "coronal", "left_bending": "left bend", "right_bending": "right bend"}


def _display(img: np.ndarray) -> np.ndarray:
    """Percentile window to 8 bit, as a viewer would show a 16-bit radiograph."""
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img.astype(np.float32) - lo) / max(hi - lo, 1.0) * 255, 0, 255).astype(np.uint8)


def make_contact_sheet(manifest: str | Path, out_path: str | Path, num_cases: int = 4,
                       tile_height: int = 320, case_ids: list[str] | None = None) -> Path:
    """Write a PNG grid: one row per case, for each view the image then the mask overlay."""
    manifest = Path(manifest)
    root = manifest.parent
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cases = case_ids or list(dict.fromkeys(r["case_id"] for r in rows))[:num_cases]
    by_key = {(r["case_id"], r["view"]): r for r in rows}
    lines = []
    for cid in cases:
        tiles = []
        for view in VIEWS:
            r = by_key.get((cid, view))
            if r is None:
                raise DataError(f"case {cid} has no {view} row", path=manifest)
            img = cv2.imread(str(root / r["image"]), cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(str(root / r["mask"]), cv2.IMREAD_GRAYSCALE)
            if img is None or mask is None:
                raise DataError("unreadable image or mask", path=root / r["image"])
            scale = tile_height / img.shape[0]
            size = (max(1, round(img.shape[1] * scale)), tile_height)
            gray = cv2.resize(_display(img), size, interpolation=cv2.INTER_AREA)
            m = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
            plain = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
            over = plain.copy()
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(over, contours, -1, (0, 210, 255), 1, cv2.LINE_AA)
            lm_path = r.get("landmarks")
            label = f"{cid} {_SHORT[view]}"
            if lm_path:
                lm = json.loads((root / lm_path).read_text(encoding="utf-8"))
                corners = np.asarray(lm["corners"], dtype=np.float64) * scale
                for c in corners:  # mid-line of each body, the reference Cobb's input
                    a, b = (c[0] + c[2]) / 2, (c[1] + c[3]) / 2
                    cv2.line(over, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)),
                             (80, 255, 80), 1, cv2.LINE_AA)
                label2 = f"{r['quality']}  Cobb {lm['cobb_deg']:.0f}"
            else:
                label2 = r.get("quality", "")
            for text, y in ((label, 12), (label2, 25)):  # dark outline: readable on white borders
                cv2.putText(over, text, (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(over, text, (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 255), 1,
                            cv2.LINE_AA)
            gap = np.zeros((tile_height, 2, 3), np.uint8)
            tiles += [plain, gap, over, np.full((tile_height, 6, 3), 40, np.uint8)]
        lines.append(np.concatenate(tiles[:-1], axis=1))
        lines.append(np.full((6, lines[-1].shape[1], 3), 40, np.uint8))
    sheet = np.concatenate(lines[:-1], axis=0)
    out_path = Path(out_path)

    def write(p: Path) -> None:
        # atomic_write's temporary name keeps the ".png" suffix, which OpenCV needs.
        if not cv2.imwrite(str(p), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise DataError("could not write the contact sheet", path=out_path)

    return atomic_write(out_path, write)

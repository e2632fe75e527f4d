"""``scripts/vertebra_picture.py``: the vertebra-level report picture of docs/vertebrae.md (and docs/measurements.md).

Root config ``configs/vertebra_picture.yaml`` (``output_file=``, ``seed=``). Generates a few synthetic
cases at 1024 x 512 (cached under ``.cache/r2mfnet/vertebra_picture``), takes the coronal view
with the largest curve, paints its ground-truth vertebra labels from the landmarks and draws the
measurement (named vertebrae, each curve's end plates, level range and angle), next to the
binary mask's centreline measurement of the same view. The same drawing from *predicted* labels
is ``report_levels.png`` of ``scripts/predict.py`` with an 18-class checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING, DictConfig

from r2mfnet.apps.schema import CommandConfig, OutputFileKeys, command_config
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError


@dataclass
class VertebraPictureConfig(OutputFileKeys, CommandConfig):
    """``configs/vertebra_picture.yaml``'s keys and types (the values are the YAML's)."""

    RENAMED = {"out": "output_file"}
    seed: int = MISSING


def run(cfg: DictConfig) -> Path:
    """Draw and write the picture; print the measured curves; return the picture's path."""
    import json

    import cv2
    import numpy as np

    from r2mfnet.data.dataset import load_view
    from r2mfnet.data.labels import read_label_map
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.data.synthetic import ensure_dataset
    from r2mfnet.measure import cobb_from_mask, draw_measurement, side_by_side
    from r2mfnet.measure.vertebra_labels import draw_labels, measure_labels

    c = command_config(VertebraPictureConfig, cfg)
    if not c.output_file:
        raise ConfigError("output_file= is required (see --help)")
    out, seed = Path(c.output_file), c.seed
    manifest = ensure_dataset(Path(".cache/r2mfnet/vertebra_picture"), num_cases=6, seed=seed,
                              image_height=1024, image_width=512, num_workers=0)
    coronal = [r for r in load_manifest(manifest) if r.view == "coronal"]
    best = max(coronal, key=lambda r: json.loads(Path(r.landmarks).read_text())["cobb_deg"])
    image, mask, _ = load_view(best)
    labels = read_label_map(best.landmarks, image.shape)
    m = measure_labels(labels)
    left = draw_labels(image, labels, m, title="vertebra labels")
    cl, cobb = cobb_from_mask(mask)
    right = draw_measurement(image, mask, cl, cobb, label="binary mask")
    picture = side_by_side([left, right], f"{best.case_id} coronal (ground truth): named levels vs approximate levels")
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.ascontiguousarray(picture[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(json.dumps({"case": best.case_id, "curves": m.to_dict()["curves"],
                      "binary_mask_curves": [(c.upper_level, c.lower_level, round(c.angle_deg, 1)) for c in cobb.curves]},
                     indent=1))
    print(f"wrote {out}")
    return out


main = hydra_entry("vertebra_picture", run, renamed=VertebraPictureConfig.RENAMED)

"""Binary-mask vs vertebra-level comparison on SpineWeb16 (data-dependent part skipped if absent)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from r2mfnet.data.labels import rasterize_labels
from r2mfnet.evaluation.binary_vs_labels import compare_spineweb16, labels_triple, oracle_labels, to_markdown
from r2mfnet.measure.aasce import aasce_angles_from_landmarks
from tests.measure.synth_spine import bump, make_spine

HERE = Path(__file__).resolve()
_SW = [Path(os.environ["R2MFNET_SPINEWEB16"]) if os.environ.get("R2MFNET_SPINEWEB16") else None,
       HERE.parents[3] / "shared" / "data" / "spineweb16"]
SW_ROOT = next((p for p in _SW if p is not None and (p / "images").is_dir() and (p / "labels").is_dir()), None)


def test_labels_triple_follows_the_landmark_rule():
    spine = make_spine(bump(0.12, 0.5, 0.3), height=1200.0)
    lab = rasterize_labels(spine.corners, spine.mask.shape)
    tri, info = labels_triple(lab, lab.shape[0])
    ref = aasce_angles_from_landmarks(spine.corners, lab.shape[0])
    assert np.allclose(tri, ref, atol=1.0)
    assert info["missing"] == [] and info["main_curve"]["upper"] == "T7"
    bad, info = labels_triple(np.zeros((10, 10), np.uint8), 10)
    assert bad is None and "fewer than two" in info["error"]


def test_oracle_keeps_every_vertebra_and_its_name():
    spine = make_spine(bump(0.12, 0.5, 0.3), height=1200.0)
    lab = rasterize_labels(spine.corners, spine.mask.shape)
    back = oracle_labels(lab, (256, 128))
    assert back.shape == lab.shape and back.dtype == np.uint8
    assert set(np.unique(back)) == set(range(18))
    from r2mfnet.evaluation.vertebra_metrics import identification_rate, per_vertebra_dice

    assert identification_rate(back, lab) == 1.0
    assert min(per_vertebra_dice(back, lab).values()) > 0.7


@pytest.mark.skipif(SW_ROOT is None, reason="SpineWeb16 not available (set R2MFNET_SPINEWEB16)")
def test_compare_on_two_spineweb16_images(tmp_path):
    from r2mfnet.data.spineweb16 import prepare_spineweb16

    manifest = prepare_spineweb16(SW_ROOT, tmp_path / "sw", limit=2)
    result = compare_spineweb16(manifest, binary_methods=("vertebrae",), progress=False, oracle_size=(256, 128))
    assert result["n_images"] == 2
    rows = {r["source"]: r for r in result["rows"]}
    assert set(rows) == {"gt_mask/vertebrae", "gt_labels/vertebra_level", "oracle_labels/vertebra_level"}
    # painted from the experts' own corners, the label maps give back their main angle closely
    assert rows["gt_labels/vertebra_level"]["n_failed"] == 0
    assert rows["gt_labels/vertebra_level"]["mae_main_deg"] < 1.5
    assert "SMAPE angle 1" in to_markdown(result)


@pytest.mark.skipif(SW_ROOT is None, reason="SpineWeb16 not available (set R2MFNET_SPINEWEB16)")
def test_compare_adds_predicted_rows_and_label_metrics(tmp_path):
    """--binary-checkpoint measures a binary model's masks on the same images as the GT rows;
    --checkpoint adds the 18-class model's per-vertebra Dice and identification rate."""
    import torch

    from r2mfnet.data.spineweb16 import prepare_spineweb16
    from r2mfnet.models import create
    from r2mfnet.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = create("unet", base_channels=4, depth=2)  # untrained: its masks may fail to measure
    ckpt = tmp_path / "binary.pt"
    save_checkpoint(ckpt, {"model_config": dict(model.model_config), "model": model.state_dict(),
                           "preprocess": {"input_size": [64, 32], "clahe": False}})
    labels_model = create("unet", base_channels=4, depth=2, num_classes=18)
    labels_ckpt = tmp_path / "labels.pt"
    save_checkpoint(labels_ckpt, {"model_config": dict(labels_model.model_config), "model": labels_model.state_dict(),
                                  "preprocess": {"input_size": [64, 32], "clahe": False}})
    manifest = prepare_spineweb16(SW_ROOT, tmp_path / "sw", limit=2)
    result = compare_spineweb16(manifest, binary_methods=("centreline",), progress=False, binary_checkpoint=ckpt,
                                checkpoint=labels_ckpt)
    seg = result["segmentation"]  # per-vertebra Dice and identification of the 18-class model
    assert seg["n_images"] == 2 and seg["n_vertebrae"] == 34 and 0.0 <= seg["identification_rate"] <= 1.0
    assert "identification rate" in to_markdown(result)
    rows = {r["source"]: r for r in result["rows"]}
    assert {"gt_mask/centreline", "pred_mask/centreline"} <= set(rows)
    pred, gt = rows["pred_mask/centreline"], rows["gt_mask/centreline"]
    assert pred["n"] + pred["n_failed"] == gt["n"] + gt["n_failed"] == 2
    assert all("pred_mask/centreline" in r["measured"] for r in result["per_image"])

"""Vertebra label maps (18 classes) from landmarks: rasterising, letterbox, dataset, augmentation."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from r2mfnet.data.augment import Augmenter
from r2mfnet.data.dataset import SegmentationDataset
from r2mfnet.data.io import read_mask
from r2mfnet.data.labels import (
    NUM_VERTEBRA_CLASSES,
    label_of_level,
    labels_to_mask,
    letterbox_labels,
    rasterize_labels,
    read_label_map,
    read_landmarks,
)
from r2mfnet.data.manifest import load_manifest
from r2mfnet.data.preprocess import Letterbox
from r2mfnet.data.views import LEVELS
from r2mfnet.errors import ConfigError, DataError

HERE = Path(__file__).resolve()
_SW = [Path(os.environ["R2MFNET_SPINEWEB16"]) if os.environ.get("R2MFNET_SPINEWEB16") else None,
       HERE.parents[3] / "shared" / "data" / "spineweb16"]
SW_ROOT = next((p for p in _SW if p is not None and (p / "images").is_dir() and (p / "labels").is_dir()), None)


def _rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x0, y1], [x1, y1]]  # TL, TR, BL, BR


@pytest.fixture(scope="module")
def synthetic_manifest(tmp_path_factory) -> Path:
    from r2mfnet.data.synthetic import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("syn") / "d", num_cases=2, seed=3,
                            image_height=128, image_width=64, num_workers=0)


def test_names_and_indices():
    assert NUM_VERTEBRA_CLASSES == 18
    assert label_of_level("T1") == 1 and label_of_level("T12") == 12 and label_of_level("L5") == 17
    with pytest.raises(DataError, match="unknown vertebra level"):
        label_of_level("C7")


def test_rasterize_hand_made_quads():
    corners = np.array([_rect(2, 1, 7, 3), _rect(2, 5, 7, 8)], dtype=float)
    lab = rasterize_labels(corners, (10, 10), ["T4", "T5"])
    assert lab.dtype == np.uint8
    assert (lab[1:4, 2:8] == 4).all() and (lab[5:9, 2:8] == 5).all()
    assert (lab > 0).sum() == 3 * 6 + 4 * 6  # nothing else painted
    assert (lab[4] == 0).all()  # the "disc" row stays background


def test_overlap_goes_to_the_nearest_centre():
    # Two 9-row vertebrae overlapping on rows 6..8: rows 6 and 7 are nearer the upper centre (y=4)
    # than the lower one (y=10) only up to the mid-row 7.
    corners = np.array([_rect(0, 0, 5, 8), _rect(0, 6, 5, 14)], dtype=float)
    lab = rasterize_labels(corners, (16, 6))
    assert (lab[0:7] == 1).all()  # row 6: |6-4| < |6-10|
    assert (lab[8:15] == 2).all()  # row 8: |8-10| < |8-4|
    # row 7 is equidistant: the first painted (upper) keeps it (strictly nearer wins)
    assert (lab[7] == 1).all()


def test_landmarks_reader_checks(tmp_path):
    good = tmp_path / "a.json"
    good.write_text(json.dumps({"levels": ["T2", "T3"], "corners": [_rect(0, 0, 2, 2), _rect(0, 4, 2, 6)]}))
    corners, levels = read_landmarks(good)
    assert corners.shape == (2, 4, 2) and levels == ["T2", "T3"]
    lab = read_label_map(good, (8, 4))
    assert set(np.unique(lab)) == {0, 2, 3}
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"levels": ["T2", "X9"], "corners": [_rect(0, 0, 2, 2), _rect(0, 4, 2, 6)]}))
    with pytest.raises(DataError, match="unknown vertebra level"):
        read_landmarks(bad)
    bad.write_text(json.dumps({"corners": [_rect(0, 0, 2, 2)]}))  # no levels and not 17
    with pytest.raises(DataError, match="without a 'levels' list"):
        read_landmarks(bad)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        read_landmarks(bad)


def test_union_equals_synthetic_masks_exactly(synthetic_manifest):
    for r in load_manifest(synthetic_manifest):
        mask = read_mask(r.mask)
        lab = read_label_map(r.landmarks, mask.shape)
        assert np.array_equal(labels_to_mask(lab), mask), (r.case_id, r.view)
        assert set(np.unique(lab)) == set(range(18))


@pytest.mark.skipif(SW_ROOT is None, reason="SpineWeb16 not available (set R2MFNET_SPINEWEB16)")
def test_union_equals_spineweb16_masks(tmp_path):
    from r2mfnet.data.spineweb16 import prepare_spineweb16

    recs = load_manifest(prepare_spineweb16(SW_ROOT, tmp_path / "sw", limit=3))
    for r in recs:
        mask = read_mask(r.mask)
        lab = read_label_map(r.landmarks, mask.shape)
        # same polygons, same fixed-point fill: equal up to a handful of rounding pixels
        assert ((lab > 0) != mask).sum() <= 1e-4 * mask.sum(), r.case_id
        assert len(np.unique(lab)) == 18


def test_letterbox_keeps_integer_classes_and_the_binary_letterbox():
    rng = np.random.default_rng(0)
    lab = np.zeros((200, 90), np.uint8)
    for k in range(17):
        y0 = 5 + 11 * k
        x0 = 30 + int(rng.integers(-3, 4))
        lab[y0 : y0 + 9, x0 : x0 + 28] = k + 1
    tf = Letterbox(64, 32).fit(lab.shape)
    out = letterbox_labels(tf, lab)
    assert out.shape == (64, 32) and out.dtype == np.uint8
    assert np.array_equal(out > 0, tf.apply_mask(lab > 0))
    assert set(np.unique(out)) <= set(range(18))
    # every class survives and keeps its top-to-bottom order
    ys = [np.nonzero(out == k)[0].mean() for k in range(1, 18)]
    assert np.all(np.diff(ys) > 0)


def test_dataset_labels_match_masks_and_binary_mode_unchanged(synthetic_manifest):
    recs = load_manifest(synthetic_manifest)
    binary = SegmentationDataset(recs, image_size=(64, 32))
    vert = SegmentationDataset(recs, image_size=(64, 32), label_mode="vertebrae")
    for i in range(len(recs)):
        a, b = binary[i], vert[i]
        assert "labels" not in a
        assert b["labels"].dtype.is_floating_point is False and tuple(b["labels"].shape) == (64, 32)
        assert np.array_equal(a["image"].numpy(), b["image"].numpy())
        assert np.array_equal(a["mask"].numpy(), b["mask"].numpy())
        # the mask file is the union of the vertebrae, so the two targets agree pixel for pixel
        assert np.array_equal(b["labels"].numpy() > 0, b["mask"].numpy()[0] > 0.5)
        assert int(b["labels"].max()) <= 17


def test_dataset_augmented_labels_stay_consistent(synthetic_manifest):
    recs = load_manifest(synthetic_manifest)
    strong = {"affine_p": 1.0, "elastic_p": 1.0, "grid_p": 1.0, "hflip_p": 0.5}
    plain = SegmentationDataset(recs, image_size=(64, 32), augment=strong, seed=1)
    vert = SegmentationDataset(recs, image_size=(64, 32), augment=strong, seed=1, label_mode="vertebrae")
    for epoch in range(2):
        plain.set_epoch(epoch)
        vert.set_epoch(epoch)
        for i in range(len(recs)):
            a, b = plain[i], vert[i]
            # adding labels changes nothing else in the item (same random draws)
            assert np.array_equal(a["image"].numpy(), b["image"].numpy())
            assert np.array_equal(a["mask"].numpy(), b["mask"].numpy()) and a["view"] == b["view"]
            lab = b["labels"].numpy()
            assert np.array_equal(lab > 0, b["mask"].numpy()[0] > 0.5)
            assert set(np.unique(lab)) <= set(range(18))


def test_flip_mirrors_but_keeps_vertebra_classes():
    lab = np.zeros((40, 20), np.uint8)
    lab[2:6, 3:9] = 1
    lab[8:12, 4:10] = 2
    img = np.random.default_rng(0).random((40, 20)).astype(np.float32)
    off = {k: 0.0 for k in ("affine_p", "elastic_p", "grid_p", "brightness_contrast_p", "gamma_p", "noise_p", "blur_p")}
    aug = Augmenter({**off, "hflip_p": 1.0})
    out_img, out_mask, out_lab, view = aug.with_labels(img, lab > 0, lab, "left_bending", seed=3)
    assert view == "right_bending"
    assert np.array_equal(out_lab, lab[:, ::-1])  # T1 stays T1, only mirrored
    assert np.array_equal(out_mask, lab[:, ::-1] > 0) and np.array_equal(out_img, img[:, ::-1])
    # the plain call is unchanged
    i2, m2, v2 = aug(img, lab > 0, "left_bending", seed=3)
    assert np.array_equal(i2, out_img) and np.array_equal(m2, out_mask) and v2 == view


def test_dataset_label_mode_errors(tiny_manifest):
    recs = load_manifest(tiny_manifest)  # no landmarks column
    with pytest.raises(DataError, match="landmarks JSON per view"):
        SegmentationDataset(recs, image_size=(64, 32), label_mode="vertebrae")
    with pytest.raises(ConfigError, match="label_mode"):
        SegmentationDataset(recs, image_size=(64, 32), label_mode="levels")


def test_levels_constant_is_the_label_order():
    assert LEVELS[0] == "T1" and LEVELS[-1] == "L5" and len(LEVELS) == 17

"""The logits -> mask rule, flip TTA and the anatomy-aware clean-up, on hand-built inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from r2mfnet.errors import ConfigError
from r2mfnet.inference.postprocess import (
    CleanupParams,
    apply_cleanup,
    classes_from_logits,
    clean_mask,
    cleanup_params,
    flip_tta,
    foreground_probability,
    labels_from_channels,
    mask_from_logits,
    probabilities,
)

EIGHT = np.ones((3, 3), bool)


def n_components(mask: np.ndarray) -> int:
    return ndimage.label(mask, structure=EIGHT)[1]


# ------------------------------------------------------------------------------ the rule
def test_binary_rule_on_hand_built_logits():
    logits = torch.tensor([-1.0, 0.0, 1e-3, 1.0, 2.0]).view(1, 1, 1, 5)
    assert mask_from_logits(logits).flatten().tolist() == [False, False, True, True, True]
    # sigmoid > 0.8  <=>  logit > log 4 = 1.386: only the last pixel
    assert mask_from_logits(logits, 0.8).flatten().tolist() == [False, False, False, False, True]
    prob = probabilities(logits)
    assert prob[0, 0, 0, 3].item() == pytest.approx(1 / (1 + math.exp(-1)))
    assert torch.equal(foreground_probability(prob), prob)


def _three_class_logits() -> torch.Tensor:
    # per pixel (background, vertebra 1, vertebra 2); log of the probabilities = logits
    probs = torch.tensor([[0.4, 0.35, 0.25],   # 1 - p_bg = 0.6 > 0.5 -> the more probable vertebra: 1
                          [0.6, 0.3, 0.1],     # 0.4 -> background, although not by argmax over vertebrae
                          [0.45, 0.2, 0.35],   # 0.55 -> vertebra 2
                          [0.3, 0.35, 0.35]])  # tie between the vertebrae -> the lower class, 1
    return torch.log(probs).T[None, :, None, :].contiguous()  # [1, 3, 1, 4]


def test_three_class_rule_on_hand_built_logits():
    logits = _three_class_logits()
    assert classes_from_logits(logits).tolist() == [[[1, 0, 2, 1]]]
    # at threshold 0.58 only the first pixel (0.6) and the last (0.7) stay foreground
    assert classes_from_logits(logits, 0.58).tolist() == [[[1, 0, 0, 1]]]
    fg = foreground_probability(probabilities(logits))
    assert fg.flatten().tolist() == pytest.approx([0.6, 0.4, 0.55, 0.7], abs=1e-6)
    # the same rule on numpy probability maps (the original-size path)
    prob = probabilities(logits)[0, :, 0].numpy()  # [3, 4]
    channels = [prob[k][None] for k in range(3)]
    assert labels_from_channels(channels).tolist() == [[1, 0, 2, 1]]
    forced = np.array([[False, True, True, False]])
    assert labels_from_channels(channels, foreground=forced).tolist() == [[0, 1, 2, 0]]


def test_mask_from_logits_refuses_several_channels():
    with pytest.raises(ValueError):
        mask_from_logits(torch.zeros(1, 3, 2, 2))


# ------------------------------------------------------------------------------ flip TTA
def _toy_forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Not mirror-symmetric (a ramp across the width), so the flipped pass really differs."""
    ramp = torch.arange(x.shape[-1], dtype=torch.float32)
    fine = torch.cat([x * ramp, x - ramp / 2, -x], dim=1)  # 3 classes
    return {"logits": fine, "coarse_logits": x * ramp - 1.0}


def test_flip_tta_is_the_mean_of_plain_and_mirrored_probabilities():
    x = torch.tensor([[0.1, 0.5, 0.9], [1.0, -0.2, 0.3]]).view(1, 1, 2, 3)
    out = flip_tta(_toy_forward, x, flip=True)
    # hand computation for the coarse output (one channel, sigmoid), pixel (0, 0):
    # plain: 0.1 * 0 - 1 = -1; mirrored input is [0.9, 0.5, 0.1] -> at mirrored column 2:
    # 0.1 * 2 - 1 = -0.8; mean of the two sigmoids
    expected = 0.5 * (1 / (1 + math.exp(1.0)) + 1 / (1 + math.exp(0.8)))
    assert out["coarse_prob"][0, 0, 0, 0].item() == pytest.approx(expected, rel=1e-6)
    plain = flip_tta(_toy_forward, x, flip=False)
    mirrored = flip_tta(_toy_forward, torch.flip(x, dims=[-1]), flip=False)
    for key in ("prob", "coarse_prob"):
        mean = 0.5 * (plain[key] + torch.flip(mirrored[key], dims=[-1]))
        assert torch.allclose(out[key], mean, atol=1e-7)
        assert not torch.allclose(out[key], plain[key])  # the toy model is not symmetric
    assert torch.allclose(out["prob"].sum(1), torch.ones(1, 2, 3))  # still a distribution
    assert set(flip_tta(_toy_forward, x, coarse=False)) == {"prob"}


def test_flip_tta_halves_are_each_pass_and_leave_the_mean_unchanged():
    x = torch.tensor([[0.1, 0.5, 0.9], [1.0, -0.2, 0.3]]).view(1, 1, 2, 3)
    calls = []

    def forward(batch):
        calls.append(batch.clone())
        return _toy_forward(batch)

    out = flip_tta(forward, x, flip=True, halves=True)
    assert len(calls) == 2  # the halves cost no pass more
    assert set(out) == {"prob", "coarse_prob", "plain/prob", "plain/coarse_prob", "mirrored/prob",
                        "mirrored/coarse_prob"}
    mean = flip_tta(_toy_forward, x, flip=True)
    plain = flip_tta(_toy_forward, x, flip=False)
    mirrored = flip_tta(_toy_forward, torch.flip(x, dims=[-1]), flip=False)  # the mirror image's frame
    for key in ("prob", "coarse_prob"):
        assert torch.equal(out[key], mean[key])  # bit for bit
        assert torch.equal(out[f"plain/{key}"], plain[key]) and torch.equal(out[f"mirrored/{key}"], mirrored[key])
    # coarse pixel (0, 0) of the mirrored pass, by hand: mirrored input column 0 is 0.9, ramp 0
    assert out["mirrored/coarse_prob"][0, 0, 0, 0].item() == pytest.approx(1 / (1 + math.exp(1.0)), rel=1e-6)
    assert set(flip_tta(_toy_forward, x, flip=False, halves=True)) == {"prob", "coarse_prob"}  # one pass, no halves


# ------------------------------------------------------------------------------ clean-up
def spine(h: int = 200, w: int = 100) -> np.ndarray:
    """Eleven 20 x 12 'vertebrae' in columns 40..59, 4-pixel gaps: column width 20."""
    m = np.zeros((h, w), bool)
    for top in range(10, 185, 16):
        m[top : top + 12, 40:60] = True
    return m


def test_spine_alone_is_unchanged():
    m = spine()
    assert np.array_equal(clean_mask(m), m)


def test_far_blob_is_removed_nearby_piece_kept():
    m = spine()
    m[100:110, 85:95] = True  # centre 45 px (2.25 widths) from the centreline 49.5: removed
    m[60:70, 62:70] = True  # centre 16.5 px from it (0.8 w), outside the column but close: kept
    out = clean_mask(m)
    assert not out[100:110, 85:95].any()
    assert out[60:70, 62:70].all()
    assert n_components(m) == 13 and n_components(out) == 12
    # the offset is a parameter: at 3 widths the blob stays
    assert clean_mask(m, {"max_offset": 3.0})[100:110, 85:95].all()


def test_speck_removed_by_size_relative_to_column_width():
    m = spine()
    m[7, 50] = True  # 1 px above the first vertebra, inside the column
    m[150:154, 61:65] = True  # 16 px < 0.05 * 20^2 = 20: a speck
    out = clean_mask(m)
    assert not out[7, 50] and not out[150:154, 61:65].any()
    assert n_components(out) == 11
    assert clean_mask(m, {"min_size": 0.0})[150:154, 61:65].all()  # step switched off


def test_hole_inside_a_vertebra_is_filled_components_unchanged():
    m = spine()
    m[14:17, 48:51] = False  # a 3 x 3 hole in the first vertebra (3 <= 0.3 * 20)
    out = clean_mask(m)
    assert out[14:17, 48:51].all()
    assert n_components(out) == n_components(m) == 11
    assert not clean_mask(m, CleanupParams(max_hole=0.0))[14:17, 48:51].any()


def test_neighbouring_vertebrae_stay_separate_and_a_joined_gap_stays_open():
    m = spine()
    before = n_components(m)
    out = clean_mask(m)
    assert n_components(out) == before == 11
    assert not out[22:26, 40:60].any()  # the gap between the first two vertebrae
    # join the first two vertebrae at both outer edges: the 18 x 4 gap is now a hole of one
    # component, but wider than 0.3 w, so it is not filled (end plates stay visible)
    j = spine()
    j[22:26, 40] = True
    j[22:26, 59] = True
    out = clean_mask(j)
    assert not out[22:26, 41:59].any()
    assert n_components(out) == n_components(j) == 10


def test_a_piece_inside_a_hole_is_not_merged():
    m = spine()
    m[60:70, 45:55] = False  # a 10 x 10 hole (too big to fill anyway at 0.3 w = 6) ...
    m[64:66, 49:51] = True  # ... with a 2 x 2 piece inside
    out = clean_mask(m, {"max_hole": 1.0, "min_size": 0.0})
    assert n_components(out) == n_components(m)
    assert not out[60:64, 45:55].any()  # the ring around the inner piece was not filled


def test_coarse_reference_decides_the_column():
    m = np.zeros((200, 200), bool)
    m[20:180, 20:40] = True  # two equal columns far apart
    m[20:180, 150:170] = True
    left = np.zeros_like(m)
    left[10:190, 15:45] = True
    right = np.fliplr(left)
    assert np.array_equal(clean_mask(m, reference=left), m & (np.arange(200) < 100))
    assert np.array_equal(clean_mask(m, reference=right), m & (np.arange(200) >= 100))


def test_cleanup_off_is_identity_and_empty_stays_empty():
    m = spine()
    m[100:110, 85:95] = True
    m[150:154, 61:65] = True
    m[14:17, 48:51] = False
    assert np.array_equal(apply_cleanup(m, False), m)
    assert np.array_equal(clean_mask(m, CleanupParams(0.0, 0.0, 0.0)), m)
    assert not clean_mask(np.zeros((10, 10), bool)).any()


def test_cleanup_parameters_are_checked():
    assert cleanup_params({"max_offset": 2}) == CleanupParams(max_offset=2.0)
    with pytest.raises(ConfigError, match="max_hole"):
        cleanup_params({"max_hole": -1})
    with pytest.raises(ConfigError, match="unknown cleanup"):
        cleanup_params({"min_area": 0.1})


# ------------------------------------------------------------------------------ predictor
class Threshold(nn.Module):
    """Logits = 20 (x - 0.5): spine where the preprocessed image is bright; optional classes."""

    def __init__(self, classes: int = 1) -> None:
        super().__init__()
        self.classes = classes
        self.model_config = {"name": "toy", "num_classes": classes}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = 20 * (x - 0.5)
        if self.classes == 1:
            return {"logits": z}
        rows = torch.linspace(-1, 1, x.shape[2]).view(1, 1, -1, 1).expand_as(x)
        return {"logits": torch.cat([-z, rows, -rows], 1)}  # top half vertebra 2, bottom half 1


def _image() -> np.ndarray:
    m = spine()
    m[100:110, 85:95] = True  # far blob
    m[14:17, 48:51] = False  # hole
    return m.astype(np.float32)


def test_predictor_applies_the_cleanup_only_when_on():
    from r2mfnet.inference.predictor import Predictor

    image = _image()
    raw = Predictor(Threshold(), (200, 100), device="cpu", postprocess=False).predict_mask(image)
    assert np.array_equal(raw, image > 0.5)
    cleaned = Predictor(Threshold(), (200, 100), device="cpu").predict_mask(image)
    assert np.array_equal(cleaned, spine())


def test_label_maps_get_the_same_cleanup_as_the_mask():
    from r2mfnet.inference.predictor import Predictor

    image = _image()
    predictor = Predictor(Threshold(classes=3), (200, 100), device="cpu", tta_flip=True)
    labels = predictor.predict_label_maps([image])[0]
    assert np.array_equal(labels > 0, predictor.predict_mask(image))
    assert np.array_equal(labels > 0, spine())
    assert labels[15, 49] == 2 and labels[180, 50] == 1  # the filled hole got its vertebra class

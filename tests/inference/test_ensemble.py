"""Ensembles (r2mfnet.inference.ensemble): several checkpoints' probabilities averaged at model size.

Tiny untrained U-Nets (64 x 32 input) saved as trainer checkpoints: two seeds give two different
probability maps, so a mean that used one member only, or averaged after thresholding, fails.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from r2mfnet.errors import ConfigError
from r2mfnet.inference import build_predictor
from r2mfnet.inference.ensemble import EnsemblePredictor, average_probabilities
from r2mfnet.inference.postprocess import half_key
from tests.deploy._helpers import save_tiny_checkpoint, spine_image


def save_unet(path: Path, seed: int = 0, num_classes: int = 1, input_size: tuple[int, int] = (64, 32)) -> Path:
    """A tiny untrained U-Net checkpoint, saved as the predict tests save theirs."""
    from r2mfnet.checkpoint import save_checkpoint
    from r2mfnet.models import create

    torch.manual_seed(seed)
    model = create("unet", base_channels=4, depth=2, num_classes=num_classes)
    save_checkpoint(path, {"model_config": dict(model.model_config), "model": model.state_dict(),
                           "preprocess": {"input_size": list(input_size), "clahe": False}})
    return path


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> tuple[Path, Path]:
    """Two checkpoints of the same architecture and input size, different seeds."""
    folder = tmp_path_factory.mktemp("ensemble")
    return save_unet(folder / "a.pt", seed=0), save_unet(folder / "b.pt", seed=1)


IMAGES = [spine_image(150, 70, seed=1), spine_image(128, 64, seed=2)]  # padded and unpadded letterbox


@pytest.mark.parametrize("tta", [False, True])
def test_ensemble_probabilities_are_the_mean_of_the_members_and_the_mask_is_it_thresholded(two, tta):
    a, b = two
    ens = build_predictor(checkpoint=str(a), ensemble=[str(b)], device="cpu", tta_flip=tta, postprocess=False)
    assert isinstance(ens, EnsemblePredictor) and ens.names == [str(a), str(b)]
    pa, pb = (build_predictor(checkpoint=str(p), device="cpu", tta_flip=tta) for p in (a, b))

    # at model size, every key (with TTA: the halves too), image by image
    got = list(ens.model_probabilities(IMAGES, 2, coarse=True, halves=True))
    per_a = list(pa.model_probabilities(IMAGES, 2, coarse=True, halves=True))
    per_b = list(pb.model_probabilities(IMAGES, 2, coarse=True, halves=True))
    expected_keys = {"prob", half_key("plain", "prob"), half_key("mirrored", "prob")} if tta else {"prob"}
    for (g, tg), (x, tx), (y, _) in zip(got, per_a, per_b, strict=True):
        assert set(g) == expected_keys and tg == tx
        for key in expected_keys:
            assert np.abs(x[key] - y[key]).max() > 1e-3  # two different members
            np.testing.assert_allclose(g[key], (x[key] + y[key]) / 2, rtol=0, atol=1e-6)

    # at the image's size (the back-mapping is linear), and the mask is that mean thresholded
    probs = ens.predict_probabilities(IMAGES)
    for p, x, y, image in zip(probs, pa.predict_probabilities(IMAGES), pb.predict_probabilities(IMAGES), IMAGES):
        assert p.shape == image.shape
        np.testing.assert_allclose(p, (x + y) / 2, rtol=0, atol=1e-6)
    mean = probs[0]
    ens.threshold = float(np.median(mean))  # a threshold that splits this map's pixels
    mask = ens.predict_mask(IMAGES[0])
    assert np.array_equal(mask, mean > ens.threshold)
    assert 0 < mask.sum() < mask.size


def test_an_ensemble_of_a_checkpoint_with_itself_is_the_single_predictor(two):
    a, _ = two
    single = build_predictor(checkpoint=str(a), device="cpu", tta_flip=True)
    twice = build_predictor(checkpoint=str(a), ensemble=[str(a)], device="cpu", tta_flip=True)
    assert isinstance(twice, EnsemblePredictor)
    for got, want in zip(twice.predict_probabilities(IMAGES), single.predict_probabilities(IMAGES), strict=True):
        assert np.array_equal(got, want)
    single.threshold = twice.threshold = float(np.median(single.predict_probability(IMAGES[0])))
    prediction, halves = twice.predict_with_halves(IMAGES[0])
    prediction_1, halves_1 = single.predict_with_halves(IMAGES[0])
    assert np.array_equal(prediction, prediction_1) and 0 < prediction.sum() < prediction.size
    assert all(np.array_equal(h, h1) for h, h1 in zip(halves, halves_1))
    assert np.array_equal(twice.predict_mask(IMAGES[1]), single.predict_mask(IMAGES[1]))


def test_the_coarse_map_is_averaged_when_every_member_has_it_and_dropped_otherwise(two, tmp_path):
    """R2MF-Net has a coarse stage, the U-Net none: their ensemble has no ``coarse_prob``."""
    cascade = save_tiny_checkpoint(tmp_path / "cascade.pt")
    a, _ = two
    both = build_predictor(checkpoint=str(cascade), ensemble=[str(cascade)], device="cpu")
    ((probs, _),) = both.model_probabilities(IMAGES[:1], coarse=True)
    assert set(probs) == {"prob", "coarse_prob"}
    mixed = build_predictor(checkpoint=str(cascade), ensemble=[str(a)], device="cpu")
    ((probs, _),) = mixed.model_probabilities(IMAGES[:1], coarse=True)
    assert set(probs) == {"prob"}
    assert mixed.predict_mask(IMAGES[0]).shape == IMAGES[0].shape  # the clean-up without a coarse column


def test_average_probabilities_keeps_the_common_keys_with_equal_weights():
    one = {"prob": np.full((1, 2, 2), 0.2, np.float32), "coarse_prob": np.ones((1, 2, 2), np.float32)}
    two = {"prob": np.full((1, 2, 2), 0.6, np.float32)}
    three = {"prob": np.full((1, 2, 2), 0.7, np.float32), "coarse_prob": np.zeros((1, 2, 2), np.float32)}
    out = average_probabilities([one, two, three])
    assert set(out) == {"prob"} and out["prob"].dtype == np.float32
    np.testing.assert_allclose(out["prob"], 0.5, atol=1e-7)
    assert one["prob"][0, 0, 0] == np.float32(0.2)  # the members' arrays are not changed


@pytest.mark.parametrize("what, kwargs, message", [
    ("input size", {"input_size": (32, 16)}, r"input size 32x16 differs from checkpoint '.*a\.pt' \(64x32\)"),
    ("classes", {"num_classes": 18}, r"18 output classes, checkpoint '.*a\.pt' has 1"),
])
def test_a_member_of_another_input_size_or_class_count_is_refused_when_built(two, tmp_path, what, kwargs, message):
    a, b = two
    other = save_unet(tmp_path / "other.pt", **kwargs)
    with pytest.raises(ConfigError, match=rf"^ensemble member '.*other\.pt': {message}") as err:
        build_predictor(checkpoint=str(a), ensemble=[str(b), str(other)], device="cpu")
    assert "\n" not in str(err.value)


def test_an_ensemble_needs_backend_torch(two):
    a, b = two
    with pytest.raises(ConfigError, match="ensemble= is not supported with backend=onnx") as err:
        build_predictor(backend="onnx", onnx_model="model.onnx", ensemble=[str(b)])
    assert "\n" not in str(err.value)


def test_a_missing_member_is_a_one_line_error_naming_it(two, tmp_path):
    """The member goes through the primary's safe loader (load_trained): its refusal names the file."""
    from r2mfnet.errors import R2MFNetError

    a, _ = two
    missing = tmp_path / "missing.pt"
    with pytest.raises(R2MFNetError, match="missing.pt") as err:
        build_predictor(checkpoint=str(a), ensemble=[missing], device="cpu")
    assert "\n" not in str(err.value)


def test_a_copy_with_other_settings_runs_its_members_with_them(two):
    """The error budget's "recipe" row copies the predictor and sets ``tta_flip``/``threshold`` on
    the copy (cobb_budget.recipe_predictor): the copy's members must follow it, the original not."""
    import copy

    a, b = two
    ens = build_predictor(checkpoint=str(a), ensemble=[str(b)], device="cpu", tta_flip=True)
    plain = build_predictor(checkpoint=str(a), ensemble=[str(b)], device="cpu", tta_flip=False)
    recipe = copy.copy(ens)
    recipe.tta_flip = False
    assert np.array_equal(recipe.predict_probability(IMAGES[0]), plain.predict_probability(IMAGES[0]))
    assert not np.allclose(ens.predict_probability(IMAGES[0]), plain.predict_probability(IMAGES[0]), atol=1e-4)


def test_a_map_every_member_has_is_averaged_unless_its_shapes_differ():
    """The coarse map of two cascades is their mean; a 1-channel and an 18-channel coarse map
    (coarse_classes 1 against null) cannot be averaged and are left out, as for a U-Net member."""
    one = {"prob": np.zeros((1, 2, 2), np.float32), "coarse_prob": np.ones((1, 2, 2), np.float32)}
    two = {"prob": np.ones((1, 2, 2), np.float32), "coarse_prob": np.zeros((1, 2, 2), np.float32)}
    out = average_probabilities([one, two])
    np.testing.assert_allclose(out["coarse_prob"], 0.5, atol=1e-7)
    wide = {"prob": np.ones((1, 2, 2), np.float32), "coarse_prob": np.zeros((18, 2, 2), np.float32)}
    assert set(average_probabilities([one, wide])) == {"prob"}

"""Flip TTA's prediction and its two halves from the same two model passes
(MaskPredictions.predict_with_halves), and scripts/predict.py predicting each view once with
tta_flip=true (issue 23's review-page flag used to cost two passes more)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from r2mfnet.errors import ConfigError
from r2mfnet.inference.predictor import Predictor
from tests.deploy._helpers import spine_image

THRESHOLD = {1: 0.5, 18: 0.95}
"""An untrained 18-class U-Net gives 1 - p(background) of 0.92-0.96: 0.95 splits its pixels, so
that its masks are neither empty nor full."""


def _unet(num_classes: int = 1) -> nn.Module:
    """A tiny untrained U-Net, as the predict tests' checkpoints (64 x 32 input)."""
    from r2mfnet.models import create

    torch.manual_seed(0)
    return create("unet", base_channels=4, depth=2, num_classes=num_classes)


def _predictor(model: nn.Module, tta: bool, threshold: float = 0.5, postprocess: bool = True) -> Predictor:
    return Predictor(model, (64, 32), device="cpu", tta_flip=tta, threshold=threshold, postprocess=postprocess)


class _ForwardCounter:
    """Counts the images the model is run on (a forward hook: every call, whoever makes it)."""

    def __init__(self, model: nn.Module) -> None:
        self.images = 0
        model.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple, output: object) -> None:
        self.images += int(args[0].shape[0])


@pytest.mark.parametrize("num_classes", [1, 18])
def test_prediction_and_halves_come_from_two_passes_and_equal_separate_predictions(num_classes):
    """128 x 64 -> 64 x 32: no padding, so the TTA's mirrored tensor is the mirror image's own
    letterbox and each half must be exactly the mask predicted on its own without TTA."""
    model = _unet(num_classes)
    threshold = THRESHOLD[num_classes]
    tta, plain_p = _predictor(model, True, threshold), _predictor(model, False, threshold)
    image = spine_image(128, 64, seed=1)
    counter = _ForwardCounter(model)
    prediction, (plain, mirrored) = tta.predict_with_halves(image, labels=num_classes > 1)
    assert counter.images == 2  # the image and its mirror: no third or fourth pass

    expected = tta.predict_label_maps([image])[0] if num_classes > 1 else tta.predict_mask(image)
    assert prediction.dtype == expected.dtype and np.array_equal(prediction, expected)  # the TTA path's own
    assert np.array_equal(plain, plain_p.predict_mask(image))
    assert np.array_equal(mirrored, plain_p.predict_mask(np.ascontiguousarray(image[:, ::-1]))[:, ::-1])
    assert plain.shape == image.shape and 0 < plain.sum() < plain.size  # neither empty nor full
    assert (plain != mirrored).any()  # two different passes, not one mask twice
    assert tta.tta_flip is True and plain_p.tta_flip is False


class _Pixelwise(nn.Module):
    """'Model' whose logits are the pixel's own brightness: a mirror image gets the mirrored output,
    so both halves of flip TTA must give the same mask wherever the letterbox pads."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": 20.0 * (x - 0.5)}


def test_mirrored_half_is_cropped_where_the_mirrored_content_sits():
    """200 x 90 -> 64 x 29 placed 1 px from the left and 2 px from the right: the mirrored pass's
    content starts 2 px from the left. Cropped at 1 px, its mask would sit about 3 image pixels
    (one model pixel, scale 0.32) off the plain one."""
    image = np.zeros((200, 90), np.uint8)
    image[20:180, 30:50] = 255  # a bright bar left of the centre
    p = _predictor(_Pixelwise(), True, postprocess=False)
    transform = p.letterbox.fit(image.shape)
    assert (transform.pad_left, transform.pad_right) == (1, 2)
    prediction, (plain, mirrored) = p.predict_with_halves(image)
    assert np.array_equal(plain, mirrored)
    assert np.array_equal(prediction, plain)
    columns = np.flatnonzero(plain.any(axis=0))
    assert abs(columns[0] - 30) <= 2 and abs(columns[-1] - 49) <= 2  # the bar, where it is


def test_halves_need_flip_tta():
    with pytest.raises(ConfigError, match="tta_flip=true"):
        _predictor(_unet(), False).predict_with_halves(spine_image(128, 64))


@pytest.mark.parametrize("num_classes", [1, 18])
def test_predict_runs_the_model_twice_per_view_and_writes_the_separate_halves_angles(
        tmp_path, monkeypatch, num_classes):
    """scripts/predict.py with tta_flip=true: two model passes per view (it was four), and each
    measured view's ``tta_halves`` are the angles of the masks predicted on their own without
    TTA (image sizes whose letterbox pads evenly or not at all)."""
    from r2mfnet.apps import predict as predict_app
    from r2mfnet.checkpoint import save_checkpoint
    from r2mfnet.config_dir import compose
    from r2mfnet.measure.review_flags import tta_halves_entry
    from tests.deploy._helpers import write_png

    model = _unet(num_classes)
    ckpt = tmp_path / "best.pt"
    save_checkpoint(ckpt, {"model_config": dict(model.model_config), "model": model.state_dict(),
                           "preprocess": {"input_size": [64, 32], "clahe": False}})
    images = {"P01": spine_image(150, 70, seed=1), "P02": spine_image(192, 96, seed=2),
              "P03": spine_image(128, 64, seed=3)}  # a folder: one case (one coronal view) per file
    for case, image in images.items():
        write_png(tmp_path / "in" / f"{case}.png", image)
    seen = []
    run_model = Predictor.run_model

    def counted(self, batch):
        seen.append(int(batch.shape[0]))
        return run_model(self, batch)

    monkeypatch.setattr(Predictor, "run_model", counted)
    out = tmp_path / "out"
    code = predict_app.run(compose("predict", [f"checkpoint={ckpt}", f"input={tmp_path / 'in'}",
                                               f"output_dir={out}", "tta_flip=true", "device=cpu",
                                               f"threshold={THRESHOLD[num_classes]}", "progress=false",
                                               "dicom_seg=false"]))
    assert code == 0
    assert sum(seen) == 2 * len(images)
    monkeypatch.undo()

    single = Predictor.from_checkpoint(str(ckpt), device="cpu", threshold=THRESHOLD[num_classes])
    entries = []
    for case, image in images.items():
        doc = json.loads((out / case / "measurements.json").read_text())
        entry = doc["views"]["coronal"]
        if entry["measured"]:
            alone = (single.predict_mask(image), single.predict_mask(np.ascontiguousarray(image[:, ::-1]))[:, ::-1])
            assert entry["tta_halves"] == tta_halves_entry(*alone, doc["tilt_method"])
            entries.append(entry["tta_halves"])
        else:
            assert "tta_halves" not in entry
    if num_classes == 1:  # the binary model's masks are measured: the comparison above ran
        assert len(entries) == 3 and all(e["plain_main_deg"] is not None for e in entries)

"""The two flip-TTA halves as masks (MaskPredictions.predict_mask_halves), with a fake model."""
from __future__ import annotations

import numpy as np

from r2mfnet.data.preprocess import Letterbox
from r2mfnet.inference.predictions import MaskPredictions


class EchoPredictions(MaskPredictions):
    """'Model': the image's brightness is the spine probability; records what it was shown."""

    def __init__(self) -> None:
        self.threshold, self.postprocess, self.cleanup, self.tta_flip = 0.5, False, None, True
        self.seen: list[tuple[np.ndarray, bool]] = []

    def model_probabilities(self, images, batch_size=4, coarse=False):
        for image in images:
            self.seen.append((np.asarray(image).copy(), self.tta_flip))
            transform = Letterbox(*image.shape).fit(image.shape)
            yield {"prob": (np.asarray(image, np.float32) / 255.0)[None]}, transform


def test_halves_are_predicted_without_tta_and_the_mirrored_one_is_mirrored_back():
    image = np.zeros((40, 20), np.uint8)
    image[5:30, 2:8] = 255  # a bar on the left
    p = EchoPredictions()
    plain, mirrored = p.predict_mask_halves(image)
    assert p.tta_flip is True  # restored
    assert [flag for _, flag in p.seen] == [False, False]  # each half without TTA
    assert (p.seen[1][0] == image[:, ::-1]).all()  # the second saw the mirror image
    assert (plain == (image > 127)).all() and (mirrored == plain).all()  # mirrored back

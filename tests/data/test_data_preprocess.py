"""Preprocessing: bit-depth independent normalisation, CLAHE, letterbox and its exact inverse."""
from __future__ import annotations

import numpy as np
import pytest

from r2mfnet.data.preprocess import Letterbox, clahe, normalize_intensity
from r2mfnet.errors import ConfigError


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_normalize_independent_of_bit_depth():
    rng = np.random.default_rng(0)
    base = rng.random((120, 80))
    base[0, 0], base[1, 1] = 50.0, -50.0  # outliers are clipped away
    a8 = np.round(np.clip(base, 0, 1) * 255)
    a16 = np.round(np.clip(base, 0, 1) * 65535)
    n8, n16 = normalize_intensity(a8), normalize_intensity(a16)
    assert n8.dtype == np.float32 and n8.min() == 0.0 and n8.max() == 1.0
    assert np.abs(n8 - n16).max() < 0.01
    c = normalize_intensity(np.full((5, 5), 3.0))
    assert (c == 0).all()
    with pytest.raises(ConfigError):
        normalize_intensity(a8, 90, 10)


def test_clahe_range_and_shape():
    rng = np.random.default_rng(1)
    img = (rng.random((64, 48)) * 0.3 + 0.2).astype(np.float32)
    out = clahe(img, clip_limit=2.0, tile_grid=4)
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0 and out.std() > img.std()


@pytest.mark.parametrize(
    "orig,target",
    [((2125, 755), (512, 256)), ((300, 900), (256, 128)), ((40, 30), (256, 128)), ((128, 64), (256, 128)),
     ((997, 1), (64, 64))],
)
def test_letterbox_geometry_and_inverse(orig, target):
    lb = Letterbox(*target)
    tf = lb.fit(orig)
    h, w = orig
    H, W = target
    assert tf.original_hw == orig and tf.target_hw == target
    nh, nw = tf.resized_hw
    assert (nh == H or nw == W) and nh <= H and nw <= W
    assert tf.pad_top + nh + tf.pad_bottom == H and tf.pad_left + nw + tf.pad_right == W
    assert abs(tf.pad_top - tf.pad_bottom) <= 1 and abs(tf.pad_left - tf.pad_right) <= 1
    # aspect ratio kept to within rounding
    assert abs(nh / h - nw / w) <= 1.0 / min(h, w) + 1.0 / min(nh, nw)

    yy, xx = np.mgrid[:h, :w]
    mask = ((yy - h * 0.5) / (h * 0.35)) ** 2 + ((xx - w * 0.5) / max(w * 0.3, 1)) ** 2 < 1
    if mask.sum() < 50:
        return
    m_model = tf.apply_mask(mask)
    assert m_model.shape == target and m_model.dtype == bool
    assert not m_model[: tf.pad_top].any() and not m_model[:, : tf.pad_left].any()
    back = tf.invert(m_model)
    assert back.shape == orig and back.dtype == bool
    assert dice(back, mask) > 0.98
    prob = tf.invert(m_model.astype(np.float32))
    assert prob.shape == orig and prob.dtype == np.float32
    assert dice(prob > 0.5, mask) > 0.98


def test_apply_image_padding_and_interpolation():
    tf = Letterbox(64, 64).fit((100, 50))
    img = np.ones((100, 50), np.float32)
    out = tf.apply_image(img)
    assert out.shape == (64, 64) and out.dtype == np.float32
    assert out[:, : tf.pad_left].max() == 0 and out[:, tf.pad_left + tf.resized_hw[1] :].max() == 0
    assert np.allclose(out[:, tf.pad_left : tf.pad_left + tf.resized_hw[1]], 1.0)
    with pytest.raises(ValueError):
        tf.apply_image(np.ones((10, 10)))
    with pytest.raises(ValueError):
        tf.invert(np.ones((10, 10)))


def test_points_map_back():
    tf = Letterbox(256, 128).fit((2125, 755))
    rng = np.random.default_rng(3)
    pts = rng.random((50, 2)) * [754, 2124]
    fwd = tf.map_points(pts)
    assert (fwd[:, 0] >= tf.pad_left - 0.5).all() and (fwd[:, 0] <= tf.pad_left + tf.resized_hw[1] - 0.5).all()
    np.testing.assert_allclose(tf.invert_points(fwd), pts, atol=1e-9)
    # a point marked in the model image lands on the same structure in the original
    mask = np.zeros((2125, 755), bool)
    mask[1000:1100, 300:400] = True
    m = tf.apply_mask(mask)
    ys, xs = np.nonzero(m)
    centre_model = np.array([xs.mean(), ys.mean()])
    np.testing.assert_allclose(tf.invert_points(centre_model), [349.5, 1049.5], atol=tf.original_hw[0] / 256)


def test_letterbox_rejects_bad_size():
    with pytest.raises(ConfigError):
        Letterbox(0, 10)
    with pytest.raises(ConfigError):
        Letterbox("a", 10)

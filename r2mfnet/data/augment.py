"""Training-time augmentation (albumentations), seeded per item so training is reproducible.

:func:`build_augmentation` turns a flat config mapping (from Hydra or a dict) into an
:class:`Augmenter`; every key is optional and unknown keys raise :class:`ConfigError`:

======================  ===============  =====================================================
key                     default          meaning
======================  ===============  =====================================================
enabled                 true             false -> ``build_augmentation`` returns None
hflip_p                 0.5              horizontal flip; left/right-bending labels swap
affine_p                0.7              probability of the affine transform below
scale                   [0.9, 1.1]       zoom range
translate               0.05             max shift, fraction of the image size
rotate                  10.0             max rotation, degrees (symmetric)
elastic_p               0.1              mild elastic deformation
elastic_alpha           120.0            elastic magnitude (about 1 px mean displacement)
elastic_sigma           8.0              elastic smoothness (pixels)
grid_p                  0.1              grid distortion
grid_distort            0.1              grid distortion limit (fraction of a cell)
brightness_contrast_p   0.5              random brightness/contrast
brightness              0.15             max brightness change (fraction of the range)
contrast                0.15             max contrast change (fraction)
gamma_p                 0.3              random gamma
gamma                   [0.8, 1.25]      gamma range
noise_p                 0.3              additive Gaussian noise
noise_std               [0.01, 0.04]     noise standard deviation range (image range is [0,1])
blur_p                  0.2              Gaussian blur
blur_sigma              [0.3, 1.0]       blur sigma range (pixels)
======================  ===============  =====================================================

Randomness never comes from global state: each call takes ``seed`` (the dataset derives it from
``(seed, epoch, index)``) or ``rng``; the albumentations pipeline is re-seeded per call.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from r2mfnet.data.views import MIRRORED_VIEW
from r2mfnet.errors import ConfigError

__all__ = ["AUGMENT_DEFAULTS", "Augmenter", "build_augmentation"]


def _albumentations():
    """The albumentations module, imported with its update check off.

    albumentations otherwise asks the network for a newer version on import (none of our machines
    has internet, and a run must not depend on it); ``NO_ALBUMENTATIONS_UPDATE`` is its switch and
    has to be set before the first import, which is here and nowhere else in r2mfnet.
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import albumentations

    return albumentations

AUGMENT_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "hflip_p": 0.5,
    "affine_p": 0.7,
    "scale": (0.9, 1.1),
    "translate": 0.05,
    "rotate": 10.0,
    "elastic_p": 0.1,
    "elastic_alpha": 120.0,
    "elastic_sigma": 8.0,
    "grid_p": 0.1,
    "grid_distort": 0.1,
    "brightness_contrast_p": 0.5,
    "brightness": 0.15,
    "contrast": 0.15,
    "gamma_p": 0.3,
    "gamma": (0.8, 1.25),
    "noise_p": 0.3,
    "noise_std": (0.01, 0.04),
    "blur_p": 0.2,
    "blur_sigma": (0.3, 1.0),
}

_RANGE_KEYS = {"scale", "gamma", "noise_std", "blur_sigma"}


def _number(key: str, value: Any, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"augment.{key}: expected a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        bounds = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise ConfigError(f"augment.{key}: {value!r} is outside {bounds}")
    return v


def _range(key: str, value: Any, lo: float, hi: float | None = None) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"augment.{key}: expected a [min, max] pair, got {value!r}")
    items = list(value)
    if len(items) != 2:
        raise ConfigError(f"augment.{key}: expected a [min, max] pair, got {value!r}")
    a, b = (_number(key, x, lo, hi) for x in items)
    if a > b:
        raise ConfigError(f"augment.{key}: min {a} is larger than max {b}")
    return a, b


def _resolve_cfg(cfg: Mapping | None) -> dict[str, Any]:
    out = dict(AUGMENT_DEFAULTS)
    if cfg is None:
        return out
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"augment: expected a mapping of options, got {type(cfg).__name__}")
    for key in cfg:
        if key not in AUGMENT_DEFAULTS:
            raise ConfigError(
                f"augment: unknown key '{key}'; allowed keys: {', '.join(AUGMENT_DEFAULTS)}"
            )
    for key in cfg:
        value = cfg[key]
        if key == "enabled":
            if not isinstance(value, bool):
                raise ConfigError(f"augment.enabled: expected true or false, got {value!r}")
            out[key] = value
        elif key.endswith("_p"):
            out[key] = _number(key, value, 0.0, 1.0)
        elif key in _RANGE_KEYS:
            lo = {"scale": 0.1, "gamma": 0.05, "noise_std": 0.0, "blur_sigma": 0.0}[key]
            hi = {"scale": 10.0, "gamma": 20.0, "noise_std": 1.0, "blur_sigma": 50.0}[key]
            out[key] = _range(key, value, lo, hi)
        elif key == "translate":
            out[key] = _number(key, value, 0.0, 0.5)
        elif key == "rotate":
            out[key] = _number(key, value, 0.0, 180.0)
        elif key in ("brightness", "contrast"):
            out[key] = _number(key, value, 0.0, 1.0)
        elif key == "grid_distort":
            out[key] = _number(key, value, 0.0, 0.9)
        else:  # elastic_alpha, elastic_sigma
            out[key] = _number(key, value, 0.0, 1000.0)
    return out


class Augmenter:
    """Callable ``(image, mask, view) -> (image, mask, view)`` on a [0,1] float image and a binary
    mask of the same size. Geometry is applied identically to both (mask: nearest neighbour, so it
    stays binary); a horizontal flip swaps the bending views via ``MIRRORED_VIEW``.
    """

    def __init__(self, cfg: Mapping | None = None, seed: int = 0):
        self.cfg = _resolve_cfg(cfg)
        self._rng = np.random.default_rng(seed)
        self._compose = self._build()

    def __repr__(self) -> str:
        return f"Augmenter({self.cfg})"

    def _build(self):
        import cv2

        A = _albumentations()

        c = self.cfg
        ts = []
        if c["affine_p"] > 0:
            ts.append(
                A.Affine(
                    scale=tuple(c["scale"]),
                    translate_percent=(-c["translate"], c["translate"]),
                    rotate=(-c["rotate"], c["rotate"]),
                    interpolation=cv2.INTER_LINEAR,
                    mask_interpolation=cv2.INTER_NEAREST,
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    fill_mask=0,
                    p=c["affine_p"],
                )
            )
        if c["elastic_p"] > 0:
            ts.append(
                A.ElasticTransform(
                    alpha=c["elastic_alpha"],
                    sigma=max(c["elastic_sigma"], 1e-3),
                    interpolation=cv2.INTER_LINEAR,
                    mask_interpolation=cv2.INTER_NEAREST,
                    border_mode=cv2.BORDER_CONSTANT,
                    p=c["elastic_p"],
                )
            )
        if c["grid_p"] > 0:
            ts.append(
                A.GridDistortion(
                    num_steps=5,
                    distort_limit=(-c["grid_distort"], c["grid_distort"]),
                    interpolation=cv2.INTER_LINEAR,
                    mask_interpolation=cv2.INTER_NEAREST,
                    border_mode=cv2.BORDER_CONSTANT,
                    p=c["grid_p"],
                )
            )
        if c["brightness_contrast_p"] > 0:
            ts.append(
                A.RandomBrightnessContrast(
                    brightness_limit=(-c["brightness"], c["brightness"]),
                    contrast_limit=(-c["contrast"], c["contrast"]),
                    p=c["brightness_contrast_p"],
                )
            )
        if c["gamma_p"] > 0:
            g0, g1 = c["gamma"]
            ts.append(A.RandomGamma(gamma_limit=(g0 * 100.0, g1 * 100.0), p=c["gamma_p"]))
        if c["noise_p"] > 0:
            ts.append(A.GaussNoise(std_range=tuple(c["noise_std"]), p=c["noise_p"]))
        if c["blur_p"] > 0:
            s0, s1 = c["blur_sigma"]
            ts.append(A.GaussianBlur(blur_limit=0, sigma_limit=(max(s0, 1e-3), max(s1, 1e-3)), p=c["blur_p"]))
        return A.Compose(ts, seed=0) if ts else None

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        view: str,
        *,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, str]:
        """Augment one view. Same ``seed`` -> same output; without ``seed``/``rng`` the
        augmenter's own generator (seeded at construction) is used."""
        img, m, _labels, view = self._apply(image, mask, None, view, seed, rng)
        return img, m, view

    def with_labels(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        labels: np.ndarray,
        view: str,
        *,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, str]:
        """As ``__call__``, plus an integer label map (vertebra classes) moved with the same
        geometry (nearest neighbour, values kept). Image, mask and view come out exactly as
        ``__call__`` gives them for the same seed. A flip mirrors the map but keeps its classes
        (T1 stays T1)."""
        return self._apply(image, mask, labels, view, seed, rng)

    def _apply(self, image, mask, labels, view, seed, rng):
        if seed is not None:
            gen = np.random.default_rng(int(seed) & 0xFFFFFFFFFFFFFFFF)
        elif rng is not None:
            gen = rng
        else:
            gen = self._rng
        flip = bool(gen.random() < self.cfg["hflip_p"])
        inner_seed = int(gen.integers(0, 2**31 - 1))

        img = np.ascontiguousarray(image, dtype=np.float32)
        if img.ndim != 2:
            raise ValueError(f"Augmenter expects a 2-D image, got shape {img.shape}")
        m = None
        if mask is not None:
            m = np.asarray(mask)
            if m.shape != img.shape:
                raise ValueError(f"Augmenter: mask shape {m.shape} differs from image {img.shape}")
            m = np.ascontiguousarray(m > 0.5 if m.dtype != np.bool_ else m, dtype=np.uint8)
        lab = None
        if labels is not None:
            lab = np.asarray(labels)
            if lab.shape != img.shape:
                raise ValueError(f"Augmenter: labels shape {lab.shape} differs from image {img.shape}")
            lab = np.ascontiguousarray(lab, dtype=np.uint8)
        if flip:
            img = np.ascontiguousarray(img[:, ::-1])
            if m is not None:
                m = np.ascontiguousarray(m[:, ::-1])
            if lab is not None:
                lab = np.ascontiguousarray(lab[:, ::-1])
            view = MIRRORED_VIEW.get(view, view)
        if self._compose is not None:
            self._compose.set_random_seed(inner_seed)
            if lab is not None:
                extra = {"mask": m} if m is not None else {}
                out = self._compose(image=img, masks=[lab], **extra)
                lab = np.asarray(out["masks"][0])
                if m is not None:
                    m = out["mask"]
            elif m is not None:
                out = self._compose(image=img, mask=m)
                m = out["mask"]
            else:
                out = self._compose(image=img)
            img = out["image"]
        img = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        if img.ndim == 3:
            img = img[:, :, 0]
        if m is not None:
            m = np.asarray(m)
            if m.ndim == 3:
                m = m[:, :, 0]
            m = m > 0
        if lab is not None:
            lab = np.ascontiguousarray(lab[:, :, 0] if lab.ndim == 3 else lab, dtype=np.uint8)
        return np.ascontiguousarray(img), m, lab, view


def build_augmentation(cfg: Mapping | None, seed: int = 0) -> Augmenter | None:
    """``None`` or ``{"enabled": false}`` -> None (no augmentation); otherwise an Augmenter.

    ``cfg`` may be a dict or an OmegaConf ``DictConfig``; keys are validated here, at start-up.
    An empty mapping ``{}`` gives the defaults.
    """
    if cfg is None:
        return None
    if not isinstance(cfg, Mapping):
        # OmegaConf containers are Mappings; anything else is a config mistake
        raise ConfigError(f"augment: expected a mapping of options or null, got {type(cfg).__name__}")
    resolved = _resolve_cfg(cfg)
    if not resolved["enabled"]:
        return None
    return Augmenter(cfg, seed=seed)

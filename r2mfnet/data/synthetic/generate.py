"""Generate a synthetic multi-view data set as a manifest folder, and cache it by parameters.

Layout written under ``output_dir``::

    images/<case>_<view>.png     16-bit grayscale radiograph (bone bright)
    masks/<case>_<view>.png      uint8 0/255 vertebral bodies T1-L5
    landmarks/<case>_<view>.json {"levels", "corners" (17x4x2, TL,TR,BL,BR, pixel x,y), "cobb_deg"}
    cases.json                   per case: curve type, curves, apex levels, Cobb per view, ...
    manifest.csv                 case_id,view,image,mask,quality,split,pixel_spacing_mm,landmarks,patient_id

Choices: images are 16-bit PNGs (like raw detector data: full-range values with a per-image black
level of 300-3000 and white level of 48000-64000, bone bright as in MONOCHROME2), so loaders must
normalise by percentiles rather than divide by 255. The pixel spacing (same in the three views of
a case) is the patient's T1-L5 length in mm (about 370-470 mm) over its length in pixels, which
is 56-66 % of the image height: about 1.1-1.6 mm/pixel at 512 x 256. Landmarks use OpenCV's
convention (pixel centres at integer coordinates). The patient's right is shown on the image
left, as radiographs are read.

Every case draws its randomness from ``SeedSequence([seed, case_index])``, so case ``i`` is the
same whatever ``num_cases`` is and whichever worker renders it; the output is byte-identical for
a given seed and size.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from r2mfnet.atomic import atomic_write_json
from r2mfnet.data.manifest import COLUMNS, ViewRecord, write_manifest
from r2mfnet.data.synthetic.patient import sample_patient
from r2mfnet.data.synthetic.quality import DEFAULT_QUALITY_WEIGHTS
from r2mfnet.data.synthetic.render import rasterize_mask, render_view, to_uint16
from r2mfnet.data.synthetic.pose import apex_index, curve_cobb_deg, view_geometry
from r2mfnet.data.views import LEVELS, QUALITIES, VIEWS
from r2mfnet.errors import ConfigError, DataError
from r2mfnet.geometry import cobb_from_landmarks

GENERATOR_VERSION = 1
"""Bump when the generator's output changes, so that cached data sets are regenerated."""

MANIFEST_COLUMNS = COLUMNS
"""The manifest columns (:data:`r2mfnet.data.manifest.COLUMNS`; the generator fills all of them)."""
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]


def case_id(index: int) -> str:
    """Stable case name for a case index."""
    return f"syn{index:05d}"


def _check_params(num_cases: int, image_height: int, image_width: int,
                  quality_weights: Sequence[float]) -> np.ndarray:
    if isinstance(num_cases, bool) or not isinstance(num_cases, (int, np.integer)) or num_cases < 1:
        raise ConfigError(f"num_cases must be a positive integer, got {num_cases!r}")
    for name, v in (("image_height", image_height), ("image_width", image_width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 32:
            raise ConfigError(f"{name} must be an integer >= 32, got {v!r}")
    ratio = image_width / image_height
    if not 0.3 <= ratio <= 1.5:
        raise ConfigError(f"image_width / image_height must lie in [0.3, 1.5] for a full-spine "
                          f"field of view, got {image_width}/{image_height} = {ratio:.2f}")
    w = np.asarray(quality_weights, dtype=np.float64)
    if w.shape != (len(QUALITIES),) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"quality_weights must be {len(QUALITIES)} non-negative numbers "
                          f"(for {', '.join(QUALITIES)}) with a positive sum, got {quality_weights!r}")
    return w / w.sum()


def _round_corners(corners: np.ndarray) -> list:
    return np.round(corners, 3).tolist()


def generate_case(index: int, seed: int, image_height: int, image_width: int,
                  quality_weights: Sequence[float] = DEFAULT_QUALITY_WEIGHTS) -> dict[str, Any]:
    """Render one case in all views (in memory).

    Returns ``{"case_id", "record" (cases.json entry), "views": {view: {"image" uint16,
    "mask" uint8, "corners" list, "cobb_deg" float}}}``.
    """
    weights = _check_params(1, image_height, image_width, quality_weights)
    ss = np.random.SeedSequence([int(seed), int(index)])
    patient_ss, *view_ss = ss.spawn(1 + len(VIEWS))
    rng = np.random.default_rng(patient_ss)
    quality = str(QUALITIES[int(rng.choice(len(QUALITIES), p=weights))])
    patient = sample_patient(rng, quality)
    cid = case_id(index)
    views: dict[str, dict[str, Any]] = {}
    curve_cobbs: list[dict[str, float]] = [{} for _ in patient.curves]
    apexes: list[str] = []
    spacing = None
    for view, vss in zip(VIEWS, view_ss):
        g = view_geometry(patient, view, (image_height, image_width))
        vrng = np.random.default_rng(vss)
        img = render_view(patient, g, vrng)
        corners = _round_corners(g.corners)
        arr = np.asarray(corners)
        cobb = cobb_from_landmarks(arr)[0]
        views[view] = {"image": to_uint16(img, vrng), "mask": rasterize_mask(arr, g.image_hw),
                       "corners": corners, "cobb_deg": round(float(cobb), 3)}
        for ci, c in enumerate(patient.curves):
            curve_cobbs[ci][view] = round(curve_cobb_deg(arr, c.upper, c.lower), 3)
        if view == "coronal":
            spacing = round(1.0 / g.px_per_mm, 4)
            apexes = [LEVELS[apex_index(arr.mean(axis=1), c.upper, c.lower)] for c in patient.curves]
    curves = []
    for ci, c in enumerate(patient.curves):
        curves.append({
            "region": c.region, "convexity": c.convexity,
            "upper_end": LEVELS[c.upper], "lower_end": LEVELS[c.lower], "apex": apexes[ci],
            "requested_cobb_deg": round(c.cobb_deg, 3), "flexibility": round(c.flexibility, 4),
            "cobb_deg": curve_cobbs[ci],
        })
    record = {
        "case_id": cid, "patient_id": cid, "quality": quality, "curve_type": patient.curve_type,
        "main_curve": patient.main_curve, "apex_levels": apexes,
        "requested_cobb_deg": round(patient.curves[patient.main_curve].cobb_deg, 3),
        "cobb_deg": {v: views[v]["cobb_deg"] for v in VIEWS},
        "pixel_spacing_mm": spacing, "curves": curves,
    }
    return {"case_id": cid, "record": record, "views": views}


def _write_case(output_dir: Path, case: dict[str, Any]) -> dict[str, Any]:
    cid = case["case_id"]
    for view, v in case["views"].items():
        name = f"{cid}_{view}"
        if not cv2.imwrite(str(output_dir / "images" / f"{name}.png"), v["image"], _PNG_PARAMS):
            raise DataError("could not write image", path=output_dir / "images" / f"{name}.png")
        if not cv2.imwrite(str(output_dir / "masks" / f"{name}.png"), v["mask"], _PNG_PARAMS):
            raise DataError("could not write mask", path=output_dir / "masks" / f"{name}.png")
        lm = {"levels": list(LEVELS), "corners": v["corners"], "cobb_deg": v["cobb_deg"]}
        (output_dir / "landmarks" / f"{name}.json").write_text(json.dumps(lm) + "\n", encoding="utf-8")
    return case["record"]


def _work(args: tuple) -> dict[str, Any]:
    output_dir, index, seed, h, w, weights = args
    return _write_case(Path(output_dir), generate_case(index, seed, h, w, weights))


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe


def _auto_workers(num_cases: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    return 0 if num_cases < 16 or cores < 2 else min(cores, 8)


def generate_dataset(output_dir: str | Path, num_cases: int, seed: int = 0, image_height: int = 512,
                     image_width: int = 256,
                     quality_weights: Sequence[float] = DEFAULT_QUALITY_WEIGHTS,
                     num_workers: int | None = None) -> Path:
    """Write ``num_cases`` synthetic cases (3 views each) into ``output_dir``; return the manifest.

    ``num_workers``: processes to render with (``None``: all available cores for 16 cases or
    more, else in-process; ``0``: in-process). The output does not depend on it.
    """
    weights = _check_params(num_cases, image_height, image_width, quality_weights)
    out = Path(output_dir)
    for sub in ("images", "masks", "landmarks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    workers = _auto_workers(num_cases) if num_workers is None else int(num_workers)
    jobs = [(str(out), i, int(seed), int(image_height), int(image_width), tuple(weights.tolist()))
            for i in range(num_cases)]
    if workers <= 1:
        _init_worker()
        records = [_work(j) for j in jobs]
    else:
        # "spawn": safe even when the caller has torch or OpenCV threads running.
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=_init_worker) as pool:
            records = list(pool.map(_work, jobs, chunksize=max(1, num_cases // (8 * workers))))
    params = {"num_cases": num_cases, "seed": int(seed), "image_height": int(image_height),
              "image_width": int(image_width), "quality_weights": [round(float(x), 6) for x in weights]}
    atomic_write_json(out / "cases.json", {"generator": "r2mfnet.data.synthetic",
                                           "version": GENERATOR_VERSION, "params": params,
                                           "cases": records})
    rows = [ViewRecord(case_id=rec["case_id"], view=view,
                       image=out / "images" / f"{rec['case_id']}_{view}.png",
                       mask=out / "masks" / f"{rec['case_id']}_{view}.png",
                       quality=rec["quality"], split=None,
                       pixel_spacing_mm=rec["pixel_spacing_mm"],
                       landmarks=out / "landmarks" / f"{rec['case_id']}_{view}.json",
                       patient_id=rec["patient_id"])
            for rec in records for view in VIEWS]
    return write_manifest(rows, out / "manifest.csv", explicit_patient_id=True)


def dataset_key(num_cases: int, seed: int, image_height: int, image_width: int,
                quality_weights: Sequence[float] = DEFAULT_QUALITY_WEIGHTS) -> str:
    """Folder name for a parameter set: readable prefix plus a hash of everything that matters."""
    weights = _check_params(num_cases, image_height, image_width, quality_weights)
    params = {"version": GENERATOR_VERSION, "num_cases": int(num_cases), "seed": int(seed),
              "image_height": int(image_height), "image_width": int(image_width),
              "quality_weights": [round(float(x), 6) for x in weights]}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return f"synthetic_{image_height}x{image_width}_n{num_cases}_s{seed}_{digest}"


def ensure_dataset(cache_dir: str | Path, num_cases: int = 200, seed: int = 0, image_height: int = 512,
                   image_width: int = 256,
                   quality_weights: Sequence[float] = DEFAULT_QUALITY_WEIGHTS,
                   num_workers: int | None = None) -> Path:
    """Return the manifest of the cached data set for these parameters, generating it once.

    Generation happens in a temporary sibling folder that is renamed into place only when
    complete, so an interrupted run is never mistaken for a finished one (its leftovers start
    with ``.tmp_`` and can be deleted). Concurrent callers both generate; the first rename wins.
    """
    cache = Path(cache_dir)
    final = cache / dataset_key(num_cases, seed, image_height, image_width, quality_weights)
    manifest = final / "manifest.csv"
    if manifest.is_file():
        return manifest
    if final.exists():
        raise DataError("cached synthetic data set folder exists but has no manifest.csv; delete "
                        "the folder to regenerate it", path=final)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".tmp_{final.name}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        generate_dataset(tmp, num_cases, seed, image_height, image_width, quality_weights, num_workers)
        try:
            os.rename(tmp, final)
        except OSError:
            if not manifest.is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest

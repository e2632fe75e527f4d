"""SpineWeb16 for the Cobb evaluation: its images, its standard mask sources, its harness.

The images are the prepared manifest's radiographs with the experts' ``angles.csv`` triple
(stored in each landmarks JSON as ``cobb_angles_deg``); the sources are the landmarks, the
ground-truth masks (at full resolution and through a model's input size), the ground-truth
vertebra label maps, and a predictor's masks or label maps. :func:`evaluate_spineweb16` is the
harness of ``r2mfnet-evaluate-cobb dataset=spineweb16``; definitions of the angles and rows in
:mod:`r2mfnet.measure.angle_stats` and ``docs/clinical.md``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from r2mfnet.errors import ConfigError, DataError
from r2mfnet.evaluation.cobb_harness import (Image, Source, ensemble_words, evaluate_sources,
                                             merged_split_words, rows_markdown, source_rows)

if TYPE_CHECKING:  # only for the type hints: the refiner is loaded by the apps
    from r2mfnet.inference.corner_refiner import CornerRefiner

SPLITS = ("train", "val", "test", "all")

REFERENCE_TOLERANCE_DEG = 5.0
"""An ``angles.csv`` angle 1 further than this from the same rule on the image's own landmarks
(corners in a consistent order) is a reference artefact, not an expert disagreement."""


# ----------------------------------------------------------------------------- images
def checkpoint_split_ids(checkpoint: str | Path, records: Sequence[Any], split: str
                         ) -> tuple[set[str] | None, str]:
    """Case ids of the checkpoint's own ``split`` (``train``/``val``/``test``) of SpineWeb16.

    The patient-level split (and a k-fold run's fold) is recomputed from the data config stored in
    the checkpoint (:func:`r2mfnet.data.splits.stored_split`); ``None`` when the checkpoint was
    trained on other data (then every image is unseen by it).
    """
    from r2mfnet.checkpoint import load_checkpoint
    from r2mfnet.data.splits import stored_split

    data = (load_checkpoint(Path(checkpoint)).get("config") or {}).get("data") or {}
    if data.get("source") != "spineweb16":
        return None, f"checkpoint trained on '{data.get('source', 'unknown')}': all images unseen"
    parts = stored_split(records, data.get("split") or {})
    ids = {r.case_id for r in parts[split]}
    return ids, f"the checkpoint's own {split} split ({len(ids)} images)"


def check_ensemble_split(manifest: str | Path, checkpoint: str | Path, members: Sequence[str | Path],
                         split: str) -> None:
    """Refuse an ensemble member trained on SpineWeb16 that does not hold out the same ``split``
    (``val``/``test``) images as ``checkpoint``: the evaluated images are the primary's held-out
    ones (:func:`checkpoint_split_ids`; all images when the primary was trained on other data), and
    such a member may have trained on them, which would flatter the ensemble. A member trained on
    other data saw none of them. One-line :class:`ConfigError` naming the member."""
    if split not in ("val", "test") or not members:
        return  # train: seen anyway; all: said to include seen images
    from r2mfnet.data.manifest import load_manifest

    records = load_manifest(manifest, check_images=False)
    held_out, _ = checkpoint_split_ids(checkpoint, records, split)
    for member in members:
        ids, _ = checkpoint_split_ids(member, records, split)  # None: trained on other data
        if ids is not None and ids != held_out:
            raise ConfigError(f"ensemble member '{member}' does not hold out the same {split} images as "
                              f"checkpoint '{checkpoint}' (it may have trained on the evaluated ones); "
                              "use members trained on the same data split")


def spineweb16_images(manifest: str | Path, every: int = 1, limit: int | None = None,
                      checkpoint: str | Path | None = None, split: str = "all"
                      ) -> tuple[list[Image], str | None]:
    """The manifest's images with expert angles: every ``every``-th, the first ``limit``, and,
    given a checkpoint and ``split`` other than ``all``, only that split's patients."""
    from r2mfnet.data.io import image_shape
    from r2mfnet.data.manifest import load_manifest

    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got '{split}'", path=manifest)
    records_all = load_manifest(manifest, check_images=False)
    records = [r for r in records_all if r.landmarks is not None][:: max(1, int(every))]
    note = None
    if split != "all":
        if checkpoint is None:
            raise DataError(f"split={split} needs the checkpoint whose split it is", path=manifest)
        ids, note = checkpoint_split_ids(checkpoint, records_all, split)
        if ids is not None:
            records = [r for r in records if r.case_id in ids]
    elif checkpoint is not None:
        note = "all images (split=all: some may have been seen in training)"
    if limit is not None:
        records = records[: int(limit)]
    images = []
    for rec in records:
        ref = json.loads(Path(rec.landmarks).read_text(encoding="utf-8")).get("cobb_angles_deg")
        if ref is not None:
            images.append(Image(rec.case_id, Path(rec.image), tuple(float(x) for x in ref),
                                tuple(image_shape(rec.image)[:2]), rec.mask, rec.landmarks, rec.view))
    if not images:
        raise DataError("no image of the selection has expert angles (cobb_angles_deg)", path=manifest)
    return images, note


# ----------------------------------------------------------------------------- sources
def raw_image(image: Image, memo: dict) -> np.ndarray:
    """The radiograph's pixels, read once per image."""
    from r2mfnet.data.io import read_image

    if "image" not in memo:
        memo["image"] = read_image(image.image).array
    return memo["image"]


def gt_mask(image: Image, memo: dict) -> np.ndarray | None:
    """The ground-truth binary mask, read once per image (``None`` without one)."""
    from r2mfnet.data.io import read_mask

    if "gt_mask" not in memo:
        memo["gt_mask"] = None if image.mask is None else read_mask(image.mask)
    return memo["gt_mask"]


def gt_labels(image: Image, memo: dict) -> np.ndarray:
    """The ground-truth vertebra label map painted from the landmarks, once per image."""
    from r2mfnet.data.labels import read_label_map

    if "gt_labels" not in memo:
        memo["gt_labels"] = read_label_map(image.landmarks, image.shape)
    return memo["gt_labels"]


def landmark_sources(root: str | Path | None) -> list[Source]:
    """The AASCE rule on the landmarks: prepared (corners reordered) and, given the original
    folder, in the label files' own order (which reproduces ``angles.csv``)."""
    from r2mfnet.measure.aasce import aasce_angles_from_landmarks

    def prepared(image: Image, memo: dict) -> Any:
        corners = np.asarray(json.loads(Path(image.landmarks).read_text(encoding="utf-8"))["corners"])
        return aasce_angles_from_landmarks(corners, image.shape[0])

    def file_order(image: Image, memo: dict) -> Any:
        from r2mfnet.data.spineweb16 import read_quadrilaterals

        mat = Path(root) / "labels" / (image.image.name + ".mat")  # type: ignore[arg-type]
        return aasce_angles_from_landmarks(read_quadrilaterals(mat), image.shape[0]) if mat.is_file() else None

    sources = [Source("landmarks/prepared", "angles", prepared, "landmarks (prepared, reordered)")]
    if root is not None:
        sources.insert(0, Source("landmarks/file_order", "angles", file_order, "landmarks (label files' order)"))
    return sources


def gt_at_size(size: Sequence[int]) -> Source:
    """The ground-truth mask letterboxed to ``size`` (a model's input) and mapped back: what a
    perfect model at that input size would hand the measurement."""
    from r2mfnet.data.preprocess import Letterbox

    h, w = int(size[0]), int(size[1])

    def get(image: Image, memo: dict) -> np.ndarray | None:
        gt = gt_mask(image, memo)
        if gt is None:
            return None
        box = Letterbox(h, w).fit(gt)
        return box.invert(box.apply_mask(gt))

    return Source(f"gt@{h}x{w}", "mask", get, f"ground truth through {h}x{w}")


def predicted_mask(predictor: Any, key: str = "pred_mask") -> Callable[[Image, dict], np.ndarray]:
    """``get`` of the predicted binary mask, predicted once per image and kept in the memo under
    ``key`` (shared by the repairs; another predictor of the same image needs another key)."""
    def get(image: Image, memo: dict) -> np.ndarray:
        if key not in memo:
            memo[key] = np.asarray(predictor.predict_mask(raw_image(image, memo)), dtype=bool)
        return memo[key]

    return get


def mask_sources(predictor: Any = None, gt_at: Sequence[int] | None = None,
                 gt_name: str = "gt", pred_name: str = "pred", corners: CornerRefiner | None = None) -> list[Source]:
    """Ground-truth masks, optionally through an input size, optionally a predictor's masks, and
    with a corner refiner (:class:`~r2mfnet.inference.corner_refiner.CornerRefiner`) the same
    predicted masks with their tilts read by it (row ``pred_corners``), side by side."""
    sources = [Source(gt_name, "mask", gt_mask, "ground-truth masks")]
    if gt_at is not None:
        sources.append(gt_at_size(gt_at))
    if predictor is not None:
        sources.append(Source(pred_name, "mask", predicted_mask(predictor), "predicted masks"))
        if corners is not None:
            sources.append(Source(f"{pred_name}_corners", "mask", predicted_mask(predictor),
                                  "predicted masks, tilts from the corner network",
                                  refine=corner_refine(corners)))
    return sources


def corner_refine(refiner: CornerRefiner) -> Callable[[Image, dict], Callable]:
    """The :attr:`Source.refine` of a corner refiner: it reads each image's radiograph."""
    return lambda image, memo: refiner.for_image(raw_image(image, memo))


# ----------------------------------------------------------------------------- harness
def summarize(per_image: Sequence[dict[str, Any]], keys: Sequence[str], sources: Sequence[Source]
              ) -> dict[str, Any]:
    """Rows on all images and on reference-consistent ones, and the reference artefacts.

    ``angles.csv`` was computed by the challenge script from the label files as they are; where a
    vertebra's corners are listed in another order its angle 1 is nonsense (one image of the
    release: 156 degrees). Such images, whose ``angles.csv`` angle 1 differs by more than
    :data:`REFERENCE_TOLERANCE_DEG` from the rule on the same landmarks in a consistent corner
    order (``landmarks/prepared``), are left out of ``rows_consistent``.
    """
    artefacts = [r["case_id"] for r in per_image
                 if r["measured"].get("landmarks/prepared") is not None
                 and abs(r["measured"]["landmarks/prepared"][0] - r["reference"][0]) > REFERENCE_TOLERANCE_DEG]
    consistent = [r for r in per_image if r["case_id"] not in set(artefacts)]
    return {"rows": source_rows(per_image, keys, sources),
            "rows_consistent": source_rows(consistent, keys, sources),
            "reference_artefacts": artefacts}


def evaluate_spineweb16(
    manifest: str | Path,
    root: str | Path | None = None,
    predictor: Any = None,
    checkpoint: str | Path | None = None,
    split: str = "test",
    methods: Sequence[str] = ("vertebrae", "centreline"),
    every: int = 1,
    limit: int | None = None,
    progress: bool = True,
    gt_at: Sequence[int] | None = None,
    merged_split: str = "centreline",
    corners: CornerRefiner | None = None,
) -> dict[str, Any]:
    """Angles from landmarks, ground-truth masks and (optionally) predicted masks vs ``angles.csv``.

    ``corners`` (a :class:`~r2mfnet.inference.corner_refiner.CornerRefiner`, with a predictor)
    adds the row ``pred_corners/vertebrae``: the same predicted masks, their tilts read from the
    radiograph by the corner network.

    ``gt_at=(height, width)`` adds rows ``gt@<h>x<w>/<method>`` (:func:`gt_at_size`). With a
    ``predictor`` (and its ``checkpoint``), every row is computed on the checkpoint's own
    ``split`` (``test``: its held-out patients; ``val``; ``train``) or on ``all`` images.
    ``every``/``limit`` take a subset. ``merged_split`` goes to every mask row's end-plate
    measurement (ground truth and predicted: :func:`~r2mfnet.evaluation.cobb_harness.evaluate_sources`).
    Returns ``{"rows", "rows_consistent", "per_image", ...}``.
    """
    from r2mfnet.measure.case import METHODS

    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; known: {METHODS}")
    use_split = split if predictor is not None and checkpoint is not None else "all"
    images, note = spineweb16_images(manifest, every, limit, checkpoint if predictor is not None else None,
                                     use_split)
    if corners is not None:
        corners.check_unseen([im.case_id for im in images], use_split)
    sources = landmark_sources(root) + mask_sources(predictor, gt_at, corners=corners)
    done = evaluate_sources(images, sources, methods, progress, "SpineWeb16 angles",
                            merged_split=merged_split)
    return {
        "dataset": "spineweb16",
        "reference": "angles.csv (experts), AASCE rule; angle 1 = main",
        "n_images": len(done["per_image"]),
        "merged_split": merged_split,
        "predicted_on": note,
        **summarize(done["per_image"], done["keys"], sources),
        "per_image": done["per_image"],
    }


def spineweb16_markdown(result: dict[str, Any]) -> str:
    """The SpineWeb16 evaluation's table, and the same without the reference artefacts."""
    lines = [f"SpineWeb16, {result['n_images']} images; reference: experts' angles.csv "
             "(angle 1 = main; angles 2, 3 by the AASCE rule)"
             f"{merged_split_words(result)}.", "", rows_markdown(result["rows"])]
    if result.get("reference_artefacts"):
        names = ", ".join(f"'{c}'" for c in result["reference_artefacts"])
        lines += ["", f"Without the {len(result['reference_artefacts'])} image(s) whose angles.csv angle 1 "
                  f"is not reproduced by the AASCE rule on their own landmarks (reference artefact: {names}):",
                  "", rows_markdown(result["rows_consistent"])]
    if result.get("predicted_on"):
        lines += ["", f"Predicted masks: {result['predicted_on']}"
                  + (f"; checkpoint {result['checkpoint']}" if result.get("checkpoint") else "")
                  + ensemble_words(result)
                  + (f"; pred_corners: tilts read by the corner network {result['corners']}"
                     if result.get("corners") else "") + "."]
    return "\n".join(lines) + "\n"

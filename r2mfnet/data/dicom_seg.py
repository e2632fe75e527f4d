"""A predicted spine mask as a DICOM Segmentation object that references its radiograph.

Why: clinics read results in DICOM viewers and archives (PACS), which show a Segmentation (SEG)
over the image it references but ignore a PNG beside it. The SEG is written with ``highdicom``
(the ``deploy`` extra): one binary segment "Spine" (SNOMED CT "Bone structure of spine"),
algorithm type AUTOMATIC (r2mfnet and its version), one frame of the source image's rows and
columns, patient and study copied from the source, and the source's SOP Class / SOP Instance UID
in its ReferencedSeriesSequence and SourceImageSequence. Pixels are the mask exactly as the PNG
holds it (1 = spine).

Only the source file's header is used; it is read with pydicom (``force=True``), never executed.
A radiograph without a patient or study module (a test file, an anonymised export) gets empty
values for the missing type-2 attributes in memory, because highdicom copies them; the file on
disk is not touched.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from r2mfnet.data.io import DICOM_SUFFIXES
from r2mfnet.errors import ConfigError, DataError

SEG_SUFFIX = "_seg.dcm"
DEPLOY_HINT = "pip install 'r2mfnet[deploy]'"
_EMPTY_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                "ReferringPhysicianName", "StudyID", "AccessionNumber")


def highdicom_available() -> bool:
    """Whether the SEG writer can run (``highdicom`` importable)."""
    try:
        import highdicom  # noqa: F401
    except ImportError:
        return False
    return True


def is_dicom_file(path: str | Path) -> bool:
    """The readers' rule (:mod:`r2mfnet.data.io`): ``DICM`` at byte 128, or a DICOM suffix."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or path.suffix.lower() in DICOM_SUFFIXES


def _source_dataset(path: Path):
    import pydicom
    from pydicom.uid import generate_uid

    try:
        ds = pydicom.dcmread(str(path), force=True)
    except Exception as exc:
        raise DataError(f"cannot read the DICOM header for the segmentation ({type(exc).__name__})", path) from None
    for key in ("SOPClassUID", "SOPInstanceUID", "Rows", "Columns"):
        if key not in ds:
            raise DataError(f"the DICOM file has no {key}; a segmentation cannot reference it", path)
    for key in _EMPTY_TYPE2:
        if key not in ds:
            setattr(ds, key, "")
    for key in ("StudyInstanceUID", "SeriesInstanceUID"):
        if key not in ds:  # type 1 in every real export; a deterministic stand-in keeps the SEG valid
            setattr(ds, key, generate_uid(entropy_srcs=[str(ds.SOPInstanceUID), key]))
    if "Modality" not in ds:
        ds.Modality = "OT"
    return ds


def write_dicom_seg(source: str | Path, mask: np.ndarray, output: str | Path,
                    series_description: str = "r2mfnet spine segmentation") -> Path:
    """Write ``mask`` (bool, the source image's rows x columns) as a binary SEG of ``source``.

    Raises :class:`ConfigError` without highdicom, :class:`DataError` when the source cannot be
    referenced or the mask's size differs from the image's.
    """
    try:
        import highdicom as hd
        from pydicom.sr.codedict import codes
    except ImportError:
        raise ConfigError(f"DICOM Segmentation output needs highdicom; {DEPLOY_HINT}") from None
    from pydicom.uid import generate_uid

    from r2mfnet import __version__
    from r2mfnet.atomic import atomic_write

    source = Path(source)
    ds = _source_dataset(source)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (int(ds.Rows), int(ds.Columns)):
        raise DataError(f"mask size {mask.shape[1]} x {mask.shape[0]} px differs from the DICOM image's "
                        f"{int(ds.Columns)} x {int(ds.Rows)} px", source)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="r2mfnet", family=codes.cid7162.ArtificialIntelligence, version=__version__)
    segment = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Spine",
        segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=codes.SCT.BoneStructureOfSpine,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm)
    try:
        seg = hd.seg.Segmentation(
            source_images=[ds], pixel_array=mask.astype(np.uint8)[None],
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=[segment],
            series_instance_uid=generate_uid(), series_number=900, sop_instance_uid=generate_uid(),
            instance_number=1, manufacturer="r2mfnet", manufacturer_model_name="R2MF-Net",
            software_versions=__version__, device_serial_number="none", omit_empty_frames=False,
            series_description=series_description)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise DataError(f"highdicom cannot build a segmentation of this image ({str(exc)[:200]})", source) from None

    def write(tmp: Path) -> None:
        seg.save_as(str(tmp))

    return atomic_write(output, write)


__all__ = ["SEG_SUFFIX", "highdicom_available", "is_dicom_file", "write_dicom_seg"]

"""Tiny checkpoints and inputs for the deployment tests (seconds on one CPU thread)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

HW = (64, 32)
CROP = dict(fine_crop=True, coarse_size=[32, 16], crop_size=[48, 16])


def save_tiny_checkpoint(path: Path, crop: bool = False, train_coarse: bool = False,
                         num_classes: int = 1) -> Path:
    """A tiny R2MF-Net checkpoint at 64x32. ``train_coarse``: 40 Adam steps of the coarse network on
    radiograph-like images, so that its mask finds the bright column and the ``fine_crop`` box is
    a real sub-region (an untrained coarse mask gives the whole image, which crops nothing)."""
    import torch

    from r2mfnet.checkpoint import save_checkpoint
    from r2mfnet.deploy.onnx_export import verification_batch
    from r2mfnet.models import create

    torch.manual_seed(0)
    model = create("r2mfnet", base_channels=4, depth=3, num_classes=num_classes, **(CROP if crop else {}))
    if train_coarse:
        x = torch.from_numpy(verification_batch(4, HW, seed=1))
        y = (x > 0.55).float()
        model.set_stage("coarse").train()
        opt = torch.optim.Adam(model.coarse_parameters(), lr=1e-2)
        for _ in range(40):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x)["logits"][:, :1], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.set_stage("joint")
    if num_classes > 1:  # untrained class logits differ by ~1e-7: sharpen them so that the most
        with torch.no_grad():  # probable class is a decision, not float rounding
            model.fine.head.weight.mul_(50.0)
    save_checkpoint(path, {"model_config": dict(model.model_config), "model": model.state_dict(),
                           "preprocess": {"input_size": list(HW), "clahe": False,
                                          "normalize": "percentile_0.5_99.5"}})
    return path


def spine_image(height: int, width: int, seed: int = 0, bits: int = 12) -> np.ndarray:
    """uint16 radiograph-like image: gradient, a slightly curved column of bright blocks, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    img = 0.2 + 0.2 * yy / height + 0.05 * rng.standard_normal((height, width))
    centre = width / 2 + 0.08 * width * np.sin(yy / height * np.pi)
    for k in range(12):
        band = (yy >= height * (0.1 + 0.07 * k)) & (yy < height * (0.15 + 0.07 * k))
        img[band & (np.abs(xx - centre) < width / 10)] += 0.45
    return (np.clip(img, 0, 1) * (2**bits - 1)).round().astype(np.uint16)


def write_png(path: Path, arr: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    buf.tofile(str(path))
    return path


def write_dicom(path: Path, pixels: np.ndarray, spacing: float = 0.2) -> Path:
    """A minimal digital X-ray DICOM (as tests/data/test_data_io.py builds them), 12 bits stored."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray, for presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID = "Test^Spine", "P001"
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [str(spacing), str(spacing)]
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    if int(pydicom.__version__.split(".")[0]) >= 3:
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
    else:  # pragma: no cover - pydicom 2
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(str(path), write_like_original=False)
    return path

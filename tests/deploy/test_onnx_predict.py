"""predict with backend=onnx: the PyTorch backend's masks and files, no PyTorch imported, and a
DICOM Segmentation for DICOM inputs that pydicom reads back onto the source image."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnx", reason="the deploy extra is not installed (pip install -e '.[deploy]')")
pytest.importorskip("onnxruntime", reason="the deploy extra is not installed (pip install -e '.[deploy]')")

from r2mfnet.apps import predict as predict_app  # noqa: E402
from r2mfnet.config_dir import compose  # noqa: E402
from r2mfnet.deploy.onnx_export import export_checkpoint  # noqa: E402
from r2mfnet.errors import ConfigError  # noqa: E402
from r2mfnet.inference.onnx_predictor import OnnxPredictor  # noqa: E402
from tests.deploy._helpers import save_tiny_checkpoint, spine_image, write_dicom, write_png  # noqa: E402
from tests.helpers import ROOT  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """(checkpoint, exported .onnx): the default cascade and fine_crop, coarse networks trained (masks
    that are not empty, crop boxes that are sub-regions)."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for kind, kw in (("default", {"train_coarse": True}), ("crop", {"crop": True, "train_coarse": True})):
        ckpt = save_tiny_checkpoint(root / f"{kind}.pt", **kw)
        out[kind] = (ckpt, root / f"{kind}.onnx")
        export_checkpoint(ckpt, out[kind][1])
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder: two PNG radiographs of other sizes than the model's and a DICOM."""
    root = tmp_path_factory.mktemp("inputs") / "in"
    write_png(root / "P01.png", spine_image(150, 70, seed=1))
    write_png(root / "P02_left_bending.png", (spine_image(97, 51, seed=2) >> 4).astype(np.uint8))
    write_dicom(root / "P03.dcm", spine_image(120, 64, seed=3))
    return root


def _images() -> list[np.ndarray]:
    return [spine_image(150, 70, seed=1).astype(np.float32), spine_image(97, 51, seed=2).astype(np.float32)]


@pytest.mark.parametrize("kind", ["default", "crop"])
@pytest.mark.parametrize("tta", [False, True])
def test_onnx_predictor_gives_the_torch_predictor_masks(kind, tta, models):
    from r2mfnet.inference.predictor import Predictor

    ckpt, onnx_path = models[kind]
    torch_p = Predictor.from_checkpoint(str(ckpt), tta_flip=tta, device="cpu")
    onnx_p = OnnxPredictor(onnx_path, tta_flip=tta)
    assert (onnx_p.threshold, onnx_p.postprocess) == (0.5, True)  # the contract's defaults
    images = _images()
    for a, b in zip(torch_p.predict_probabilities(images), onnx_p.predict_probabilities(images)):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4
    masks_t, masks_o = torch_p.predict_masks(images), onnx_p.predict_masks(images)
    for img, a, b in zip(images, masks_t, masks_o):
        assert a.shape == b.shape == img.shape
        assert np.array_equal(a, b)
    assert any(m.any() for m in masks_o)


@pytest.mark.parametrize("kind", ["default", "crop"])
def test_onnx_flip_tta_halves_are_the_torch_ones_from_two_runs(kind, models):
    """predict_with_halves on ONNX Runtime: two session runs per image (image and mirror), the
    TTA mask of predict_mask and the torch predictor's halves (coarse column included)."""
    from r2mfnet.inference.predictor import Predictor

    ckpt, onnx_path = models[kind]
    torch_p = Predictor.from_checkpoint(str(ckpt), tta_flip=True, device="cpu")
    onnx_p = OnnxPredictor(onnx_path, tta_flip=True)
    runs: list[int] = []
    run_model = onnx_p.run_model
    onnx_p.run_model = lambda batch: (runs.append(int(batch.shape[0])), run_model(batch))[1]
    for image in _images():
        before = sum(runs)
        mask, (plain, mirrored) = onnx_p.predict_with_halves(image)
        assert sum(runs) - before == 2
        t_mask, (t_plain, t_mirrored) = torch_p.predict_with_halves(image)
        assert np.array_equal(mask, onnx_p.predict_mask(image)) and np.array_equal(mask, t_mask)
        assert np.array_equal(plain, t_plain) and np.array_equal(mirrored, t_mirrored)
        assert plain.any() and mirrored.any()


def test_onnx_label_maps_equal_torch_label_maps(tmp_path):
    from r2mfnet.inference.predictor import Predictor

    ckpt = save_tiny_checkpoint(tmp_path / "levels.pt", num_classes=18)
    export_checkpoint(ckpt, tmp_path / "levels.onnx", verify_batch=1)
    onnx_p = OnnxPredictor(tmp_path / "levels.onnx", threshold=0.3)
    torch_p = Predictor.from_checkpoint(str(ckpt), device="cpu", threshold=0.3)
    images = _images()
    for a, b in zip(torch_p.predict_label_maps(images), onnx_p.predict_label_maps(images)):
        assert b.dtype == np.uint8 and b.shape == a.shape
        assert np.array_equal(a > 0, b > 0)  # the same foreground (threshold and clean-up)
        # the same class except where two classes tie to float rounding: this untrained model's
        # 17 vertebra classes are nearly equal everywhere, so the thread count alone moves about
        # 1 pixel in 1000 (measured 1.0e-3 with 2 threads); a wrong class rule would move most
        assert (a != b).mean() < 5e-3 and len(np.unique(b)) > 3
    assert onnx_p.contract["class_names"][1] == "T1"


def test_onnx_predictor_errors_name_the_file(models, tmp_path):
    with pytest.raises(ConfigError, match="missing.onnx' does not exist"):
        OnnxPredictor(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="junk.onnx' cannot be loaded"):
        OnnxPredictor(junk)
    default = OnnxPredictor(models["default"][1])
    with pytest.raises(ConfigError, match="binary mask"):
        default.predict_label_maps(_images())


BLOCK_TORCH = textwrap.dedent('''
    import sys

    class BlockTorch:
        """Any import of torch or torchvision fails, as on a server without PyTorch."""
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision"):
                raise ImportError(f"No module named '{name}' (blocked by the test)")
            return None

    sys.meta_path.insert(0, BlockTorch())
    sys.argv = ["predict", *sys.argv[1:]]
    from r2mfnet.apps.predict import main
    try:
        main()
    finally:
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
        print("TORCH_MODULES", loaded)
''')


def _predict_torch(ckpt: Path, inputs: Path, out: Path) -> int:
    return predict_app.run(compose("predict", [f"checkpoint={ckpt}", f"input={inputs}", f"output_dir={out}",
                                               "progress=false"]))


def test_onnx_backend_runs_without_torch_and_writes_what_torch_writes(models, inputs, tmp_path):
    ckpt, onnx_path = models["crop"]
    out_onnx, out_torch = tmp_path / "onnx", tmp_path / "torch"
    env = {"PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", BLOCK_TORCH, "backend=onnx", f"onnx_model={onnx_path}",
                             f"input={inputs}", f"output_dir={out_onnx}", "threads=1", "progress=false"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "TORCH_MODULES []" in result.stdout
    assert _predict_torch(ckpt, inputs, out_torch) == 0
    summary = json.loads((out_onnx / "summary.json").read_text())
    assert summary["backend"] == "onnx" and summary["onnx_model"] == str(onnx_path) and summary["n_views"] == 3
    for case, view in (("P01", "coronal"), ("P02_left_bending", "left_bending"), ("P03", "coronal")):
        a = cv2.imread(str(out_onnx / case / f"{view}_mask.png"), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(out_torch / case / f"{view}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert a is not None and np.array_equal(a, b)
        for name in (f"{view}_overlay.png", "report.png", "measurements.json"):
            assert (out_onnx / case / name).is_file()
        overlay_a = cv2.imread(str(out_onnx / case / f"{view}_overlay.png"), cv2.IMREAD_UNCHANGED)
        overlay_b = cv2.imread(str(out_torch / case / f"{view}_overlay.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(overlay_a, overlay_b)  # same mask and image: the same picture
        m_onnx = json.loads((out_onnx / case / "measurements.json").read_text())
        m_torch = json.loads((out_torch / case / "measurements.json").read_text())
        assert m_onnx["views"] == m_torch["views"]  # same masks, same measurements
    # the DICOM input got its SEG in both runs (highdicom imports no torch either); PNG inputs none
    assert (out_onnx / "P03" / "coronal_seg.dcm").is_file() and (out_torch / "P03" / "coronal_seg.dcm").is_file()
    assert not list((out_onnx / "P01").glob("*.dcm"))


def test_dicom_seg_round_trip(models, inputs, tmp_path):
    pydicom = pytest.importorskip("pydicom")
    pytest.importorskip("highdicom", reason="the deploy extra is not installed")
    out = tmp_path / "out"
    code = predict_app.run(compose("predict", ["backend=onnx", f"onnx_model={models['crop'][1]}",
                                               f"input={inputs / 'P03.dcm'}", f"output_dir={out}"]))
    assert code == 0
    source = pydicom.dcmread(inputs / "P03.dcm")
    seg = pydicom.dcmread(out / "P03" / "coronal_seg.dcm")
    png = cv2.imread(str(out / "P03" / "coronal_mask.png"), cv2.IMREAD_UNCHANGED)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert (seg.Rows, seg.Columns) == (source.Rows, source.Columns) == png.shape == (120, 64)
    assert seg.SegmentationType == "BINARY" and seg.SegmentSequence[0].SegmentLabel == "Spine"
    assert png.max() == 255 and np.array_equal(seg.pixel_array.astype(bool), png == 255)
    ref = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert ref.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert ref.ReferencedSOPClassUID == source.SOPClassUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    # geometry: one frame on the source's pixel grid, derived from the source image
    assert int(seg.NumberOfFrames) == 1 and seg.pixel_array.shape == (120, 64)
    spacing = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing
    assert [float(v) for v in spacing] == [float(v) for v in source.PixelSpacing]
    frame_source = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert frame_source.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.PatientID == "P001"
    doc = json.loads((out / "P03" / "measurements.json").read_text())
    assert doc["files"]["coronal"]["dicom_seg"] == "coronal_seg.dcm"
    # dicom_seg=false: PNGs only
    out2 = tmp_path / "out2"
    predict_app.run(compose("predict", ["backend=onnx", f"onnx_model={models['crop'][1]}", "dicom_seg=false",
                                        f"input={inputs / 'P03.dcm'}", f"output_dir={out2}"]))
    assert (out2 / "P03" / "coronal_mask.png").is_file() and not (out2 / "P03" / "coronal_seg.dcm").exists()


def test_onnx_backend_option_errors(models, inputs, tmp_path):
    with pytest.raises(ConfigError, match="dicom_seg must be"):
        predict_app.run(compose("predict", ["backend=onnx", f"onnx_model={models['default'][1]}", "dicom_seg=maybe",
                                            f"input={inputs}", f"output_dir={tmp_path}"]))

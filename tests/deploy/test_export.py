"""r2mfnet-export: the whole model (default and fine_crop) in ONNX agrees with PyTorch, with a
dynamic batch, RoiAlign/GridSample in the graph, and its contract in the metadata."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the deploy extra is not installed (pip install -e '.[deploy]')")
pytest.importorskip("onnxruntime", reason="the deploy extra is not installed (pip install -e '.[deploy]')")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from r2mfnet.checkpoint import load_model  # noqa: E402
from r2mfnet.deploy.onnx_export import (  # noqa: E402
    ExportError, export_bytes, export_checkpoint, mask_dice, output_names, verification_batch, verify)
from r2mfnet.errors import ConfigError  # noqa: E402
from r2mfnet.inference.onnx_contract import (  # noqa: E402
    METADATA_KEY, SCHEMA, contract_from_metadata)
from tests.deploy._helpers import HW, save_tiny_checkpoint  # noqa: E402
from tests.helpers import run_script  # noqa: E402


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {"default": save_tiny_checkpoint(root / "default.pt"),
            "crop": save_tiny_checkpoint(root / "crop.pt", crop=True, train_coarse=True)}


@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("onnx")
    return {k: (root / f"{k}.onnx", export_checkpoint(p, root / f"{k}.onnx")) for k, p in checkpoints.items()}


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("kind", ["default", "crop"])
def test_onnx_runtime_matches_pytorch_at_any_batch(kind, checkpoints, exported):
    path, contract = exported[kind]
    model = load_model(checkpoints[kind])
    session = _session(path)
    assert [o.name for o in session.get_outputs()] == ["logits", "coarse_logits"]  # no crop boxes
    for batch in (1, 5):  # traced at 2: both other sizes run, so the batch is dynamic
        x = verification_batch(batch, HW, seed=7 + batch)
        got = dict(zip(["logits", "coarse_logits"], session.run(None, {"image": x})))
        with torch.no_grad():
            ref = model(torch.from_numpy(x))
        for key in got:
            assert got[key].shape == (batch, 1, *HW)
            assert np.abs(got[key] - ref[key].numpy()).max() < 1e-4
        assert mask_dice(got["logits"] > 0, ref["logits"].numpy() > 0) == 1.0
    check = contract["source"]["verification"]
    assert check["batch"] == 3 and check["mask_dice"]["logits"] == 1.0
    assert check["max_abs_logit_diff"]["logits"] < 1e-3


def test_crop_cascade_exports_as_roialign_half_pixel_and_gridsample(checkpoints, exported):
    path, contract = exported["crop"]
    proto = onnx.load(str(path))
    ops = [n for n in proto.graph.node]
    roi = [n for n in ops if n.op_type == "RoiAlign"]
    assert roi and any(n.op_type == "GridSample" for n in ops)
    for node in roi:
        attrs = {a.name: a for a in node.attribute}
        assert attrs["coordinate_transformation_mode"].s == b"half_pixel"  # torchvision aligned=True
        assert attrs["sampling_ratio"].i == 0  # adaptive, as roi.SAMPLING_RATIO
    # the image, the coarse logits and the coarse features of each of the 4 levels (depth 3, MC-Skip)
    assert contract["source"]["roi_align_nodes"] == len(roi) == 6
    # the agreement is not trivial: the boxes are sub-regions, different per image
    model = load_model(checkpoints["crop"])
    with torch.no_grad():
        boxes = model(torch.from_numpy(verification_batch(3, HW)))["boxes"]
    assert (boxes[:, 2] - boxes[:, 0] < HW[1]).all()
    assert len({tuple(b.tolist()) for b in boxes}) > 1


def test_contract_in_metadata_round_trips(checkpoints, exported):
    path, contract = exported["default"]
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta[METADATA_KEY]) == contract
    # what a deployment reads, through ONNX Runtime alone
    read = contract_from_metadata(_session(path).get_modelmeta().custom_metadata_map, path)
    assert read == contract
    from r2mfnet import __version__
    from r2mfnet.checkpoint import load_checkpoint

    assert read["schema"] == SCHEMA and read["r2mfnet_version"] == __version__ and read["opset"] == 17
    assert read["input_size"] == [64, 32] and read["input"]["shape"] == ["batch", 1, 64, 32]
    assert read["normalize"]["rule"] == "percentile_0.5_99.5"
    assert (read["normalize"]["low_percentile"], read["normalize"]["high_percentile"]) == (0.5, 99.5)
    assert read["clahe"]["enabled"] is False and read["threshold"] == 0.5
    assert read["class_names"] == ["spine"]
    assert read["postprocess"]["cleanup"] is True
    assert read["postprocess"]["cleanup_params"] == {"max_offset": 1.5, "min_size": 0.05, "max_hole": 0.3}
    assert read["model_config"] == load_checkpoint(checkpoints["default"])["model_config"]
    assert "INTER_AREA" in read["letterbox"]["text"]


def test_disagreement_fails_and_writes_nothing(checkpoints, tmp_path):
    model = load_model(checkpoints["default"])
    names = output_names(model, HW)
    data = export_bytes(model, HW, names, 17)
    with torch.no_grad():  # the PyTorch model changes after export: the backends now disagree
        model.fine.head.bias.add_(0.5)
    with pytest.raises(ExportError, match="ONNX Runtime disagrees with PyTorch on 'logits'"):
        verify(model, data, verification_batch(2, HW), names, 0.5, atol=1e-3, min_dice=0.999)
    out = tmp_path / "never.onnx"
    with pytest.raises(ExportError, match="nothing was written"):
        export_checkpoint(checkpoints["default"], out, atol=-1.0)  # no difference can be <= -1
    assert not out.exists()
    with pytest.raises(ConfigError, match="opset must be 16..20"):
        export_bytes(model, HW, names, 13)


def test_export_command(checkpoints, tmp_path):
    out = tmp_path / "cli model.onnx"
    result = run_script("export.py", [f"checkpoint={checkpoints['default']}", f"output_file={out}", "verify_batch=1"],
                        env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert "mask Dice 1.00000" in result.stdout and out.is_file()
    bad = run_script("export.py", [f"checkpoint={checkpoints['default']}", f"output_file={tmp_path / 'm.txt'}"])
    assert bad.returncode == 2 and "output_file must end in .onnx" in bad.stderr

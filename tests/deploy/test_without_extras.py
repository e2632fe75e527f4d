"""The deploy paths that need no optional extra, and the one-line error a ``.[dev]``-only user gets
when asking for what an extra adds (export, ``backend=onnx``, ``dicom_seg=true``, ``mode=deploy``,
``model.name=smp_unet``).

Nothing here imports onnx, onnxruntime, highdicom or segmentation_models_pytorch, so this module
runs (and must pass) in a core install; the missing-extra tests block those imports themselves
(``sys.modules[name] = None``, Python's standard way to make ``import name`` fail), so they also
run where the extras are installed.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from r2mfnet.apps import benchmark as bench_app
from r2mfnet.apps import predict as predict_app
from r2mfnet.benchmark.deploy_bench import PRESETS, DeployBenchConfig, DeployCase, run_deploy_benchmark
from r2mfnet.config_dir import compose
from r2mfnet.errors import ConfigError
from r2mfnet.inference.onnx_contract import METADATA_KEY, build_contract, contract_from_metadata
from r2mfnet.inference.postprocess import probabilities, probabilities_np
from tests.deploy._helpers import save_tiny_checkpoint, spine_image, write_dicom, write_png

EXTRAS = ("onnx", "onnxruntime", "highdicom", "segmentation_models_pytorch")


@pytest.fixture
def no_extras(monkeypatch):
    """A core install: every optional library fails to import (also their submodules)."""
    for name in list(sys.modules):
        if name.split(".")[0] in EXTRAS:
            monkeypatch.delitem(sys.modules, name)
    for name in EXTRAS:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


# -- moved here from the deploy modules that skip without the extra --------------------------------

def test_presets_are_the_demo_and_the_spineweb16_crop_recipe():
    assert PRESETS["demo"].input_size == (256, 128) and PRESETS["demo"].model_config["base_channels"] == 8
    crop = PRESETS["spineweb16_crop"]
    assert crop.input_size == (768, 384)
    assert (crop.model_config["coarse_size"], crop.model_config["crop_size"]) == ([256, 128], [512, 128])


def test_benchmark_deploy_option_errors(tmp_path):
    out = tmp_path / "deploy.json"
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        bench_app.run(compose("benchmark", ["mode=deploy", "deploy_presets=[huge]", f"output_file={out}"]))
    with pytest.raises(ConfigError, match=r"mode must be models, deploy.*got 'fast'"):
        bench_app.run(compose("benchmark", ["mode=fast", f"output_file={out}"]))
    assert not out.exists()


def test_contract_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="m.onnx: no 'r2mfnet' entry"):
        contract_from_metadata({}, tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="schema"):
        contract_from_metadata({METADATA_KEY: json.dumps({"schema": "other/9"})}, "m.onnx")
    with pytest.raises(ConfigError, match="normalize 'zscore'"):
        build_contract(model_config={"name": "unet"}, preprocess={"input_size": [8, 8], "normalize": "zscore"},
                       opset=17, outputs=["logits"], threshold=0.5, postprocess=True, cleanup={},
                       version="0", exporter="x")
    contract = build_contract(model_config={"name": "r2mfnet", "num_classes": 18}, preprocess={"input_size": [8, 8]},
                              opset=17, outputs=["logits"], threshold=0.4, postprocess=False, cleanup={},
                              version="0", exporter="x")
    assert contract["class_names"][:3] == ["background", "T1", "T2"] and contract["class_names"][-1] == "L5"
    assert len(contract["class_names"]) == 18 and contract["threshold"] == 0.4


def test_numpy_probabilities_are_the_torch_rule():
    rng = np.random.default_rng(0)
    for channels in (1, 18):
        logits = (rng.standard_normal((2, channels, 16, 8)) * 8).astype(np.float32)
        ref = probabilities(torch.from_numpy(logits)).numpy()
        got = probabilities_np(logits)
        assert got.dtype == np.float32 and np.abs(got - ref).max() <= 2e-7
    # extreme logits stay finite and exact at the ends
    assert probabilities_np(np.array([[[[-200.0]], [[200.0]]]], np.float32).reshape(1, 1, 1, 2)).tolist() == [[[[0.0, 1.0]]]]


def test_predict_backend_option_errors(tiny_checkpoint, tmp_path):
    src = write_png(tmp_path / "in" / "P01.png", spine_image(40, 20))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="onnx_model="):
        predict_app.run(compose("predict", ["backend=onnx", f"input={src}", f"output_dir={out}"]))
    with pytest.raises(ConfigError, match="backend must be one of torch, onnx, got 'tf'"):
        predict_app.run(compose("predict", ["backend=tf", f"checkpoint={tiny_checkpoint}", f"input={src}",
                                            f"output_dir={out}"]))
    assert not out.exists()


# -- what a core install says when asked for an extra ----------------------------------------------

def test_export_without_the_deploy_extra_is_one_line_and_writes_nothing(no_extras, tiny_checkpoint, tmp_path):
    from r2mfnet.apps import export as export_app

    out = tmp_path / "m.onnx"
    with pytest.raises(ConfigError) as err:
        export_app.run(compose("export", [f"checkpoint={tiny_checkpoint}", f"output_file={out}"]))
    message = str(err.value)
    assert "export needs the deploy extra (onnx is missing)" in message
    assert "pip install 'r2mfnet[deploy]'" in message and "\n" not in message
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_onnx_backend_without_the_deploy_extra(no_extras, tmp_path):
    src = write_png(tmp_path / "in" / "P01.png", spine_image(40, 20))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"placeholder: onnxruntime is asked for before the file is read")
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as err:
        predict_app.run(compose("predict", ["backend=onnx", f"onnx_model={model}", f"input={src}",
                                            f"output_dir={out}"]))
    assert str(err.value) == "backend=onnx needs onnxruntime; install the deploy extra: pip install 'r2mfnet[deploy]'"
    assert not out.exists()


def test_dicom_seg_without_highdicom(no_extras, tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    dcm = write_dicom(tmp_path / "in" / "P03.dcm", spine_image(48, 24, seed=3))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"^dicom_seg=true needs highdicom; .*pip install 'r2mfnet\[deploy\]'$"):
        predict_app.run(compose("predict", [f"checkpoint={tiny_checkpoint}", "dicom_seg=true", f"input={dcm}",
                                            f"output_dir={out}", "progress=false"]))
    assert not out.exists()
    # auto (the default): the PNGs as always, one notice, no SEG
    code = predict_app.run(compose("predict", [f"checkpoint={tiny_checkpoint}", f"input={dcm}",
                                               f"output_dir={out}", "progress=false"]))
    assert code == 0
    assert (out / "P03" / "coronal_mask.png").is_file() and not list(out.rglob("*.dcm"))
    notices = [line for line in capsys.readouterr().err.splitlines() if "DICOM Segmentation output skipped" in line]
    assert len(notices) == 1 and "highdicom is not installed" in notices[0]


def test_deploy_benchmark_without_onnxruntime(no_extras, tmp_path):
    case = DeployCase("tiny", {"name": "r2mfnet", "base_channels": 4, "depth": 2}, (32, 16))
    cfg = DeployBenchConfig(cases=[case], batches=(1,), threads=(1,), rounds=1, warmup=0, dice_cases=0,
                            cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match=r"^mode=deploy needs onnxruntime; pip install 'r2mfnet\[deploy\]'$"):
        run_deploy_benchmark(cfg, log=lambda m: None)


def test_smp_unet_without_the_peers_extra(no_extras, monkeypatch):
    from r2mfnet.models import create

    # as in a fresh process of a core install (restored after the test)
    monkeypatch.delitem(sys.modules, "r2mfnet.models.peers.smp_unet", raising=False)
    with pytest.raises(ConfigError) as err:
        create("smp_unet")
    message = str(err.value)
    assert message.startswith("model.name=smp_unet needs segmentation-models-pytorch, which cannot be imported")
    assert message.endswith('pip install -e ".[peers]"') and "\n" not in message

"""The checkpoint loader refuses each kind of bad file with its own reason, and the data-leakage
guard (``checkpoint_test_case_ids``) returns exactly the test split the checkpoint was trained
without, with and without k-fold cross-validation."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
import torch

from r2mfnet.checkpoint import FORMAT, VERSION, load_checkpoint, load_model, save_checkpoint
from r2mfnet.errors import CheckpointError
from r2mfnet.models import create


def _unet_state(base: int = 4) -> dict:
    torch.manual_seed(0)
    model = create("unet", base_channels=base, depth=2)
    return {"model_config": dict(model.model_config), "model": model.state_dict(),
            "preprocess": {"input_size": [32, 16]}}


def _refusal(path: Path, loader=load_checkpoint) -> str:
    with pytest.raises(CheckpointError) as err:
        loader(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message  # one line naming the file
    return message


def test_a_good_checkpoint_loads(tmp_path):
    path = save_checkpoint(tmp_path / "good.pt", _unet_state())
    state = load_checkpoint(path)
    assert state["format"] == FORMAT and state["version"] == VERSION
    model = load_model(path)
    want = _unet_state()["model"]
    assert all(torch.equal(v, want[k]) for k, v in model.state_dict().items())


def test_each_refusal_says_its_reason(tmp_path):
    reasons = {}
    # a newer format version
    newer = save_checkpoint(tmp_path / "newer.pt", {**_unet_state(), "version": VERSION + 1})
    reasons["newer"] = _refusal(newer)
    assert f"format version {VERSION + 1}, newer than this r2mfnet ({VERSION}); upgrade r2mfnet" in reasons["newer"]
    # a plain torch.save of a state dict: no envelope
    plain = tmp_path / "plain.pt"
    torch.save(_unet_state()["model"], plain)
    reasons["no envelope"] = _refusal(plain)
    assert f"is not an r2mfnet checkpoint (no '{FORMAT}' envelope)" in reasons["no envelope"]
    # missing keys, each named
    for key in ("model_config", "model"):
        state = _unet_state()
        del state[key]
        reasons[f"no {key}"] = _refusal(save_checkpoint(tmp_path / f"no_{key}.pt", state))
        assert f"has no '{key}' entry" in reasons[f"no {key}"]
    # a tampered payload: one byte changed, checksum left as it was
    tampered = save_checkpoint(tmp_path / "tampered.pt", _unet_state())
    envelope = torch.load(tampered, weights_only=True)
    payload = bytearray(envelope["payload"])
    payload[len(payload) // 2] ^= 0xFF
    buffer = io.BytesIO()
    torch.save({**envelope, "payload": bytes(payload)}, buffer)
    tampered.write_bytes(buffer.getvalue())
    reasons["tampered"] = _refusal(tampered)
    assert "is corrupted: its checksum does not match its content" in reasons["tampered"]
    # truncated and empty files
    truncated = save_checkpoint(tmp_path / "truncated.pt", _unet_state())
    truncated.write_bytes(truncated.read_bytes()[:1000])
    reasons["truncated"] = _refusal(truncated)
    assert "is truncated or corrupted and cannot be read" in reasons["truncated"]
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    reasons["empty"] = _refusal(empty)
    assert "is empty (0 bytes)" in reasons["empty"]
    missing = tmp_path / "missing.pt"
    reasons["missing"] = _refusal(missing)
    assert "does not exist" in reasons["missing"]
    # every reason reads differently once the file name is taken out
    texts = {re.sub(re.escape(str(tmp_path)) + r"/\w+\.pt", "FILE", v) for v in reasons.values()}
    assert len(texts) == len(reasons)


def test_a_state_dict_that_does_not_fit_is_refused(tmp_path):
    # weights of a wider U-Net under a narrower U-Net's config
    misfit = save_checkpoint(tmp_path / "misfit.pt", {**_unet_state(4), "model": _unet_state(8)["model"]})
    with pytest.raises(CheckpointError) as err:
        load_model(misfit)
    first = str(err.value).splitlines()[0]
    assert f"checkpoint '{misfit}': cannot rebuild model" in first
    assert "size mismatch" in str(err.value)


def test_a_state_dict_that_does_not_fit_is_one_line(tmp_path):
    misfit = save_checkpoint(tmp_path / "misfit.pt", {**_unet_state(4), "model": _unet_state(8)["model"]})
    message = _refusal(misfit, load_model)
    assert "size mismatch" in message and "more)" in message  # the first problem, the rest counted


# ---------------------------------------------------------------- the leakage guard
N_PATIENTS = 12


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """12 patients, three views each, tiny images (only the records matter to the split)."""
    import cv2
    import numpy as np

    root = tmp_path_factory.mktemp("leak")
    img = np.zeros((8, 4), np.uint8)
    img[2:6, 1:3] = 255  # a picture and a non-empty mask, as the manifest validator asks
    rows = []
    for i in range(N_PATIENTS):
        for view in ("coronal", "left_bending", "right_bending"):
            name = f"images/p{i:02d}_{view}.png"
            (root / "images").mkdir(exist_ok=True)
            cv2.imwrite(str(root / name), img)
            rows.append({"case_id": f"p{i:02d}", "view": view, "image": name, "mask": name})
    path = root / "manifest.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["case_id", "view", "image", "mask"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _trained_on(tmp_path: Path, manifest: Path, **split) -> tuple[Path, dict]:
    """A checkpoint whose stored config is a run on ``manifest`` with ``split``, and the splits
    that run's training actually used (r2mfnet.data.build_datasets.load_splits)."""
    from r2mfnet.data.build_datasets import DataConfig, SplitConfig, load_splits

    cfg = DataConfig(source="manifest", manifest=str(manifest), split=SplitConfig(**split))
    used = load_splits(cfg)
    stored = {"data": {"source": "manifest", "manifest": str(manifest), "split": dict(split)}}
    name = "_".join(f"{k}{v}" for k, v in split.items()) or "default"
    path = save_checkpoint(tmp_path / f"{name}.pt", {**_unet_state(), "config": stored})
    return path, used


@pytest.mark.parametrize("split", [
    {},  # the defaults (val 0.15, test 0.15, seed 0)
    {"test_fraction": 0.25, "val_fraction": 0.2, "seed": 3},
    {"test_fraction": 0.25, "seed": 5, "num_folds": 4, "fold": 1},
    {"test_fraction": 0.25, "seed": 5, "num_folds": 4, "fold": 3},
])
def test_guard_returns_the_test_split_training_held_out(split, manifest, tmp_path):
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.evaluation.held_out import checkpoint_test_case_ids

    records = load_manifest(manifest)
    ckpt, used = _trained_on(tmp_path, manifest, **split)
    ids, note = checkpoint_test_case_ids(ckpt, records, "manifest")
    want = {r.case_id for r in used["test"]}
    seen = {r.case_id for r in used["train"] + used["val"]}
    assert ids == want and not ids & seen  # exactly the held-out patients, none the model trained on
    n_test = round(split.get("test_fraction", 0.15) * N_PATIENTS)
    assert len(ids) == n_test and f"({len(ids)} images" in note


def test_guard_depends_on_the_stored_seed_and_source(manifest, tmp_path):
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.evaluation.held_out import checkpoint_test_case_ids

    records = load_manifest(manifest)
    a, _ = _trained_on(tmp_path, manifest, test_fraction=0.25, seed=1)
    b, _ = _trained_on(tmp_path, manifest, test_fraction=0.25, seed=2)
    ids_a, _ = checkpoint_test_case_ids(a, records, "manifest")
    ids_b, _ = checkpoint_test_case_ids(b, records, "manifest")
    assert ids_a != ids_b  # the seed is read from the checkpoint, not assumed
    # trained on other data: every image is unseen (None), and the note says on what
    ids, note = checkpoint_test_case_ids(a, records, "spineweb16")
    assert ids is None and note == "checkpoint trained on 'manifest': all images unseen"

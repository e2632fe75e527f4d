"""r2mfnet-evaluate-cobb with ``ensemble=[...]``: a member that may have trained on the evaluated
SpineWeb16 images is refused; an accepted ensemble is recorded in what the command writes.

SpineWeb16 itself is not needed: ``prepare_spineweb16`` is replaced by a drawn three-patient set
(:func:`tests.evaluation.test_cobb_success_paths._write_set`), and tiny untrained U-Net
checkpoints carry the data config (source and split) that decides their held-out images.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from r2mfnet.apps import evaluate_cobb
from r2mfnet.config_dir import compose
from r2mfnet.errors import ConfigError
from tests.evaluation.test_cobb_success_paths import _write_set

SPLIT = {"val_fraction": 0.34, "test_fraction": 0.34, "seed": 3}


def _checkpoint(path: Path, data: dict[str, Any], seed: int = 0) -> Path:
    from r2mfnet.checkpoint import save_checkpoint
    from r2mfnet.models import create

    torch.manual_seed(seed)
    model = create("unet", base_channels=4, depth=2)
    save_checkpoint(path, {"model_config": dict(model.model_config), "model": model.state_dict(),
                           "preprocess": {"input_size": [64, 32], "clahe": False}, "config": {"data": data}})
    return path


def _held_out(manifest: Path, split: dict[str, Any], part: str) -> set[str]:
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.data.splits import split_by_patient

    return {r.case_id for r in split_by_patient(load_manifest(manifest, check_images=False), **split)[part]}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return _write_set(tmp_path_factory.mktemp("sw16") / "set")


def _run(monkeypatch, manifest: Path, tmp_path: Path, overrides: list[str]) -> dict[str, Any]:
    """The command on the drawn set (its SpineWeb16 preparation replaced by the ready manifest)."""
    import r2mfnet.data.spineweb16 as spineweb16

    monkeypatch.setattr(spineweb16, "prepare_spineweb16", lambda root, cache: manifest)
    return evaluate_cobb.run(compose("evaluate_cobb", [
        "dataset=spineweb16", f"root={tmp_path}", f"cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'out'}",
        "device=cpu", "progress=false", "methods=[centreline]", *overrides]))


@pytest.mark.parametrize("part", ["test", "val"])
@pytest.mark.parametrize("primary_data", [
    {"source": "spineweb16", "split": SPLIT},  # the member: another split of the same patients
    {"source": "synthetic"},  # trained elsewhere: every image is evaluated, the member saw some
])
def test_a_member_holding_out_other_images_is_refused(monkeypatch, manifest, tmp_path, part, primary_data):
    member_split = {**SPLIT, "seed": 5}
    primary = _checkpoint(tmp_path / "primary.pt", primary_data)
    member = _checkpoint(tmp_path / "other_split.pt", {"source": "spineweb16", "split": member_split}, seed=1)
    # the test's premise: the two splits hold out different patients
    assert _held_out(manifest, member_split, part) != _held_out(manifest, SPLIT, part)
    with pytest.raises(ConfigError, match=rf"^ensemble member '.*other_split\.pt' does not hold out the same "
                                          rf"{part} images as checkpoint '.*primary\.pt'") as err:
        _run(monkeypatch, manifest, tmp_path, [f"checkpoint={primary}", f"ensemble=[{member}]", f"split={part}"])
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()  # refused before anything was evaluated or written


def test_a_member_of_the_same_split_is_evaluated_and_recorded(monkeypatch, manifest, tmp_path):
    """Same data split, another seed: accepted; the result and both reports name the member."""
    primary = _checkpoint(tmp_path / "primary.pt", {"source": "spineweb16", "split": SPLIT})
    member = _checkpoint(tmp_path / "member.pt", {"source": "spineweb16", "split": SPLIT}, seed=1)
    result = _run(monkeypatch, manifest, tmp_path, [f"checkpoint={primary}", f"ensemble=[{member}]", "split=test"])
    assert result["ensemble"] == [str(member)]
    assert {r["case_id"] for r in result["per_image"]} == _held_out(manifest, SPLIT, "test")
    saved = json.loads((tmp_path / "out" / "measure_eval.json").read_text())
    assert saved["checkpoint"] == str(primary) and saved["ensemble"] == [str(member)]
    assert f"ensemble: probabilities averaged with {member}" in (tmp_path / "out" / "measure_eval.md").read_text()


def test_a_member_trained_on_other_data_is_accepted(manifest, tmp_path):
    """It saw none of the SpineWeb16 images, whichever split is evaluated."""
    from r2mfnet.evaluation.cobb_spineweb16 import check_ensemble_split

    primary = _checkpoint(tmp_path / "primary.pt", {"source": "spineweb16", "split": SPLIT})
    member = _checkpoint(tmp_path / "elsewhere.pt", {"source": "synthetic"}, seed=1)
    for part in ("val", "test"):
        check_ensemble_split(manifest, primary, [member, primary], part)


def test_an_ensemble_needs_a_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="ensemble= needs checkpoint=PATH"):
        evaluate_cobb.run(compose("evaluate_cobb", [f"ensemble=[{tmp_path / 'b.pt'}]", "dataset=synthetic",
                                                   f"cache_dir={tmp_path}"]))


def test_single_checkpoint_commands_do_not_take_ensemble():
    """evaluate and vertebra_compare read one checkpoint: their schemas have no ensemble key
    (they would not check a member's split); predict and evaluate_cobb have it."""
    import dataclasses

    from r2mfnet.apps.evaluate import EvaluateConfig
    from r2mfnet.apps.evaluate_cobb import EvaluateCobbConfig
    from r2mfnet.apps.predict import PredictConfig
    from r2mfnet.apps.vertebra_compare import VertebraCompareConfig

    def names(schema: type) -> set[str]:
        return {f.name for f in dataclasses.fields(schema)}

    assert "ensemble" in names(PredictConfig) and "ensemble" in names(EvaluateCobbConfig)
    assert "ensemble" not in names(EvaluateConfig) | names(VertebraCompareConfig)


def test_folds_of_one_split_share_the_test_images_but_not_the_validation_ones(manifest, tmp_path):
    """k-fold members (same fractions and seed, another fold) trained on each other's validation
    patients: refused on ``val``, accepted on ``test``, which every fold holds out."""
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.data.splits import stored_split
    from r2mfnet.evaluation.cobb_spineweb16 import check_ensemble_split

    fold = {**SPLIT, "num_folds": 2}
    primary = _checkpoint(tmp_path / "fold0.pt", {"source": "spineweb16", "split": {**fold, "fold": 0}})
    member = _checkpoint(tmp_path / "fold1.pt", {"source": "spineweb16", "split": {**fold, "fold": 1}}, seed=1)
    records = load_manifest(manifest, check_images=False)
    a, b = stored_split(records, {**fold, "fold": 0}), stored_split(records, {**fold, "fold": 1})
    # the premise: the folds differ in validation patients and agree on the test ones
    assert {r.case_id for r in a["val"]} != {r.case_id for r in b["val"]}
    assert {r.case_id for r in a["test"]} == {r.case_id for r in b["test"]}
    with pytest.raises(ConfigError, match=r"^ensemble member '.*fold1\.pt' does not hold out the same val"):
        check_ensemble_split(manifest, primary, [member], "val")
    check_ensemble_split(manifest, primary, [member], "test")

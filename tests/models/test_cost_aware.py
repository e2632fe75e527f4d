"""The compute-aware switches of R2MF-Net (docs/architecture.md, "Cost-aware R2MF-Net"): what
each computes, checked by hand, and that the default built from them trains, resumes exactly
and exports.

* ``light_levels``: :class:`LightInceptionBlock` at the high-resolution levels;
* ``coarse_scale``: the coarse network on the input shrunk by average pooling;
* ``r2jump_units`` shorter than the depth: R2-Jump only on the deepest skips;
* ``mcskip_fusion="pyramid"``: MC-Skip's gated sum built coarsest first;
* ``joint_training``: one stage, both networks learning, both outputs supervised;
* ``mcskip_from_level``: MC-Skip only into the coarser fine-encoder stages.

Each key set back alone (the single-choice ablations of docs/results.md) trains, resumes exactly
and exports too.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from r2mfnet.models import create
from r2mfnet.models.blocks.inception import InceptionBlock, LightInceptionBlock
from r2mfnet.models.blocks.mcskip import MCSkip
from r2mfnet.models.blocks.recurrent import R2Jump, resolve_units

from ._helpers import TINY

V2 = dict(light_levels=2, coarse_scale=2, r2jump_units=[1], recurrent_steps=1,
                  mcskip_fusion="pyramid", joint_training=True)
"""configs/model/r2mfnet_v2.yaml's values: the first cost-aware model (coarse network at half size)."""


def test_light_block_has_a_3x3_and_a_dilated_branch_with_receptive_fields_3_and_7() -> None:
    torch.manual_seed(0)
    block = LightInceptionBlock(3, 8).eval()
    block.norm = torch.nn.Identity()  # the norm mixes the whole image; the branches do not
    x = torch.rand(1, 3, 21, 21, requires_grad=True)
    y = block(x)
    assert y.shape == (1, 8, 21, 21)
    reach = []
    for channels in (slice(0, 4), slice(4, 8)):  # local half, then the dilated half
        x.grad = None
        y[0, channels, 10, 10].sum().backward(retain_graph=True)
        rows, cols = torch.nonzero(x.grad[0].abs().sum(0), as_tuple=True)
        reach.append((int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1))
    assert reach == [(3, 3), (7, 7)]


def test_light_blocks_sit_below_light_levels_and_the_full_block_above() -> None:
    model = create("r2mfnet", base_channels=4, depth=3, light_levels=2)
    for net in (model.coarse, model.fine):
        kinds = [type(b) for b in net.encoder]
        assert kinds == [LightInceptionBlock, LightInceptionBlock, InceptionBlock, InceptionBlock]
        assert [type(b) for b in net.decoder] == [LightInceptionBlock, LightInceptionBlock, InceptionBlock]


def test_short_r2jump_unit_list_names_the_deepest_skips() -> None:
    assert resolve_units([1], 4) == [0, 0, 0, 1]
    assert resolve_units([2, 1], 3) == [0, 2, 1]
    model = create("r2mfnet", base_channels=4, depth=3, r2jump_units=[1], recurrent_steps=1)
    units = [len(skip.units) for skip in model.coarse.skips]
    assert units == [0, 0, 1]
    deepest = model.coarse.skips[2]
    assert isinstance(deepest, R2Jump) and deepest.units[0].rcl.steps == 1


def test_pyramid_fusion_adds_projections_coarsest_first_and_resizes_the_total_once() -> None:
    torch.manual_seed(0)
    channels = [2, 4, 8]
    fusion = MCSkip(2, channels, sources=[0, 1, 2], fusion="pyramid")
    x = torch.rand(1, 2, 16, 8)
    context = [torch.rand(1, 2, 8, 4), torch.rand(1, 4, 4, 2), torch.rand(1, 8, 2, 1)]
    p0, p1, p2 = (proj(c) for proj, c in zip(fusion.projections, context))

    def up(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, size=like.shape[-2:], mode="bilinear", align_corners=False)

    total = up(up(p2, p1) + p1, p0) + p0
    expected = x + fusion.gate.view(1, -1, 1, 1) * up(total, x)
    torch.testing.assert_close(fusion(x, context), expected)
    gate = MCSkip(2, channels, sources=[0, 1, 2], fusion="gate")
    gate.load_state_dict(fusion.state_dict())
    assert not torch.allclose(gate(x, context), expected)  # resizing twice is not resizing once


def test_coarse_network_sees_the_input_at_half_size_and_logits_come_back_full_size() -> None:
    torch.manual_seed(0)
    model = create("r2mfnet", **TINY, **V2).eval()
    seen = []
    model.coarse.encoder[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape))
    x = torch.rand(2, 1, 97, 45)  # odd: padded to a multiple of 2 * 2**depth = 16
    with torch.no_grad():
        out = model(x)
    assert seen == [torch.Size([2, 1, 56, 24])]  # padded 112x48, pooled by 2
    assert out["logits"].shape == out["coarse_logits"].shape == (2, 1, 97, 45)
    assert model.pad_multiple == 16


def test_coarse_scale_one_is_the_earlier_model_exactly() -> None:
    torch.manual_seed(0)
    earlier = create("r2mfnet", **TINY)
    torch.manual_seed(0)
    same = create("r2mfnet", **TINY, coarse_scale=1, light_levels=0, joint_training=False)
    assert same.model_config == earlier.model_config  # earlier checkpoints keep their config
    x = torch.rand(1, 1, 32, 16)
    with torch.no_grad():
        torch.testing.assert_close(same.eval()(x)["logits"], earlier.eval()(x)["logits"])


def test_joint_training_is_one_stage_where_both_networks_learn() -> None:
    model = create("r2mfnet", **TINY, **V2)
    assert model.training_stages() == ("single",) and not model.has_stages
    model.set_stage("single").train()
    x = torch.rand(2, 1, 32, 16)
    out = model(x)
    assert set(out) == {"logits", "coarse_logits"}
    (out["logits"].mean() + 0.5 * out["coarse_logits"].mean()).backward()
    for net in (model.coarse, model.fine):
        assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    assert len(model.stage_parameters("single")) == len(list(model.parameters()))


def test_cost_aware_model_learns_a_band_on_a_tiny_set() -> None:
    torch.manual_seed(0)
    model = create("r2mfnet", **TINY, **V2).train()
    x = torch.rand(4, 1, 32, 16) * 0.2
    y = torch.zeros(4, 1, 32, 16)
    y[..., 5:11] = 1.0
    x = x + 0.8 * y
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        out = model(x)
        loss = sum(F.binary_cross_entropy_with_logits(v, y) for v in out.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    with torch.no_grad():
        dice = ((model(x)["logits"] > 0).float() * y).sum() * 2 / ((model(x)["logits"] > 0).sum() + y.sum())
    assert dice > 0.9


def test_first_cost_aware_model_run_resumes_exactly(tmp_path: Path) -> None:
    from r2mfnet.checkpoint import load_checkpoint
    from r2mfnet.training.run import train
    from r2mfnet.training.trainer import TrainingInterrupted
    from tests.helpers import compose_config, tiny_overrides

    overrides = tiny_overrides(tmp_path / "cache", "model=r2mfnet_v2", "trainer.epochs=2",
                               "evaluate_after_training=false")
    full = train(compose_config(overrides), tmp_path / "full")
    assert [h["stage"] for h in full["train"].history] == ["single", "single"]
    with pytest.raises(TrainingInterrupted) as info:
        train(compose_config([*overrides, "trainer.max_steps=1"]), tmp_path / "cut")
    resumed = train(compose_config([*overrides, f"trainer.resume={info.value.checkpoint}"]), tmp_path / "x")
    assert full["train"].steps == resumed["train"].steps
    a = load_checkpoint(full["train"].latest_checkpoint)["model"]
    b = load_checkpoint(resumed["train"].latest_checkpoint)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(full["train"].latest_checkpoint)["model_config"]["coarse_scale"] == 2


def _assert_onnx_export_matches(model: torch.nn.Module) -> None:
    """Exported to ONNX at 64x32, both outputs equal the model's under ONNX Runtime."""
    pytest.importorskip("onnxruntime", reason="the deploy extra is not installed (pip install -e '.[deploy]')")
    import numpy as np
    import onnxruntime as ort

    from r2mfnet.deploy.onnx_export import export_bytes

    model = model.eval()
    data = export_bytes(model, (64, 32), ["logits", "coarse_logits"], 17)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = torch.rand(2, 1, 64, 32)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = model(x)
    np.testing.assert_allclose(got[0], want["logits"].numpy(), atol=1e-4)
    np.testing.assert_allclose(got[1], want["coarse_logits"].numpy(), atol=1e-4)


def test_cost_aware_model_exports_to_onnx_and_matches_pytorch() -> None:
    torch.manual_seed(0)
    _assert_onnx_export_matches(create("r2mfnet", **TINY, **V2))


COST_AWARE = dict(V2, coarse_scale=4, mcskip_from_level=1)
"""configs/model/r2mfnet.yaml (the default): the coarse network at a quarter size, no
full-resolution MC-Skip."""


def test_mcskip_from_level_leaves_the_finer_fine_stages_without_coarse_features() -> None:
    from r2mfnet.models.blocks.mcskip import NoFusion

    torch.manual_seed(0)
    model = create("r2mfnet", **TINY, **COST_AWARE).eval()
    assert [type(f) for f in model.fine.fusions] == [NoFusion, MCSkip, MCSkip]
    seen: dict[str, list[torch.Tensor]] = {"level0": [], "level1": []}
    model.fine.fusions[0].register_forward_hook(lambda m, a, out: seen["level0"].append(out))
    model.fine.fusions[1].register_forward_hook(lambda m, a, out: seen["level1"].append(out))
    fine_input = torch.rand(1, 2, 32, 16)
    features = [torch.rand(1, 4 * 2**lvl, 16 >> lvl, 8 >> lvl) for lvl in range(4)]  # coarse decoder
    with torch.no_grad():
        for scale in (1.0, 5.0):  # same fine input, different coarse features
            model.fine(fine_input, [f * scale for f in features])
    torch.testing.assert_close(seen["level0"][0], seen["level0"][1])  # level 0: its own feature only
    assert not torch.allclose(seen["level1"][0], seen["level1"][1])  # level 1 takes the coarse features


def test_mcskip_from_level_zero_is_the_model_before_it() -> None:
    torch.manual_seed(0)
    before = create("r2mfnet", **TINY, **V2)
    torch.manual_seed(0)
    same = create("r2mfnet", **TINY, **V2, mcskip_from_level=0)
    assert same.model_config == before.model_config  # earlier checkpoints keep their config
    x = torch.rand(1, 1, 32, 16)
    with torch.no_grad():
        torch.testing.assert_close(same.eval()(x)["logits"], before.eval()(x)["logits"])


@pytest.mark.parametrize("bad", [-1, 3, True, 1.0, "1"])
def test_mcskip_from_level_out_of_range_is_one_line_config_error(bad: object) -> None:
    from r2mfnet.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^model\.mcskip_from_level must be an integer from 0 to "
                                          r"model\.depth - 1 \(2\), got") as info:
        create("r2mfnet", **TINY, **dict(COST_AWARE, mcskip_from_level=bad))
    assert "\n" not in str(info.value)


def test_quarter_size_coarse_network_sees_the_input_pooled_by_four() -> None:
    torch.manual_seed(0)
    model = create("r2mfnet", **TINY, **COST_AWARE).eval()
    seen = []
    model.coarse.encoder[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape))
    with torch.no_grad():
        out = model(torch.rand(2, 1, 97, 45))  # padded to a multiple of 4 * 2**depth = 32
    assert seen == [torch.Size([2, 1, 32, 16])]  # padded 128x64, pooled by 4
    assert out["logits"].shape == (2, 1, 97, 45) and model.pad_multiple == 32


SWITCHED_BACK = [
    pytest.param(None, None, id="default"),
    pytest.param("light_levels", 0, id="light_levels"),
    pytest.param("coarse_scale", 1, id="coarse_scale"),
    pytest.param("r2jump_units", None, id="r2jump_units"),
    pytest.param("recurrent_steps", 2, id="recurrent_steps"),
    pytest.param("mcskip_fusion", "gate", id="mcskip_fusion"),
    pytest.param("mcskip_from_level", 0, id="mcskip_from_level"),
    pytest.param("joint_training", False, id="joint_training"),
]
"""Today's default, and each of its compute-aware keys set back alone to ``r2mfnet_v1``'s value:
the single-choice ablations (``r2mfnet_full_inception``, ``r2mfnet_full_r2jump``,
``r2mfnet_two_stage`` among them) must each train, resume and export on their own."""


@pytest.mark.parametrize("key, value", SWITCHED_BACK)
def test_default_and_each_switch_alone_train_resume_exactly_and_export_to_onnx(
        tmp_path: Path, key: str | None, value: object) -> None:
    from r2mfnet.checkpoint import load_checkpoint
    from r2mfnet.training.run import train
    from r2mfnet.training.trainer import TrainingInterrupted
    from tests.helpers import compose_config, tiny_overrides

    switch = [] if key is None else [f"model.{key}={'null' if value is None else value}"]
    schedule = (["trainer.coarse_epochs=1", "trainer.fine_epochs=1"] if value is False
                else ["trainer.epochs=2"])
    overrides = tiny_overrides(tmp_path / "cache", "model=r2mfnet", *switch, *schedule,
                               "evaluate_after_training=false")
    full = train(compose_config(overrides), tmp_path / "full")
    stages = [h["stage"] for h in full["train"].history]
    assert stages == (["coarse", "fine"] if value is False else ["single", "single"])
    with pytest.raises(TrainingInterrupted) as info:
        train(compose_config([*overrides, "trainer.max_steps=1"]), tmp_path / "cut")
    resumed = train(compose_config([*overrides, f"trainer.resume={info.value.checkpoint}"]), tmp_path / "x")
    a = load_checkpoint(full["train"].latest_checkpoint)
    b = load_checkpoint(resumed["train"].latest_checkpoint)["model"]
    assert a["model"].keys() == b.keys() and all(torch.equal(a["model"][k], b[k]) for k in b)
    config = a["model_config"]
    cfg = compose_config(overrides).model
    want = dict(COST_AWARE, **({} if key is None else {key: value}))
    assert config == create("r2mfnet", base_channels=cfg.base_channels, depth=cfg.depth,
                            coarse_classes=cfg.coarse_classes, fine_coords=cfg.fine_coords,
                            **want).model_config
    model = create(**config)
    model.load_state_dict(a["model"])
    _assert_onnx_export_matches(model)


@pytest.mark.parametrize("config, expected", [
    ("r2mfnet", COST_AWARE),
    ("r2mfnet_v2", V2),
    ("r2mfnet_v1", {}),  # the Python defaults: the model before any compute-aware key
    # the candidates of docs/results.md: the full block back at level 1; today's model by its own name
    ("r2mfnet_l1", dict(COST_AWARE, light_levels=1)),
    ("r2mfnet_cw", COST_AWARE),
    # the single-choice ablations of today's default
    ("r2mfnet_full_inception", dict(COST_AWARE, light_levels=0)),
    ("r2mfnet_full_r2jump", dict(COST_AWARE, r2jump_units=None, recurrent_steps=2)),
    ("r2mfnet_two_stage", dict(COST_AWARE, joint_training=False)),
    # today's cost-aware base with the region-of-interest cascade (coarse_scale gives way to coarse_size)
    ("r2mfnet_roi", dict(COST_AWARE, coarse_scale=1, fine_crop=True, coarse_size=[128, 64],
                         crop_size=[512, 128])),
])
def test_each_named_configuration_builds_its_own_model(config: str, expected: dict) -> None:
    """A key added to configs/model/r2mfnet.yaml is inherited by the configs that extend it; each
    earlier configuration must set it back, or its runs silently change model."""
    from omegaconf import OmegaConf

    from r2mfnet.training.run_config import build_model
    from tests.helpers import compose_config

    cfg = compose_config(["experiment=smoke", f"model={config}"])
    built = build_model(OmegaConf.to_container(cfg.model, resolve=True)).model_config
    want = create("r2mfnet", base_channels=cfg.model.base_channels, depth=cfg.model.depth,
                  coarse_classes=cfg.model.coarse_classes, fine_coords=cfg.model.fine_coords,
                  **expected).model_config
    assert built == want


def test_roi_cascade_on_the_cost_aware_base_crops_only_the_levels_mcskip_reads(monkeypatch) -> None:
    """model=r2mfnet_roi: with ``mcskip_from_level=1`` the level-0 coarse feature feeds no
    fusion, so it is not cropped (a full-size ``roi_align`` for nothing); the crops that remain
    are the image, the coarse logits and the coarser features; the model trains (every fine
    parameter gets a gradient) and predicts at the input size."""
    from r2mfnet.models.blocks import roi

    torch.manual_seed(0)
    model = create("r2mfnet", base_channels=4, depth=2, **dict(
        COST_AWARE, coarse_scale=1, fine_crop=True, coarse_size=[32, 16], crop_size=[48, 16]))
    sizes: list[tuple[int, int]] = []
    real_crop = roi.crop
    monkeypatch.setattr(roi, "crop", lambda f, b, s, out: sizes.append(tuple(out)) or real_crop(f, b, s, out))
    x = torch.rand(2, 1, 96, 48)
    target = torch.zeros(2, 1, 96, 48)
    target[:, :, 20:80, 20:28] = 1
    out = model.train()(x, target=target)
    assert sorted(sizes) == sorted([(48, 16), (48, 16), (24, 8), (12, 4)])  # x, coarse, levels 1-2
    assert out["logits"].shape == (2, 1, 96, 48) and out["coarse_logits"].shape == (2, 1, 96, 48)
    loss = F.binary_cross_entropy_with_logits(out["logits"], target)
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("fine."))
    assert model.eval()(x)["logits"].shape == (2, 1, 96, 48)

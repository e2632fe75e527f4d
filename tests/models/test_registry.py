"""Registry, model_config round trip, Hydra instantiation, argument validation."""
from __future__ import annotations

import json

import pytest
import torch

from r2mfnet.errors import ConfigError
from r2mfnet.models import (AttentionUNet, R2MFNet, R2UNet, UNet, UNetPlusPlus, available_models,
                            create)

from ._helpers import ALL_MODELS, TINY

CLASSES = {"r2mfnet": R2MFNet, "unet": UNet, "r2unet": R2UNet, "attention_unet": AttentionUNet,
           "unetpp": UNetPlusPlus}


def test_available_models() -> None:
    names = available_models()
    assert names[:5] == ["r2mfnet", "unet", "r2unet", "attention_unet", "unetpp"]
    assert set(names[5:]) <= {"smp_unet"}  # peers, with the optional extra (test_smp_unet.py)


@pytest.mark.parametrize("name", list(CLASSES))
def test_defaults_follow_contract(name: str) -> None:
    model = create(name)
    assert isinstance(model, CLASSES[name])
    cfg = model.model_config
    assert cfg["name"] == name
    assert (cfg["in_channels"], cfg["num_classes"], cfg["base_channels"], cfg["depth"]) == (
        1, 1, 16, 4)
    assert model.has_stages is (name == "r2mfnet")


@pytest.mark.parametrize("name,extra", [(n, {}) for n in ALL_MODELS] + [
    ("r2mfnet", {"r2jump_units": (3, 1, 1), "mcskip_fusion": "concat", "scse": False}),
    ("r2mfnet", {"cascade": False}),
])
def test_model_config_rebuilds_model(name: str, extra: dict) -> None:
    model = create(name, num_classes=2, **TINY, **extra)
    cfg = json.loads(json.dumps(model.model_config))  # what a checkpoint stores
    rebuilt = create(**cfg)
    assert rebuilt.model_config == model.model_config
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert rebuilt.has_stages == model.has_stages


@pytest.mark.parametrize("name", list(CLASSES))
def test_hydra_target_instantiation(name: str) -> None:
    from hydra.utils import instantiate

    cls = CLASSES[name]
    model = instantiate({"_target_": f"r2mfnet.models.{cls.__name__}", **TINY})
    assert isinstance(model, cls) and model.model_config["base_channels"] == 4


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("nope", {}),
        ("unet", {"dropout": 0.1}),
        ("unet", {"depth": 0}),
        ("unet", {"base_channels": 2.5}),
        ("unet", {"norm": "instance"}),
        ("r2mfnet", {"base_channels": 2}),
        ("r2mfnet", {"mcskip_fusion": "mul"}),
        ("r2mfnet", {"inception": "yes"}),
        ("r2mfnet", {"r2jump_units": [1, 1, 1, 1], "depth": 3}),
            ("r2mfnet", {"r2jump_units": [], "depth": 3}),
            ("r2mfnet", {"light_levels": 5, "depth": 4}),
            ("r2mfnet", {"coarse_scale": 3}),
            ("r2mfnet", {"coarse_scale": 2, "fine_crop": True}),
            ("r2mfnet", {"joint_training": "yes"}),
            ("r2mfnet", {"mcskip_fusion": "sum"}),
        ("r2mfnet", {"mcskip_levels": 0}),
        ("r2unet", {"recurrent_steps": -1}),
    ],
)
def test_bad_arguments_raise_config_error(name: str, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        create(name, **kwargs)


def test_wrong_input_channels_raise_config_error() -> None:
    model = create("unet", **TINY)
    with pytest.raises(ConfigError, match="in_channels"):
        model(torch.rand(1, 3, 32, 32))

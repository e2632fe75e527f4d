"""``smp_unet``, the segmentation-models-pytorch peer (optional extra ``peers``).

With the extra: it follows the model contract, builds without touching the network, learns,
trains and resumes through the real training entry, and round-trips a checkpoint. Without it
(simulated by blocking the import in a subprocess, so this runs on every install): the registry
does not list it, and asking for it is one ConfigError line with the install command.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from omegaconf import OmegaConf

from r2mfnet.errors import ConfigError
from r2mfnet.models import available_models, create
from r2mfnet.models.peers import installed_peers
from tests.helpers import ROOT, compose_config, tiny_overrides

HAVE_SMP = "smp_unet" in installed_peers()
needs_smp = pytest.mark.skipif(
    not HAVE_SMP, reason='segmentation-models-pytorch is not installed (optional extra: pip install -e ".[peers]")')

TINY = dict(base_channels=4, depth=3)


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter from the repository root."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
        timeout=300, env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(ROOT),
                          "OMP_NUM_THREADS": "1", **env})


# ------------------------------------------------------------------ without the extra

def test_without_the_extra_it_is_unlisted_and_asking_names_the_install():
    res = _python("""
        import json, sys
        sys.modules["segmentation_models_pytorch"] = None  # what an install without the extra sees
        from r2mfnet.training.run_config import build_model
        from r2mfnet.errors import ConfigError
        from r2mfnet.models import available_models, create
        messages = []
        for build in (lambda: create("smp_unet"), lambda: build_model({"name": "smp_unet"})):
            try:
                build()
            except ConfigError as exc:
                messages.append(str(exc))
        print(json.dumps({"available": available_models(), "messages": messages,
                          "core_unet": type(create("unet", base_channels=4, depth=2)).__name__}))
    """)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert "smp_unet" not in out["available"] and "unet" in out["available"]
    assert out["core_unet"] == "UNet"  # the core models do not need smp
    assert len(out["messages"]) == 2
    for message in out["messages"]:
        assert "\n" not in message
        assert 'pip install -e ".[peers]"' in message and "model.name=smp_unet" in message


def test_without_the_extra_train_command_exits_2_with_one_line(tmp_path):
    res = _python(f"""
        import sys
        sys.modules["segmentation_models_pytorch"] = None
        sys.argv = ["train.py", "model=smp_unet", "hydra.run.dir={tmp_path / 'run'}"]
        from r2mfnet.apps.train import main
        main()
    """, R2MFNET_FULL_ERROR="", HYDRA_FULL_ERROR="")
    assert res.returncode == 2, res.stderr[-3000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("r2mfnet: error:")]
    assert len(errors) == 1 and 'pip install -e ".[peers]"' in errors[0], res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()  # stopped before any run folder


def test_unknown_name_still_lists_the_models():
    with pytest.raises(ConfigError, match=r"model.name 'smp_unett' is unknown; available: r2mfnet"):
        create("smp_unett")


# ------------------------------------------------------------------ with the extra

@needs_smp
def test_listed_and_built_from_its_config_file():
    from r2mfnet.training.run_config import build_model, validate
    from r2mfnet.models.peers.smp_unet import SmpUNet

    assert "smp_unet" in available_models()
    own = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "model" / "smp_unet.yaml"))
    assert own == {"name": "smp_unet", "in_channels": 1, "num_classes": 1, "encoder": "resnet18",
                   "base_channels": 16, "depth": 5}  # smp's own default U-Net
    # as for every model, the experiment's shared keys apply (the default, demo, sets base 8)
    run = validate(compose_config(["model=smp_unet", "model.base_channels=16"]))
    model = build_model(run.model)
    assert isinstance(model, SmpUNet)
    assert model.model_config == own
    assert model.pad_multiple == 32 and model.dropped_modules == []
    assert not model.has_stages
    rebuilt = create(**json.loads(json.dumps(model.model_config)))  # what a checkpoint stores
    rebuilt.load_state_dict(model.state_dict(), strict=True)


@needs_smp
@pytest.mark.parametrize("hw", [(64, 32), (45, 27)])
def test_any_input_size_gives_logits_of_that_size(hw):
    """smp itself refuses sizes that are not multiples of 2**depth; the wrapper pads and crops."""
    model = create("smp_unet", in_channels=2, num_classes=3, **TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 2, *hw))
    assert set(out) == {"logits"} and out["logits"].shape == (2, 3, *hw)
    with pytest.raises(ConfigError, match="in_channels"):
        model(torch.rand(1, 1, *hw))


@needs_smp
def test_shallow_encoder_drops_the_unused_stages():
    """At depth 3 smp would keep ResNet layer3/layer4 without ever running them: no gradient
    (DDP stops on that), dead weight in every checkpoint."""
    model = create("smp_unet", **TINY).train()
    assert model.dropped_modules == ["layer3", "layer4"]
    x = torch.rand(2, 1, 48, 24)
    torch.nn.functional.binary_cross_entropy_with_logits(
        model(x)["logits"], (x > 0.5).float()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@needs_smp
@pytest.mark.parametrize("kwargs,key", [({"encoder": "resnet_nope"}, "model.encoder"),
                                        ({"encoder": 18}, "model.encoder"),
                                        ({"depth": 6}, "model.depth"),
                                        ({"base_channels": 0}, "model.base_channels"),
                                        ({"norm": "batch"}, "norm")])
def test_bad_arguments_are_config_errors_naming_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key) as info:
        create("smp_unet", **kwargs)
    assert "\n" not in str(info.value)


@needs_smp
def test_building_never_touches_the_network():
    """Random initialisation only: importing smp and building any depth opens no connection."""
    res = _python("""
        import socket
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(repr(args)[:200])
            raise OSError("network disabled by the test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from r2mfnet.models import create
        for depth in (5, 3):
            create("smp_unet", depth=depth, base_channels=4)
        create("smp_unet", encoder="resnet34", base_channels=4)
        print("attempts:", attempts)
    """, HF_HUB_OFFLINE="1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "attempts: []" in res.stdout, res.stdout


@needs_smp
def test_learns_a_tiny_batch_and_counts_flops():
    from r2mfnet.models.summary import count_gflops, summarize
    from r2mfnet.training.losses import DiceCELoss

    model = create("smp_unet", **TINY).train()
    x = torch.rand(4, 1, 64, 32)
    y = torch.zeros(4, 1, 64, 32)
    y[..., 16:48, 10:22] = 1.0
    x = x * 0.5 + y * 0.5  # the target is visible in the image
    loss_fn = DiceCELoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses
    gflops = count_gflops(model, (1, 1, 64, 32))
    assert gflops > 0
    (row,) = summarize(["smp_unet"], input_shape=(1, 1, 64, 32), **TINY)
    assert row["params"] == sum(p.numel() for p in model.parameters())
    assert row["gflops"] == pytest.approx(gflops)


@needs_smp
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    from r2mfnet.checkpoint import load_model, save_checkpoint

    model = create("smp_unet", num_classes=2, **TINY).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # move weights and BatchNorm running statistics off their initial values
        model(torch.rand(2, 1, 32, 32))["logits"].mean().backward()
        opt.step()
        opt.zero_grad()
    path = save_checkpoint(tmp_path / "smp.pt", {"model_config": dict(model.model_config),
                                                 "model": model.state_dict()})
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.model_config == model.model_config
    assert not loaded.training
    x = torch.rand(3, 1, 40, 24)
    with torch.no_grad():
        assert torch.equal(loaded(x)["logits"], model.eval()(x)["logits"])


@needs_smp
def test_trains_evaluates_and_resumes_through_the_training_entry(tmp_path):
    """``python scripts/train.py model=smp_unet`` in-process, on the smoke experiment: stopped
    after 2 steps, resumed to the end, evaluated, and its best checkpoint predicts."""
    from r2mfnet.checkpoint import load_model
    from r2mfnet.errors import TrainingInterrupted
    from r2mfnet.training.run import train

    overrides = tiny_overrides(tmp_path / "cache", "model=smp_unet", "trainer.epochs=2")
    with pytest.raises(TrainingInterrupted) as info:
        train(compose_config([*overrides, "trainer.max_steps=2"]), tmp_path / "run")
    result = train(compose_config([*overrides, f"trainer.resume={info.value.checkpoint}"]),
                   tmp_path / "other")
    assert result["run_dir"] == tmp_path / "run"
    history = result["train"].history
    assert [h["stage"] for h in history] == ["single", "single"]
    assert result["summary"] and 0.0 <= result["summary"]["overall"]["dice"]["mean"] <= 1.0
    model = load_model(result["train"].best_checkpoint)
    assert model.model_config["name"] == "smp_unet"
    assert model(torch.rand(1, 1, 64, 32))["logits"].shape == (1, 1, 64, 32)

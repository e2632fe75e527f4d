"""End-to-end: the real configs, the real scripts, tiny sizes."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from r2mfnet.training.run_config import validate
from r2mfnet.errors import ConfigError
from r2mfnet.checkpoint import load_checkpoint
from r2mfnet.training.run import train
from r2mfnet.training.trainer import TrainingInterrupted
from tests.helpers import CONFIG_DIR, compose_config, run_script, tiny_overrides


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_composes_and_validates(experiment):
    validate(compose_config([f"experiment={experiment}"]))


@pytest.mark.parametrize("model", sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")))
def test_every_model_config_builds(model):
    from r2mfnet.training.run_config import build_model

    run = validate(compose_config([f"model={model}", "model.base_channels=4", "model.depth=2"]))
    try:
        net = build_model(run.model)
    except ConfigError as exc:  # a peer whose optional extra is not installed (smp_unet: [peers])
        if "pip install" not in str(exc):
            raise
        pytest.skip(str(exc))
    out = net(torch.zeros(1, 1, 32, 16))
    assert out["logits"].shape == (1, 1, 32, 16)


def test_unknown_key_and_wrong_type_name_the_key():
    with pytest.raises(ConfigError, match="trainer.epochs"):
        validate(compose_config(["trainer.epochs=many"]))
    cfg = compose_config([])
    OmegaConf.set_struct(cfg, False)  # compose forbids this already; a hand-made config must fail too
    cfg.trainer.epochz = 3
    with pytest.raises(ConfigError, match="epochz"):
        validate(cfg)
    with pytest.raises(ConfigError, match="model 'unet'"):
        from r2mfnet.training.run_config import build_model

        build_model({"name": "unet", "nonsense": 1})


def test_smoke_script_end_to_end(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    # the staged (coarse, then fine) R2MF-Net, whose stage checkpoints are checked below; the
    # cost-aware default trains jointly (tests/models/test_cost_aware.py runs it end to end)
    result = run_script("train.py", [*tiny_overrides(cache_dir, "model=r2mfnet_v1"), f"hydra.run.dir={run_dir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    for rel in ["checkpoints/best.pt", "checkpoints/latest.pt", "checkpoints/best_coarse.pt",
                "train_history.json", "eval/metrics_per_case.csv", "eval/summary.json", "eval/summary.md"]:
        assert (run_dir / rel).is_file(), rel
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run_dir / "eval" / "worst_cases").glob("*.png"))
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    overall = summary["overall"]
    # the summary is the per-image table's mean, overall and per view (an aggregation bug, a
    # dropped or duplicated row, or a summary from another split would change these)
    with open(run_dir / "eval" / "metrics_per_case.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    dice = [float(r["dice"]) for r in rows]
    assert overall["dice"]["n"] == len(rows) > 0 and all(0.0 <= d <= 1.0 for d in dice)
    assert overall["dice"]["mean"] == pytest.approx(sum(dice) / len(dice), abs=1e-6)
    for view, stats in summary["per_view"].items():
        in_view = [float(r["dice"]) for r in rows if r["view"] == view]
        assert stats["dice"]["n"] == len(in_view) and stats["dice"]["mean"] == pytest.approx(
            sum(in_view) / len(in_view), abs=1e-6), view
    assert len({(r["case_id"], r["view"]) for r in rows}) == len(rows)
    history = json.loads((run_dir / "train_history.json").read_text())
    assert [h["stage"] for h in history] == ["coarse", "fine"]
    assert "coronal" in result.stdout  # the per-view table is printed

    # evaluate.py on the same checkpoint reproduces the training-time evaluation
    out = tmp_path / "eval2"
    ev = run_script("evaluate.py", [f"checkpoint={run_dir / 'checkpoints/best.pt'}", f"output_dir={out}", "progress=false"])
    assert ev.returncode == 0, ev.stderr[-3000:]
    again = json.loads((out / "summary.json").read_text())
    assert again["overall"]["dice"]["mean"] == pytest.approx(overall["dice"]["mean"], abs=1e-6)


def test_bad_option_gives_message_not_traceback_and_no_output(tmp_path, cache_dir):
    run_dir = tmp_path / "bad"
    result = run_script("train.py", [*tiny_overrides(cache_dir), f"hydra.run.dir={run_dir}", "trainer.lr=fast"])
    assert result.returncode != 0
    assert "trainer.lr" in result.stderr
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()
    missing = run_script("evaluate.py", [f"checkpoint={tmp_path / 'nope.pt'}"])
    assert missing.returncode == 2 and "nope.pt" in missing.stderr and "Traceback" not in missing.stderr


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_resumed_run_matches_uninterrupted_run(tmp_path, cache_dir):
    overrides = tiny_overrides(cache_dir, "model=r2mfnet_v1", "trainer.coarse_epochs=2", "trainer.fine_epochs=2",
                               "evaluate_after_training=false")
    full = train(compose_config(overrides), tmp_path / "full")
    # Interrupt in the middle of the second coarse epoch, then resume from latest.pt.
    with pytest.raises(TrainingInterrupted) as info:
        train(compose_config([*overrides, "trainer.max_steps=3"]), tmp_path / "cut")
    # A different model must not silently load the same-shaped weights.
    with pytest.raises(ConfigError, match="model.fine_residual=True"):
        train(compose_config([*overrides, f"trainer.resume={info.value.checkpoint}", "model.fine_residual=false"]),
              tmp_path / "other")
    resumed = train(compose_config([*overrides, f"trainer.resume={info.value.checkpoint}"]), tmp_path / "other")
    assert resumed["run_dir"] == tmp_path / "cut"  # a resumed run continues in its own folder
    assert full["train"].steps == resumed["train"].steps
    # Every validated epoch carries cumulative wall and CPU time, continued across the resume.
    for history in (full["train"].history, resumed["train"].history):
        assert len(history) == 4 and all("val_vertebra_f1" in h for h in history)
        for key in ("elapsed_seconds", "cpu_seconds"):
            times = [h[key] for h in history]
            assert times[0] > 0 and all(b > a for a, b in zip(times, times[1:])), (key, times)
    a = _weights(full["train"].latest_checkpoint)
    b = _weights(resumed["train"].latest_checkpoint)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_paper_budget_starts_and_runs_a_step_on_cpu(tmp_path, cache_dir):
    """The GPU-scale experiment (full resolution, wide model) must at least run on CPU."""
    overrides = ["experiment=paper", "data=synthetic", f"data.cache_dir={cache_dir}",
                 "data.synthetic.num_cases=6", "data.synthetic.image_height=128", "data.synthetic.image_width=64",
                 "data.batch_size=1", "data.num_workers=0", "trainer.max_steps=1", "trainer.progress=false",
                 "trainer.device=cpu"]
    run = validate(compose_config(overrides))
    assert (run.data.input_height, run.data.input_width, run.model["base_channels"]) == (1024, 512, 32)
    with pytest.raises(TrainingInterrupted, match="max_steps"):
        train(compose_config(overrides), tmp_path / "paper")
    # one step at full size (about 25 s on one CPU core) shows it starts and steps; more add only time
    assert load_checkpoint(tmp_path / "paper" / "checkpoints" / "latest.pt")["global_step"] == 1


def test_fine_crop_run_resumes_exactly_and_predicts_at_original_size_with_flip_tta(tmp_path, cache_dir):
    """The region-of-interest cascade through the whole chain: its checkpoints resume to the same
    weights, the run's evaluation at original resolution succeeds, and a predictor rebuilt from the
    checkpoint returns original-size masks, with flip TTA (which also runs the crop on the mirror)."""
    import numpy as np

    from r2mfnet.inference.predictor import Predictor

    overrides = tiny_overrides(cache_dir, "model=r2mfnet_fine_crop", "trainer.coarse_epochs=1", "trainer.fine_epochs=2", "data.input_height=96", "data.input_width=48",
                               "model.coarse_size=[64,32]", "model.crop_size=[64,32]")
    full = train(compose_config(overrides), tmp_path / "full")
    assert full["summary"] is not None and (tmp_path / "full" / "eval" / "metrics_per_case.csv").is_file()
    with pytest.raises(TrainingInterrupted) as info:
        train(compose_config([*overrides, "trainer.max_steps=3"]), tmp_path / "cut")
    resumed = train(compose_config([*overrides, f"trainer.resume={info.value.checkpoint}"]), tmp_path / "x")
    a, b = _weights(full["train"].latest_checkpoint), _weights(resumed["train"].latest_checkpoint)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    image = np.random.default_rng(0).random((150, 70), dtype=np.float32)
    image[20:130, 28:42] += 1.0  # a bright column for the coarse mask to find
    for tta in (False, True):
        predictor = Predictor.from_checkpoint(full["train"].latest_checkpoint, tta_flip=tta, device="cpu")
        prob = predictor.predict_probability(image)
        mask = predictor.predict_mask(image)
        assert prob.shape == mask.shape == image.shape and np.isfinite(prob).all()
        assert set(np.unique(mask)) <= {0, 1}

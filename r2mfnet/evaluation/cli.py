"""Argument handling of ``scripts/evaluate.py`` (kept in the package so it is testable)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from r2mfnet.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
OPTIONS = {"checkpoint", "split", "output_dir", "data", "manifest", "tta_flip", "tau", "tau_fraction",
           "worst_cases", "device", "threshold", "progress"}


def _data_config(args: dict[str, Any], stored: dict[str, Any], data_overrides: list[str]):
    """The data config: the checkpoint's own, or a named group from ``configs/data`` plus overrides."""
    from r2mfnet.data.build import DataConfig

    if args.get("data"):
        from hydra import compose, initialize_config_dir

        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("config", overrides=[f"data={args['data']}", *data_overrides])
        data = cfg.data
    else:
        if "data" not in stored:
            raise ConfigError("the checkpoint stores no data config: pass data=<name> or manifest=PATH")
        data = OmegaConf.merge(stored["data"], OmegaConf.from_dotlist([o[len("data."):] for o in data_overrides]))
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DataConfig), data))


def evaluate_from_cli(argv: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` arguments, evaluate, print the summary tables."""
    from r2mfnet.data.build import load_splits
    from r2mfnet.data.manifest import load_manifest
    from r2mfnet.evaluation.evaluate import evaluate_records, print_summary
    from r2mfnet.inference.predictor import Predictor
    from r2mfnet.training.checkpoint import load_checkpoint

    bad = [a for a in argv if "=" not in a]
    if bad:
        raise ConfigError(f"arguments must be key=value, got {bad}; e.g. checkpoint=outputs/.../best.pt")
    data_overrides = [a for a in argv if a.startswith("data.")]
    args = OmegaConf.to_container(OmegaConf.from_dotlist([a for a in argv if not a.startswith("data.")]))
    unknown = sorted(set(args) - OPTIONS)  # type: ignore[arg-type]
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown}; known: {sorted(OPTIONS)}")
    if not args.get("checkpoint"):
        raise ConfigError("checkpoint=PATH is required (a best.pt written by scripts/train.py)")
    checkpoint = Path(str(args["checkpoint"]))
    state = load_checkpoint(checkpoint)
    split = str(args.get("split", "test"))
    if args.get("manifest"):
        records = load_manifest(Path(str(args["manifest"])))
        if split != "all":
            records = [r for r in records if (r.split or split) == split]
    else:
        data = _data_config(args, state.get("config", {}), data_overrides)
        splits = load_splits(data)
        if split == "all":
            records = splits["train"] + splits["val"] + splits["test"]
        elif split in splits:
            records = splits[split]
        else:
            raise ConfigError(f"split must be train, val, test or all, got '{split}'")
    default_out = checkpoint.parent.parent / f"eval_{split}" if checkpoint.parent.name == "checkpoints" else Path(f"eval_{split}")
    output_dir = Path(str(args.get("output_dir") or default_out))
    predictor = Predictor.from_checkpoint(
        checkpoint, tta_flip=bool(args.get("tta_flip", False)), device=args.get("device"),
        threshold=float(args.get("threshold", 0.5)),
    )
    summary = evaluate_records(
        predictor, records, output_dir, tau=float(args.get("tau", 2.0)),
        tau_fraction=args.get("tau_fraction"), worst_cases=int(args.get("worst_cases", 4)),
        progress=bool(args.get("progress", True)),
    )
    print(f"\n{len(records)} views of split '{split}' evaluated; results in {output_dir}\n")
    print(print_summary(summary))
    return summary

"""One training run from a composed config: validate, build data and model, train, evaluate.

This is what ``scripts/train.py`` calls; tests call it too, with the real configs composed by
Hydra and tiny overrides.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from r2mfnet.training.run_config import RunConfig, build_model, validate
from r2mfnet.data.build_datasets import build_dataset, load_splits, preprocess_spec, resolve_manifest
from r2mfnet.errors import ConfigError
from r2mfnet.training import distributed
from r2mfnet.checkpoint import load_checkpoint
from r2mfnet.training.losses import DiceCELoss
from r2mfnet.training.trainer import Trainer, TrainResult, seed_everything

log = logging.getLogger("r2mfnet.run")


def resolve_run_dir(run: RunConfig, hydra_run_dir: Path) -> Path:
    """Where outputs go. A resumed run continues in the folder of the checkpoint it resumes,
    so that one run keeps one folder (checkpoints, TensorBoard, evaluation).
    ``trainer.resume=auto`` resumes ``<hydra run dir>/checkpoints/latest.pt`` if present; that
    file is opened here too, so that a corrupt or refused (code-carrying) one stops the run
    before any data is prepared, as an explicit ``trainer.resume=PATH`` does."""
    resume = run.trainer.resume
    if resume == "auto":
        candidate = hydra_run_dir / "checkpoints" / "latest.pt"
        run.trainer.resume = str(candidate) if candidate.exists() else None
        if run.trainer.resume is not None:
            load_checkpoint(candidate)
        return hydra_run_dir
    if resume:
        path = Path(resume)
        load_checkpoint(path)  # fail now, clearly, if it is missing or corrupt
        return path.parent.parent if path.parent.name == "checkpoints" else hydra_run_dir
    return hydra_run_dir


def train(cfg: DictConfig | dict, hydra_run_dir: str | Path,
          relocate_records: Callable[[Path, Path], None] | None = None) -> dict[str, Any]:
    """Train and (optionally) evaluate; returns ``{"train": TrainResult, "summary": ...}``.

    ``relocate_records(hydra_run_dir, run_dir)`` is called (on rank 0) when the run continues in
    another folder than ``hydra_run_dir`` (a resume): the command-line application passes the
    function that moves what Hydra already wrote there, which this module knows nothing about."""
    run = validate(cfg)
    run_dir = resolve_run_dir(run, Path(hydra_run_dir))
    seed_everything(run.trainer.seed)  # before the model exists: its initial weights depend on it
    model = build_model(run.model)  # model keyword errors surface before any data work
    device_type = "cuda" if run.trainer.device in ("auto", "cuda") and _cuda() else "cpu"
    dist_info = distributed.setup(run.trainer.strategy, device_type)
    if dist_info.enabled:  # one output folder and one resume decision for all ranks: rank 0's
        shared_dir, run.trainer.resume = distributed.broadcast_object((str(run_dir), run.trainer.resume))  # type: ignore[misc]
        if Path(shared_dir) != run_dir and Path(hydra_run_dir).is_dir() and not any(Path(hydra_run_dir).iterdir()):
            with contextlib.suppress(OSError):
                Path(hydra_run_dir).rmdir()  # this rank's own (empty) timestamped Hydra folder
        run_dir = Path(shared_dir)
    if run_dir != Path(hydra_run_dir) and dist_info.is_main and relocate_records is not None:
        relocate_records(Path(hydra_run_dir), run_dir)  # only rank 0 writes a log and .hydra:
                                                         # two ranks moving them would race
    try:
        with distributed.main_process_first():  # rank 0 generates / prepares the data once
            manifest = resolve_manifest(run.data)
        splits = load_splits(run.data, manifest)
        if not splits["train"]:
            raise ConfigError(f"the training split of '{manifest}' is empty")
        train_set = build_dataset(splits["train"], run.data, train=True, seed=run.trainer.seed)
        val_set = build_dataset(splits["val"], run.data, train=False) if splits["val"] else None
        # Decode and letterbox every image once, here, before DataLoader workers fork: they then
        # share the cache instead of each rebuilding (and discarding) its own copy every epoch.
        for dataset in (train_set, val_set):
            if dataset is not None:
                dataset.preload()
        log.info(
            "data: %s | train %d, val %d, test %d views | model %s (%.2fM parameters) | run dir %s",
            manifest, len(splits["train"]), len(splits["val"]), len(splits["test"]),
            run.model["name"], sum(p.numel() for p in model.parameters()) / 1e6, run_dir,
        )
        loss = DiceCELoss(
            run.loss.dice_weight, run.loss.ce_weight,
            {"logits": run.loss.fine_weight, "coarse_logits": run.loss.coarse_weight},
            gap_weight=run.loss.gap_weight, gap_kernel=run.loss.gap_kernel,
        )
        trainer = Trainer(
            model, train_set, val_set, run.trainer, run_dir,
            batch_size=run.data.batch_size, num_workers=run.data.num_workers, loss=loss,
            preprocess=preprocess_spec(run.data),
            run_config=OmegaConf.to_container(OmegaConf.structured(run), resolve=True),  # type: ignore[arg-type]
            dist_info=dist_info,
            persistent_workers=run.data.persistent_workers, pin_memory=run.data.pin_memory,
        )
        result: TrainResult = trainer.fit()
        summary = None
        if run.evaluate_after_training and dist_info.is_main and result.best_checkpoint is not None:
            summary = evaluate_split(result.best_checkpoint, splits, run, run_dir / "eval")
        return {"train": result, "summary": summary, "run_dir": run_dir}
    finally:
        distributed.teardown()


def evaluate_split(checkpoint: Path, splits: dict[str, list], run: RunConfig, out_dir: Path) -> dict[str, Any] | None:
    """Evaluate ``checkpoint`` on ``run.eval.split`` at original resolution and print the tables."""
    from r2mfnet.evaluation.score_views import evaluate_records, print_summary
    from r2mfnet.inference import build_predictor

    records = splits.get(run.eval.split) or []
    if not records:
        log.warning("split '%s' is empty: no final evaluation", run.eval.split)
        return None
    predictor = build_predictor(  # the eval section holds the predictor keys (tta_flip, threshold, ...)
        vars(run.eval), checkpoint=str(checkpoint),
        device="cuda" if run.trainer.device != "cpu" and _cuda() else "cpu")
    summary = evaluate_records(
        predictor, records, out_dir, tau=run.eval.tau, tau_mm=run.eval.tau_mm,
        tau_height_fraction=run.eval.tau_height_fraction,
        worst_cases=run.eval.worst_cases, progress=run.trainer.progress,
    )
    print(f"\nHeld-out '{run.eval.split}' split ({len(records)} views), checkpoint {checkpoint}:\n")
    print(print_summary(summary))
    return summary


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()

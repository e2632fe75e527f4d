"""The training loop: short on purpose.

Stage planning (:mod:`stages`), checkpoint files (:mod:`r2mfnet.checkpoint`), the batch order
(:mod:`sampler`), the optimiser (:mod:`optim`), early stopping, TensorBoard and DDP plumbing live
beside this loop, so what is left here reads top to bottom as a skeleton of named steps, none
longer than a screen: ``fit`` -> ``_run_stage`` (switch the model, optimiser, schedule) ->
``_train_epoch`` (``_train_step`` per batch, then ``_checkpoint_or_stop``) -> ``_end_epoch``
(validate, best and latest checkpoints). Everything a resumed run needs to continue bit-identically (weights, optimiser, scheduler,
scaler, RNG states, early-stopping state and the position inside the epoch) goes into
``latest.pt``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from r2mfnet.atomic import atomic_write_json
from r2mfnet.models.base import SegmentationModel
from r2mfnet.errors import ConfigError, TrainingError, TrainingInterrupted
from r2mfnet.inference.postprocess import foreground_probability, probabilities
from r2mfnet.training import distributed
from r2mfnet.checkpoint import (
    load_checkpoint, model_change, model_config_of, save_checkpoint, unwrap,
)
from r2mfnet.training.config import TrainerConfig
from r2mfnet.training.early_stopping import EarlyStopping
from r2mfnet.training.epoch_data import EpochIndexed
from r2mfnet.training.losses import DiceCELoss
from r2mfnet.training.optim import build_optimizer
from r2mfnet.training.sampler import EpochSampler
from r2mfnet.training.schedule import build_scheduler
from r2mfnet.training.stages import Stage, apply_stage, plan_stages, trainable_parameters
from r2mfnet.training.tb_logging import TensorBoardLogger
from r2mfnet.training.validation import dice_per_image, vertebra_f1_per_image

log = logging.getLogger("r2mfnet.train")

EPOCH_KEY_STRIDE = 100_000
"""Epoch keys ``stage * STRIDE + epoch`` seed the data order and augmentation of each epoch."""


@dataclass
class TrainResult:
    """What a finished run leaves behind."""

    run_dir: Path
    best_checkpoint: Path | None
    latest_checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


@dataclass
class _StageRun:
    """What the steps of one stage share: its place in the plan, the wrapped network (DDP /
    compile), and its optimiser, schedule and trainable parameters."""

    index: int
    stage: Stage
    final: bool
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    params: list[nn.Parameter]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("trainer.device=cuda but no CUDA device is available; use trainer.device=cpu")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise ConfigError(f"trainer.device must be auto, cpu or cuda, got '{name}'")
    return torch.device("cpu")


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full fp32. ``auto`` = bf16 (or fp16) on CUDA, off on CPU."""
    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("trainer.amp=fp16 needs CUDA; on CPU use trainer.amp=bf16 or off")
        return torch.float16
    raise ConfigError(f"trainer.amp must be auto, off, bf16 or fp16, got '{amp}'")


def _rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain values, so the checkpoint stays data
    (NumPy's key array is stored as an int64 tensor, not as a pickled NumPy array)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    kind, keys, *rest = state["numpy"]  # keys: a tensor (version 3) or a NumPy array (version 2)
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    torch.set_rng_state(state["torch"])
    np.random.set_state((kind, keys.astype(np.uint32), *rest))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _uses_target(net: nn.Module) -> bool:
    """Whether the model inside ``net`` (DDP / compile wrappers unwrapped) declared that its training
    forward takes the mask (:attr:`SegmentationModel.uses_target`). Validation never passes it: in
    eval mode a model must predict from the image alone."""
    model = unwrap(net)
    return isinstance(model, SegmentationModel) and model.uses_target


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _format_record(record: dict[str, Any]) -> str:
    parts = [f"{record['stage']} epoch {record['epoch']}", f"step {record['step']}",
             f"loss {record['train_loss']:.4f}"]
    parts += [f"val {k[4:]} {v:.4f}" for k, v in record.items() if k.startswith("val_")]
    parts.append(f"{record['seconds']:.0f}s")
    if "cpu_seconds" in record:
        parts.append(f"cpu {record['cpu_seconds'] / 60:.1f} min")
    return " | ".join(parts)


class _StopSignal:
    """Turns SIGINT/SIGTERM into a flag checked between optimiser steps."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopSignal":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.reason = signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """Trains one model on one dataset split; see the module docstring for the shape of the loop."""

    def __init__(
        self,
        model: nn.Module,
        train_set: Dataset,
        val_set: Dataset | None,
        config: TrainerConfig,
        run_dir: str | Path,
        batch_size: int = 4,
        num_workers: int = 0,
        loss: nn.Module | None = None,
        preprocess: dict[str, Any] | None = None,
        run_config: dict[str, Any] | None = None,
        dist_info: distributed.DistInfo | None = None,
        persistent_workers: bool = False,
        pin_memory: bool | None = None,
    ) -> None:
        self.cfg = config
        self.dist = dist_info or distributed.DistInfo()
        self.device = resolve_device(config.device, self.dist.local_rank)
        self.amp_dtype = resolve_amp(config.amp, self.device)
        self.model = model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.dist.enabled and self.device.type == "cuda":  # SyncBatchNorm has no CPU kernel
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.train_set = train_set
        self.val_set = val_set
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.loss_fn = loss or DiceCELoss()
        self.preprocess = dict(preprocess or {})
        self.run_config = dict(run_config or {})
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.stages = plan_stages(self.model, config)
        self.sampler = EpochSampler(
            len(train_set), seed=config.seed, shuffle=True, rank=self.dist.rank, world_size=self.dist.world_size,
            with_epoch=True,  # the epoch travels with each index: persistent workers stay exact
        )
        self.loader = DataLoader(
            EpochIndexed(train_set),
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=num_workers,
            pin_memory=self.device.type == "cuda" if pin_memory is None else bool(pin_memory),
            persistent_workers=bool(persistent_workers) and num_workers > 0,
            drop_last=False,
            # Its own generator: starting an epoch's iterator draws a worker base seed, and from the
            # global generator that draw would land after the restored state on a mid-epoch resume,
            # shifting every later global draw (the fine_crop box jitter) against an uninterrupted run.
            generator=torch.Generator().manual_seed(config.seed),
        )
        self.samples_seen = 0
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.early = EarlyStopping(config.early_stopping_patience, config.early_stopping_min_delta)
        self.logger = TensorBoardLogger(self.run_dir / "tensorboard" if self.dist.is_main else None)
        self.global_step = 0
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ checkpoints
    def _state(self, stage_index: int, epoch: int, batch: int, optimizer, scheduler) -> dict[str, Any]:
        return {
            "model_config": dict(unwrap(self.model).model_config),
            "model": unwrap(self.model).state_dict(),
            "preprocess": self.preprocess,
            "config": self.run_config,
            "position": {"stage": stage_index, "epoch": epoch, "batch": batch},
            "stages": [s.name for s in self.stages],
            "global_step": self.global_step,
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "early_stopping": self.early.state_dict(),
            "rng": _rng_state(),
            "history": self.history,
        }

    def _save_latest(self, stage_index: int, epoch: int, batch: int, optimizer, scheduler) -> Path:
        path = self.ckpt_dir / "latest.pt"
        if self.dist.is_main:
            save_checkpoint(path, self._state(stage_index, epoch, batch, optimizer, scheduler))
        return path

    def _save_best(self, stage: Stage, metrics: dict[str, float], final_stage: bool) -> None:
        if not self.dist.is_main:
            return
        state = {
            "model_config": dict(unwrap(self.model).model_config),
            "model": unwrap(self.model).state_dict(),
            "preprocess": self.preprocess,
            "config": self.run_config,
            "stage": stage.name,
            "metrics": metrics,
            "global_step": self.global_step,
        }
        save_checkpoint(self.ckpt_dir / f"best_{stage.name}.pt", state)
        if final_stage:
            save_checkpoint(self.ckpt_dir / "best.pt", state)

    def _restore(self, path: str | Path) -> dict[str, Any]:
        state = load_checkpoint(path, map_location=self.device)
        if "position" not in state:
            raise ConfigError(f"'{path}' is a best/weights-only checkpoint; resume needs latest.pt")
        if state.get("stages") != [s.name for s in self.stages]:
            raise ConfigError(
                f"'{path}' was trained with stages {state.get('stages')} but this config plans "
                f"{[s.name for s in self.stages]}: resume with the same model and trainer options"
            )
        change = model_change(model_config_of(state), dict(unwrap(self.model).model_config))
        if change:
            raise ConfigError(
                f"'{path}' was trained with a different model ({change}): resume with the same model options"
            )
        unwrap(self.model).load_state_dict(state["model"])
        self.global_step = int(state["global_step"])
        self.history = list(state.get("history", []))
        self.scaler.load_state_dict(state["scaler"])
        self.early.load_state_dict(state["early_stopping"])
        _set_rng_state(state["rng"])
        return state

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        image = batch["image"].to(self.device, non_blocking=True)
        if self.cfg.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        target = batch["labels"] if "labels" in batch else batch["mask"]  # vertebra classes when the dataset gives them
        return image, target.to(self.device, non_blocking=True)

    def _train_step(self, net: nn.Module, batch, optimizer, scheduler, params) -> float | None:
        image, mask = self._to_device(batch)
        with self._autocast():
            outputs = net(image, target=mask) if _uses_target(net) else net(image)
        loss = self.loss_fn(outputs, mask)
        if not torch.isfinite(loss):
            optimizer.zero_grad(set_to_none=True)
            if self.cfg.on_nonfinite == "skip":
                return None
            raise TrainingError(
                f"non-finite loss ({loss.item()}) at global step {self.global_step}; the last good "
                f"checkpoint is kept at '{self.ckpt_dir / 'latest.pt'}'. Lower trainer.lr, check the "
                "data, or set trainer.on_nonfinite=skip to skip such batches"
            )
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
        scheduler.step()
        return float(loss.detach())

    @torch.no_grad()
    def validate(self, net: nn.Module) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        """Dice per validation image at the model's input size (the final evaluation is done at
        original resolution by :mod:`r2mfnet.evaluation`). Each rank takes a shard; rows are gathered."""
        was_training = net.training
        net.eval()
        rows: list[tuple[str, float, float, float | None, float]] = []  # view, Dice, loss, union Dice, vertebra F1
        shown: dict[str, list[torch.Tensor]] = {"image": [], "prob": [], "mask": []}
        indices = list(range(self.dist.rank, len(self.val_set), self.dist.world_size))
        for start in range(0, len(indices), self.batch_size):
            items = [self.val_set[i] for i in indices[start : start + self.batch_size]]
            batch = torch.utils.data.default_collate(items)
            image, mask = self._to_device(batch)
            with self._autocast():
                outputs = net(image)
            logits = outputs["logits"].float()
            loss = self.loss_fn({"logits": logits}, mask)
            scores = dice_per_image(logits, mask)
            union = scores["dice_union"].tolist() if "dice_union" in scores else [None] * len(logits)
            separated = vertebra_f1_per_image(logits, mask)
            for view, d, u, v in zip(batch["view"], scores["dice"].tolist(), union, separated):
                rows.append((view, d, float(loss), u, v))
            if len(shown["image"]) < self.cfg.log_images:
                shown["image"].append(batch["image"][:1].cpu())
                fg = foreground_probability(probabilities(logits[:1]))
                shown["prob"].append(fg.cpu())  # foreground probability (classes: 1 - background)
                shown["mask"].append(batch["mask"][:1].float().cpu())
        all_rows = [r for part in distributed.all_gather_objects(rows) for r in part]  # type: ignore[union-attr]
        net.train(was_training)  # a staged model keeps its frozen part in eval mode itself
        metrics: dict[str, float] = {
            "dice": float(np.mean([r[1] for r in all_rows])) if all_rows else float("nan"),
            "loss": float(np.mean([r[2] for r in all_rows])) if all_rows else float("nan"),
            "vertebra_f1": float(np.mean([r[4] for r in all_rows])) if all_rows else float("nan"),
        }
        unions = [r[3] for r in all_rows if r[3] is not None]
        if unions:  # vertebra classes: "dice" is the per-class mean, the union Dice beside it
            metrics["dice_union"] = float(np.mean(unions))
        for view in sorted({r[0] for r in all_rows}):
            metrics[f"dice/{view}"] = float(np.mean([r[1] for r in all_rows if r[0] == view]))
        pictures = {k: torch.cat(v) if v else torch.empty(0) for k, v in shown.items()}
        return metrics, pictures

    # ------------------------------------------------------------------ the loop
    def _wrap(self, stage: Stage) -> nn.Module:
        net: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(self.model, device_ids=device_ids)
        if self.cfg.compile:
            if self.cfg.compile_cache_dir:
                import os

                # set, not setdefault: torch may already have filled in its default (/tmp/torchinductor_<user>)
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.abspath(os.path.expanduser(self.cfg.compile_cache_dir))
            net = torch.compile(net)
        return net

    def _batches(self, epoch_key: int, start_batch: int) -> Iterator[dict[str, Any]]:
        self.sampler.set_epoch(epoch_key, start_index=start_batch * self.batch_size)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch_key)
        return iter(self.loader)

    def fit(self) -> TrainResult:
        """Run every stage to its budget (or early stop); return where the results are."""
        started = time.perf_counter()
        resume_state = self._start()
        self._clock = (time.perf_counter(), time.process_time())  # set-up before the first epoch not counted
        first = resume_state["position"]["stage"] if resume_state else 0
        with _StopSignal() as stop:
            for stage_index in range(first, len(self.stages)):
                self._run_stage(stage_index, resume_state if stage_index == first else None, stop, started)
            if self.dist.is_main:
                atomic_write_json(self.run_dir / "train_history.json", self.history)
        log.info("rank %d/%d: trained on %d samples in %d steps", self.dist.rank, self.dist.world_size,
                 self.samples_seen, self.global_step)
        self.logger.close()
        best = self.ckpt_dir / "best.pt"
        return TrainResult(
            run_dir=self.run_dir,
            best_checkpoint=best if best.exists() else None,
            latest_checkpoint=self._latest,
            history=self.history,
            steps=self.global_step,
            seconds=time.perf_counter() - started,
        )

    def _start(self) -> dict[str, Any] | None:
        """Restore ``trainer.resume`` (returning its state) or seed a fresh run (returning None)."""
        state = None
        if self.cfg.resume:
            state = self._restore(self.cfg.resume)
            log.info("rank %d/%d: resumed from %s at %s", self.dist.rank, self.dist.world_size,
                     self.cfg.resume, state["position"])
        else:
            seed_everything(self.cfg.seed)
        samples = len(self.sampler.rank_indices())
        self.steps_per_epoch = math.ceil(samples / self.batch_size)
        log.info("rank %d/%d: %d training samples per epoch in %d steps of %d", self.dist.rank,
                 self.dist.world_size, samples, self.steps_per_epoch, self.batch_size)
        return state

    def _run_stage(self, stage_index: int, resume_state: dict[str, Any] | None, stop: "_StopSignal",
                   started: float) -> None:
        """One stage: switch the model, build its optimiser and schedule, train its epochs, then
        return to its best weights for the next stage."""
        cfg = self.cfg
        stage = self.stages[stage_index]
        apply_stage(self.model, stage, train=True)
        params = trainable_parameters(self.model, stage)
        optimizer = build_optimizer(cfg.optimizer, params, cfg.lr, cfg.weight_decay, cfg.momentum)
        scheduler = build_scheduler(
            optimizer, total_steps=stage.epochs * self.steps_per_epoch, warmup_steps=cfg.warmup_steps,
            kind=cfg.schedule, min_factor=cfg.min_lr_factor, power=cfg.poly_power,
        )
        start_epoch, start_batch = 0, 0
        if resume_state is not None:
            if resume_state["optimizer"] is not None:
                optimizer.load_state_dict(resume_state["optimizer"])
                scheduler.load_state_dict(resume_state["scheduler"])
            start_epoch, start_batch = resume_state["position"]["epoch"], resume_state["position"]["batch"]
        else:
            self.early.reset()
        run = _StageRun(stage_index, stage, stage_index == len(self.stages) - 1,
                        self._wrap(stage), optimizer, scheduler, params)
        for epoch in range(start_epoch, stage.epochs):
            epoch_started = time.perf_counter()
            losses = self._train_epoch(run, epoch, start_batch if epoch == start_epoch else 0, stop)
            if self._end_epoch(run, epoch, losses, started, epoch_started):
                break
        if not run.final:
            self._load_stage_best(stage)

    def _train_epoch(self, run: "_StageRun", epoch: int, start_batch: int, stop: "_StopSignal") -> list[float]:
        """Train one epoch from ``start_batch``; return the losses of the steps that counted."""
        batches = self._batches(run.index * EPOCH_KEY_STRIDE + epoch, start_batch)
        bar = None
        if self.dist.is_main and self.cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.steps_per_epoch, initial=start_batch, leave=False, dynamic_ncols=True,
                       desc=f"{run.stage.name} {epoch + 1}/{run.stage.epochs}")
        losses: list[float] = []
        try:
            for batch_index, batch in enumerate(batches, start=start_batch):
                loss = self._train_step(run.net, batch, run.optimizer, run.scheduler, run.params)
                self.global_step += 1
                self.samples_seen += len(batch["index"])
                if loss is not None:
                    losses.append(loss)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}" if loss is not None else "skipped")
                if self.cfg.log_every_steps and self.global_step % self.cfg.log_every_steps == 0 and loss is not None:
                    self.logger.scalars({f"train/loss_{run.stage.name}": loss,
                                         "train/lr": run.optimizer.param_groups[0]["lr"]}, self.global_step)
                self._checkpoint_or_stop(run, epoch, batch_index, stop)
        finally:
            if bar is not None:
                bar.close()
        return losses

    def _checkpoint_or_stop(self, run: "_StageRun", epoch: int, batch_index: int, stop: "_StopSignal") -> None:
        """After a step: the periodic mid-epoch ``latest.pt``; on a signal or ``max_steps``, a
        resumable ``latest.pt`` and :class:`TrainingInterrupted`."""
        cfg = self.cfg
        reason = self._agreed_stop(stop.reason) or (
            "trainer.max_steps reached" if cfg.max_steps and self.global_step >= cfg.max_steps else None
        )
        every = cfg.checkpoint_every_steps
        if reason or (every and self.global_step % every == 0):
            self._latest = self._save_latest(run.index, epoch, batch_index + 1, run.optimizer, run.scheduler)
        if reason:
            self.logger.close()
            if self.dist.enabled:  # no rank exits (and gets the job killed) before latest.pt is written
                torch.distributed.barrier()
            raise TrainingInterrupted(self._latest, reason)

    def _end_epoch(self, run: "_StageRun", epoch: int, losses: list[float], started: float,
                   epoch_started: float) -> bool:
        """Record the epoch, validate, keep the best and latest checkpoints; True = stop the stage."""
        loss_sum = distributed.all_reduce_sum(  # the epoch's mean loss over all ranks
            torch.tensor([float(np.sum(losses)), len(losses)], dtype=torch.float64, device=self.device)
        ).cpu()
        record: dict[str, Any] = {
            "stage": run.stage.name, "epoch": epoch + 1, "step": self.global_step,
            "train_loss": float(loss_sum[0] / loss_sum[1]) if loss_sum[1] > 0 else float("nan"),
            "lr": run.optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started,
            "epoch_seconds": time.perf_counter() - epoch_started,
        }
        has_val = self.val_set is not None and len(self.val_set) > 0
        if has_val and ((epoch + 1) % max(1, self.cfg.val_every) == 0 or epoch + 1 == run.stage.epochs):
            metrics, pictures = self.validate(run.net)
            record.update({f"val_{k}": v for k, v in metrics.items()})
            self.logger.scalars({f"val/{k}": v for k, v in metrics.items()}, self.global_step)
            self.logger.overlays(f"val/{run.stage.name}", pictures["image"], pictures["prob"],
                                 pictures["mask"], self.global_step)
            if self.early.step(metrics["dice"]):
                self._save_best(run.stage, metrics, run.final)
        elif not has_val:
            self._save_best(run.stage, {}, run.final)  # no validation: the last is the best
        self._add_clock(record)
        self.logger.scalars({"time/elapsed_minutes": record["elapsed_seconds"] / 60,
                             "time/cpu_minutes": record["cpu_seconds"] / 60}, self.global_step)
        self.history.append(record)
        stop_stage = self.early.should_stop
        self._latest = self._save_latest(run.index, run.stage.epochs if stop_stage else epoch + 1, 0,
                                         run.optimizer, run.scheduler)
        if self.dist.is_main:
            log.info(_format_record(record))
        return stop_stage

    _latest: Path | None = None
    _clock: tuple[float, float] | None = None

    def _add_clock(self, record: dict[str, Any]) -> None:
        """Cumulative wall and CPU seconds of the run up to this epoch's end, validation included,
        carried over a resume through the saved history: with the validation scores beside them,
        every run's history is a Dice-against-time curve. CPU time is this process's (all its
        threads; DataLoader worker processes are not counted)."""
        wall, cpu = time.perf_counter(), time.process_time()
        since_wall, since_cpu = self._clock if self._clock else (wall, cpu)
        last = self.history[-1] if self.history else {}
        record["elapsed_seconds"] = float(last.get("elapsed_seconds", 0.0)) + wall - since_wall
        record["cpu_seconds"] = float(last.get("cpu_seconds", 0.0)) + cpu - since_cpu
        self._clock = (wall, cpu)

    def _agreed_stop(self, reason: str | None) -> str | None:
        """Under DDP a signal may reach the ranks at different steps: stop all of them at the same
        step (one tiny all-reduce per step), or the others would wait for this one forever."""
        if not self.dist.enabled:
            return reason
        flag = distributed.all_reduce_sum(torch.tensor([1.0 if reason else 0.0], device=self.device))
        return (reason or "stop signal on another rank") if float(flag[0]) > 0 else None

    def _load_stage_best(self, stage: Stage) -> None:
        """Before the next stage, go back to this stage's best weights (the coarse prior the fine
        network will learn to refine should be the best one, not the last)."""
        path = self.ckpt_dir / f"best_{stage.name}.pt"
        if self.dist.enabled:
            torch.distributed.barrier()
        if path.exists():
            state = load_checkpoint(path, map_location=self.device)
            unwrap(self.model).load_state_dict(state["model"])

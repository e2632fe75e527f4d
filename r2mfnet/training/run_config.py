"""The whole run configuration's schema, and its validation at start-up.

Hydra composes ``configs/``; :func:`validate` merges the result into these dataclasses so that an
unknown key or a wrong type fails immediately with the key's full name, before any data is read
or any output written. The model group stays a free mapping (each model has its own keyword
arguments); :func:`build_model` turns a bad model keyword into the same kind of error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig

from r2mfnet.training.config_checks import check_values
from r2mfnet.data.build_datasets import DataConfig
from r2mfnet.errors import ConfigError
from r2mfnet.inference.postprocess import CleanupParams
from r2mfnet.training.config import TrainerConfig
from r2mfnet.typed_config import merge_typed


@dataclass
class LossConfig:
    dice_weight: float = 1.0
    ce_weight: float = 1.0
    fine_weight: float = 1.0  # weight of the final output ("logits")
    coarse_weight: float = 0.5  # weight of R2MF-Net's coarse output when it is trained
    gap_weight: float = 0.0  # extra cross-entropy weight on gaps between vertebrae (0 = off; losses.py)
    gap_kernel: int = 5  # closing window (pixels at the input size) that defines a gap; odd


@dataclass
class EvalConfig:
    split: str = "test"
    tta_flip: bool = False
    # Boundary-F1 tolerance (docs/metrics.md): `tau` pixels if set (2.0 = the older fixed 2 px),
    # else `tau_mm` where the pixel spacing is known (null: never), else a fraction of the height.
    tau: Optional[float] = None
    tau_mm: Optional[float] = 2.5
    tau_height_fraction: float = 0.005
    worst_cases: int = 4
    threshold: float = 0.5
    postprocess: bool = True  # anatomy-aware clean-up of evaluated/predicted masks (not validation)
    cleanup: CleanupParams = field(default_factory=CleanupParams)  # its parameters

    def __post_init__(self) -> None:
        """Reject a bad tolerance at start-up (ConfigError naming the key), not after training."""
        from r2mfnet.evaluation.tolerance import BoundaryTolerance

        BoundaryTolerance(px=self.tau, mm=self.tau_mm, height_fraction=self.tau_height_fraction)


@dataclass
class RunConfig:
    name: str = "run"
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    evaluate_after_training: bool = True


def validate(cfg: DictConfig | dict) -> RunConfig:
    """Check ``cfg`` against :class:`RunConfig`; return a typed copy or raise :class:`ConfigError`."""
    run = merge_typed(RunConfig, cfg)  # the one validation path of every command
    if "name" not in run.model:
        raise ConfigError("model.name is missing: choose a model group, e.g. model=r2mfnet or model=unet")
    check_values(run)
    _check_labels(run)
    return run


def _check_labels(run: RunConfig) -> None:
    """``data.labels`` and ``model.num_classes`` must agree (binary: 1, vertebrae: 18)."""
    from r2mfnet.data.labels import NUM_VERTEBRA_CLASSES

    labels = run.data.labels
    if labels not in ("binary", "vertebrae"):
        raise ConfigError(f"data.labels must be 'binary' or 'vertebrae', got '{labels}'")
    classes = run.model.get("num_classes", 1)
    if labels == "vertebrae" and classes != NUM_VERTEBRA_CLASSES:
        raise ConfigError(
            f"data.labels=vertebrae needs model.num_classes={NUM_VERTEBRA_CLASSES} (background + T1..L5), "
            f"got {classes}; use experiment=vertebrae or set both"
        )
    if labels == "binary" and classes != 1:
        raise ConfigError(
            f"model.num_classes={classes} needs class labels: set data.labels=vertebrae "
            f"(and num_classes={NUM_VERTEBRA_CLASSES}), or keep num_classes=1 for binary masks"
        )


def build_model(model_cfg: dict[str, Any]):
    """``models.create`` with configuration mistakes reported as :class:`ConfigError`."""
    from r2mfnet.models import create, model_class

    kwargs = dict(model_cfg)
    name = kwargs.pop("name")
    model_class(name)  # ConfigError: an unknown name, or a peer whose optional extra is missing
    try:
        return create(name, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"model '{name}': {exc} (check the model.* keys)") from None

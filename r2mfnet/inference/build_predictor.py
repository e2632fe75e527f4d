"""One way to build a predictor: from a predictor config section, for every command and runner.

The section (:class:`PredictorConfig`; :class:`TorchPredictorConfig` is its checkpoint-only
part, the predictor piece of the commands that need PyTorch anyway) says where the model comes
from (a trainer checkpoint, or an exported ONNX file with ``backend=onnx``) and how masks are
made from it (threshold, flip TTA, clean-up, device); ``ensemble`` lists further checkpoints
whose probabilities are averaged with it (:mod:`r2mfnet.inference.ensemble`). The commands carry
these keys flat in their root config (``checkpoint=``, ``tta_flip=``, ...; their schemas take the
fields from these dataclasses, :mod:`r2mfnet.apps.schema`), the training run in ``eval.*``;
either mapping, or a command's typed config, is read here, so the keys mean the same everywhere
and the library's defaults are written once, in these dataclasses.

No torch import at module level: ``backend=onnx`` must work without PyTorch installed.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, List, Mapping, Optional

from r2mfnet.errors import ConfigError
from r2mfnet.inference.postprocess import CleanupParams

BACKENDS = ("torch", "onnx")


@dataclass
class TorchPredictorConfig:
    """The predictor keys of a command that reads a trainer checkpoint (PyTorch only)."""

    checkpoint: Optional[str] = None  # a best.pt written by r2mfnet-train
    device: Optional[str] = None  # cpu | cuda | null (cuda when present)
    threshold: float = 0.5  # probability above which a pixel is spine
    tta_flip: bool = False  # average with the horizontally flipped prediction
    postprocess: bool = True  # anatomy-aware mask clean-up (inference/postprocess.clean_mask)
    cleanup: CleanupParams = field(default_factory=CleanupParams)  # its parameters
    # further checkpoints whose probabilities are averaged with checkpoint's (r2mfnet.inference.ensemble);
    # checkpoint stays the one that sets the input size, the data split and the model config
    ensemble: List[str] = field(default_factory=list)


@dataclass
class PredictorConfig(TorchPredictorConfig):
    """The predictor section: model source, post-processing and where it runs (either backend)."""

    backend: str = "torch"  # torch | onnx (ONNX Runtime, no PyTorch needed; docs/deploy.md)
    onnx_model: Optional[str] = None  # backend=onnx: an .onnx file written by r2mfnet-export
    threads: int = 0  # backend=onnx: ONNX Runtime intra-op threads (0 = its default)


FIELDS = tuple(f.name for f in fields(PredictorConfig))


def predictor_config(section: Mapping[str, Any] | TorchPredictorConfig | None = None,
                     **overrides: Any) -> PredictorConfig:
    """A typed :class:`PredictorConfig` from the predictor keys of ``section`` (other keys are the
    command's own and ignored; absent or null ``cleanup`` means the defaults) and ``overrides``.
    A wrongly typed value is a :class:`ConfigError` naming the key."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = OmegaConf.structured(PredictorConfig)
    if is_dataclass(section):  # a command's typed config: its predictor fields
        picked: dict[str, Any] = {k: getattr(section, k) for k in FIELDS if hasattr(section, k)}
    else:
        picked = {k: section[k] for k in FIELDS if section is not None and k in section}
    picked.update(overrides)
    if picked.get("cleanup") is None:
        picked.pop("cleanup", None)
    for key in ("checkpoint", "onnx_model"):
        if isinstance(picked.get(key), Path):
            picked[key] = str(picked[key])
    if isinstance(picked.get("ensemble"), (list, tuple)):
        picked["ensemble"] = [str(p) if isinstance(p, Path) else p for p in picked["ensemble"]]
    try:
        return OmegaConf.to_object(OmegaConf.merge(base, picked))  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "predictor"
        raise ConfigError(f"{key}: {str(exc).splitlines()[0]}") from None


def build_predictor(section: Mapping[str, Any] | TorchPredictorConfig | None = None, **overrides: Any) -> Any:
    """The predictor a :class:`PredictorConfig` section describes (``overrides`` win over it):
    a :class:`~r2mfnet.inference.predictor.Predictor` for ``backend=torch`` (``checkpoint``
    required), an :class:`~r2mfnet.inference.onnx_predictor.OnnxPredictor` for ``backend=onnx``
    (``onnx_model`` required). Both offer the mask, probability and label-map methods. A
    non-empty ``ensemble`` (``backend=torch`` only) gives an
    :class:`~r2mfnet.inference.ensemble.EnsemblePredictor` of ``checkpoint`` and those files."""
    cfg = predictor_config(section, **overrides)
    if cfg.backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got '{cfg.backend}'")
    if cfg.backend == "onnx":
        if cfg.ensemble:
            raise ConfigError("ensemble= is not supported with backend=onnx: an ensemble averages "
                              "PyTorch checkpoints (backend=torch checkpoint=... 'ensemble=[...]')")
        if not cfg.onnx_model:
            raise ConfigError("onnx_model= is required: backend=onnx needs onnx_model=PATH.onnx "
                              "(written by r2mfnet-export)")
        from r2mfnet.inference.onnx_predictor import OnnxPredictor

        return OnnxPredictor(cfg.onnx_model, threshold=cfg.threshold, tta_flip=cfg.tta_flip,
                             postprocess=cfg.postprocess, cleanup=cfg.cleanup, threads=cfg.threads)
    if not cfg.checkpoint:
        raise ConfigError("checkpoint= is required: a best.pt written by r2mfnet-train")
    if cfg.ensemble:
        from r2mfnet.inference.ensemble import EnsemblePredictor

        return EnsemblePredictor.from_checkpoints(
            [cfg.checkpoint, *cfg.ensemble], device=cfg.device, threshold=cfg.threshold,
            tta_flip=cfg.tta_flip, postprocess=cfg.postprocess, cleanup=cfg.cleanup)
    from r2mfnet.checkpoint import load_trained
    from r2mfnet.inference.predictor import Predictor

    return Predictor.from_loaded(load_trained(cfg.checkpoint), device=cfg.device, threshold=cfg.threshold,
                                 tta_flip=cfg.tta_flip, postprocess=cfg.postprocess, cleanup=cfg.cleanup)


__all__ = ["BACKENDS", "PredictorConfig", "TorchPredictorConfig", "build_predictor", "predictor_config"]

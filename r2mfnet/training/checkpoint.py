"""Checkpoints: written atomically, checked on load, and complete enough to rebuild the model.

A checkpoint is a dict saved with ``torch.save``. Its ``model_config`` (the registry name and
keyword arguments) and ``preprocess`` (input size, CLAHE) are all that
:func:`load_model` and the predictor need, in the manner of nnU-Net's self-describing
checkpoints. Training state (optimiser, scheduler, scaler, RNG, data position, early stopping)
rides along so that a run can resume exactly.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from r2mfnet.atomic import atomic_write
from r2mfnet.errors import CheckpointError

FORMAT = "r2mfnet-checkpoint"
VERSION = 2
"""2: R2MF-Net gained ``fine_residual`` (default on); version-1 R2MF-Net checkpoints predate it."""


def _payload_digest(buffer: bytes) -> str:
    return hashlib.sha256(buffer).hexdigest()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Save ``state`` to ``path`` atomically, with a SHA-256 of the payload for load-time checks.

    The payload is serialised once into memory, hashed, and written inside an envelope; a kill
    at any moment leaves the previous file intact because the envelope goes to a temporary file
    that is renamed over ``path`` only when complete.
    """
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buffer)
    payload = buffer.getvalue()
    envelope = {"format": FORMAT, "sha256": _payload_digest(payload), "payload": payload}
    return atomic_write(path, lambda tmp: torch.save(envelope, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and verify a checkpoint; any problem becomes a :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint '{path}' is empty (0 bytes): the write was interrupted")
    try:
        envelope = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged zip
        raise CheckpointError(
            f"checkpoint '{path}' is truncated or corrupted and cannot be read ({type(exc).__name__}); "
            "use the previous checkpoint (best.pt / latest.pt) or retrain"
        ) from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT or "payload" not in envelope:
        raise CheckpointError(f"'{path}' is not an r2mfnet checkpoint (no '{FORMAT}' envelope)")
    if _payload_digest(envelope["payload"]) != envelope.get("sha256"):
        raise CheckpointError(f"checkpoint '{path}' is corrupted: its checksum does not match its content")
    try:
        state = torch.load(io.BytesIO(envelope["payload"]), map_location=map_location, weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"checkpoint '{path}' payload cannot be read ({type(exc).__name__})") from None
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"checkpoint '{path}' has format version {state.get('version')}, newer than this "
            f"r2mfnet ({VERSION}); upgrade r2mfnet"
        )
    for key in ("model_config", "model"):
        if key not in state:
            raise CheckpointError(f"checkpoint '{path}' has no '{key}' entry")
    return state


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP / ``torch.compile`` wrappers (their state-dict keys differ)."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def model_config_of(state: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's model keyword arguments, with the meaning they had when it was written.

    A version-1 R2MF-Net checkpoint has no ``fine_residual`` key because its fine network
    predicted logits from scratch; rebuilding it with today's default (residual) would load
    without error and predict wrongly, so the old meaning is filled in explicitly.
    """
    config = dict(state["model_config"])
    if state.get("version", 0) < 2 and config.get("name") == "r2mfnet":
        config.setdefault("fine_residual", False)
    return config


def same_model(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Keys whose *meaning* differs between two model configs ([] = the same network).

    Keys that were added later are compared by what they resolve to: an R2MF-Net checkpoint
    written before ``coarse_classes`` existed had a coarse network with ``num_classes`` outputs,
    which is what ``coarse_classes: 1`` means for a binary model, so resuming it is allowed.
    """
    def resolved(config: dict[str, Any]) -> dict[str, Any]:
        out = dict(config)
        if out.get("name") == "r2mfnet":
            classes = out.get("num_classes", 1)
            out["coarse_classes"] = out.get("coarse_classes") or classes
            coords = out.get("fine_coords", False)
            out["fine_coords"] = classes > 1 if coords is None else coords
        return out

    a, b = resolved(saved), resolved(current)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def build_model_from_state(state: dict[str, Any], source: str = "checkpoint") -> nn.Module:
    """Instantiate the registry model described by ``state['model_config']`` and load its weights."""
    from r2mfnet.models import create

    config = model_config_of(state)
    try:
        model = create(**config)
        model.load_state_dict(state["model"])
    except Exception as exc:
        raise CheckpointError(f"{source}: cannot rebuild model {config}: {exc}") from None
    return model


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the trained model stored at ``path``, in eval mode.

    The preprocessing the model was trained with is attached as ``model.preprocess_config``.
    A checkpoint saved during the coarse stage (``best_coarse.pt``) holds a fine network that was
    never trained, so its model predicts with the coarse network alone; any other runs the whole
    cascade.
    """
    state = load_checkpoint(path, map_location=map_location)
    model = build_model_from_state(state, source=f"checkpoint '{path}'")
    model.preprocess_config = dict(state.get("preprocess", {}))
    if hasattr(model, "set_stage"):
        model.set_stage("coarse" if state.get("stage") == "coarse" else "joint")
    return model.eval()

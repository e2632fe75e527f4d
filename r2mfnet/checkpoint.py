"""Checkpoints: data, not code; written atomically, checked on load, complete enough to rebuild the model.

A checkpoint is a dict of tensors and plain values (numbers, text, lists, dicts) saved with
``torch.save``. Its ``model_config`` (the registry name and keyword arguments) and ``preprocess``
(input size, CLAHE) are all that :func:`load_trained` (a :class:`LoadedCheckpoint`: model,
preprocessing, config, stage) gives the predictor, the ONNX export and the benchmarks, in the manner of
nnU-Net's self-describing checkpoints. Training state (optimiser, scheduler, scaler, RNG, data
position, early stopping) rides along so that a run can resume exactly.

**Security rule.** Checkpoints travel between labs, papers and colleagues, and unpickling a file
can run any code its author put in it. Every load therefore uses ``torch.load(weights_only=True)``,
which only rebuilds tensors and plain containers; a file that asks for anything else is refused
*before* any of its objects is built, with a message naming what it asked for. Version-2 files
stored the NumPy random-generator state as a NumPy array; the three NumPy names needed to rebuild
an array of numbers are allowed so those files still load. A trusted file written some other way
can be converted once by its user: loaded with ``torch.load`` and ``weights_only=False`` by the
user's own hand (never by r2mfnet), then saved with :func:`save_trusted_state`.

This module sits below training, inference and evaluation (it imports only ``models``), so that
reading a checkpoint never pulls in the training package.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from r2mfnet.atomic import atomic_write
from r2mfnet.errors import CheckpointError
from r2mfnet.models.base import SegmentationModel

FORMAT = "r2mfnet-checkpoint"
VERSION = 3
"""2: R2MF-Net gained ``fine_residual`` (default on); version-1 R2MF-Net checkpoints predate it.
3: the NumPy RNG state is stored as plain values (no NumPy objects), so a checkpoint is tensors
and plain values only."""


def _numpy_array_globals() -> list[Any]:
    """The NumPy names a version-2 checkpoint's RNG state needs: rebuilding an array of numbers
    (``_reconstruct``, ``ndarray``, ``dtype`` and the dtype's class), nothing that can run code.
    NumPy 1 pickled ``_reconstruct`` as ``numpy.core.multiarray``; NumPy 2 as ``numpy._core``."""
    try:
        from numpy._core import multiarray  # NumPy 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core import multiarray  # type: ignore[no-redef]

    names: list[Any] = [multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    for alias in ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"):
        names.append((multiarray._reconstruct, alias))
    return names


def _digest(buffer: bytes) -> str:
    return hashlib.sha256(buffer).hexdigest()


def _to_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _load_data(source: str | Path | io.BytesIO, map_location: Any, what: str) -> Any:
    """``torch.load(weights_only=True)``; a request for any other object becomes a
    :class:`CheckpointError` that says why it was refused and how to convert a trusted file."""
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # torch's wording varies between versions
        if found is None and "Weights only load failed" not in str(exc):
            raise
        asked = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"{what} asks to build Python objects{asked}, not only tensors and numbers; r2mfnet "
            "refuses it because loading such a file can run code. Only if you trust its author, "
            "convert it once yourself with r2mfnet.checkpoint.save_trusted_state (docs/guide.md, "
            "'Failure behaviour', gives the one-line command)"
        ) from None


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Save ``state`` to ``path`` atomically, with a SHA-256 of the payload for load-time checks.

    The payload is serialised into memory, hashed, and wrapped in an envelope that is written as
    bytes by :func:`~r2mfnet.atomic.atomic_write`: a kill at any moment leaves the previous file
    intact, and a full disk surfaces as one clear :class:`~r2mfnet.errors.OutputError` (torch's own
    file writer reports it as an opaque ``inline_container`` error instead). The payload is read
    back with the same data-only loader before anything is written, so a state holding an object
    no one could load again fails here, at save time, not on the day someone resumes from it.
    """
    payload = _to_bytes({"format": FORMAT, "version": VERSION, **state})
    try:
        torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise TypeError(f"checkpoint state for '{path}' holds a non-data object: {exc}") from None
    envelope = _to_bytes({"format": FORMAT, "sha256": _digest(payload), "payload": payload})
    return atomic_write(path, lambda tmp: tmp.write_bytes(envelope))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and verify a checkpoint; any problem becomes a :class:`CheckpointError` naming the file.

    Nothing in the file is unpickled beyond tensors and plain values (see the module's security
    rule), neither the envelope nor the payload.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint '{path}' is empty (0 bytes): the write was interrupted")
    try:
        envelope = _load_data(path, "cpu", f"checkpoint '{path}'")
    except CheckpointError:
        raise
    except Exception as exc:  # torch raises many types for a damaged zip
        raise CheckpointError(
            f"checkpoint '{path}' is truncated or corrupted and cannot be read ({type(exc).__name__}); "
            "use the previous checkpoint (best.pt / latest.pt) or retrain"
        ) from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT or "payload" not in envelope:
        raise CheckpointError(f"'{path}' is not an r2mfnet checkpoint (no '{FORMAT}' envelope)")
    if not isinstance(envelope["payload"], bytes) or _digest(envelope["payload"]) != envelope.get("sha256"):
        raise CheckpointError(f"checkpoint '{path}' is corrupted: its checksum does not match its content")
    try:
        state = _load_data(io.BytesIO(envelope["payload"]), map_location, f"checkpoint '{path}'")
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"checkpoint '{path}' payload cannot be read ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint '{path}' payload is not a dict")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"checkpoint '{path}' has format version {state.get('version')}, newer than this "
            f"r2mfnet ({VERSION}); upgrade r2mfnet"
        )
    for key in ("model_config", "model"):
        if key not in state:
            raise CheckpointError(f"checkpoint '{path}' has no '{key}' entry")
    return state


def save_trusted_state(state: dict[str, Any], target: str | Path) -> Path:
    """Save a state dict **you loaded yourself** from a file you trust as a data-only checkpoint.

    r2mfnet never unpickles a file without the data-only restriction; converting a trusted file
    written some other way is the user's explicit act (``torch.load`` with ``weights_only=False``,
    which runs whatever the file contains), after which this turns NumPy arrays and scalars into
    tensors and numbers, saves, and checks the result with :func:`load_checkpoint`.
    """
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise CheckpointError("not an r2mfnet state: it needs 'model' and 'model_config' entries")
    plain = {k: v for k, v in _plain(state).items() if k != "format"}
    plain["version"] = min(int(plain.get("version", VERSION)), VERSION)
    save_checkpoint(target, plain)
    load_checkpoint(target)
    return Path(target)


def _plain(obj: Any) -> Any:
    """NumPy arrays and scalars to tensors and Python numbers, recursively (for conversion)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.astype(np.int64) if obj.dtype == np.uint32 else obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):  # dict or OrderedDict (state dicts), kept as they were
        return type(obj)((k, _plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP / ``torch.compile`` wrappers (their state-dict keys differ)."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def _model_class(config: dict[str, Any]):
    """The registered class of a stored config, or ``None`` for a name this install lacks."""
    from r2mfnet.models import available_models, model_class

    name = config.get("name")
    return model_class(name) if name in available_models() else None


def model_config_of(state: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's model keyword arguments, with the meaning they had when it was written
    (the model class's :meth:`~r2mfnet.models.base.SegmentationModel.upgrade_config`)."""
    config = dict(state["model_config"])
    cls = _model_class(config)
    return cls.upgrade_config(config, int(state.get("version", 0))) if cls else config


def resolve_model_config(config: dict[str, Any]) -> dict[str, Any]:
    """A model config with automatic values replaced by what they resolve to (the model class's
    :meth:`~r2mfnet.models.base.SegmentationModel.resolve_config`), so that an old run can
    resume under today's config when it means the same network, and so that messages show the
    values that differ."""
    cls = _model_class(config)
    return cls.resolve_config(config) if cls else dict(config)


def same_model(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Keys whose *meaning* differs between two model configs ([] = the same network); see
    :func:`resolve_model_config`."""
    a, b = resolve_model_config(saved), resolve_model_config(current)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def model_change(saved: dict[str, Any], current: dict[str, Any]) -> str:
    """"" for the same network, else what differs, in resolved values (``fine_coords=None``
    would not tell a user what differs): ``model.k=<saved>; this config has model.k=<current>``."""
    changed = same_model(saved, current)
    if not changed:
        return ""
    was, now = resolve_model_config(saved), resolve_model_config(current)
    return (", ".join(f"model.{k}={was.get(k)!r}" for k in changed) + "; this config has "
            + ", ".join(f"model.{k}={now.get(k)!r}" for k in changed))


def build_model_from_state(state: dict[str, Any], source: str = "checkpoint") -> nn.Module:
    """Instantiate the registry model described by ``state['model_config']`` and load its weights."""
    from r2mfnet.models import create

    config = model_config_of(state)
    try:
        model = create(**config)
        model.load_state_dict(state["model"])
    except Exception as exc:
        raise CheckpointError(f"{source}: cannot rebuild model {config}: {_one_line(exc)}") from None
    return model


def _one_line(exc: Exception) -> str:
    """torch's ``load_state_dict`` error lists every mismatched tensor on its own line: keep the
    first problem and count the rest, so that the refusal stays one line naming the file."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else type(exc).__name__
    problems = lines[1:] if lines[0].startswith("Error(s) in loading state_dict") else lines
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


def input_size_of(preprocess: dict[str, Any], source: str) -> tuple[int, int]:
    """The model input ``(height, width)`` recorded in a checkpoint's ``preprocess``.

    The trainer always records it; a checkpoint assembled by hand (``save_trusted_state``) may
    not, and predicting would then fail deep inside the letterbox. So every user of the size asks
    here and gets one line naming the file instead.
    """
    size = preprocess.get("input_size")
    try:
        height, width = (int(v) for v in size)  # type: ignore[union-attr]
        valid = height > 0 and width > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise CheckpointError(f"{source} has no valid preprocess.input_size ([height, width]), got "
                              f"{size!r}: add the size the model was trained at to its 'preprocess'")
    return height, width


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A trained model as its checkpoint describes it: what prediction, export and benchmarks need.

    ``model`` is rebuilt, in eval mode, with its stage set (see :func:`load_trained`);
    ``preprocess`` is what the model was trained with (``input_size``, ``clahe``, ``normalize``),
    ``config`` the whole run config the trainer stored ({} for a hand-converted file), ``stage``
    the training stage the weights come from (``None`` when not recorded).
    """

    path: Path
    model: nn.Module
    preprocess: dict[str, Any]
    config: dict[str, Any]
    stage: str | None

    @property
    def input_size(self) -> tuple[int, int]:
        """The model input ``(height, width)``; a :class:`CheckpointError` naming the file if absent."""
        return input_size_of(self.preprocess, f"checkpoint '{self.path}'")

    @property
    def use_clahe(self) -> bool:
        return bool(self.preprocess.get("clahe", False))


def load_trained(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the trained model stored at ``path`` with its preprocessing, config and stage.

    A checkpoint saved during the coarse stage (``best_coarse.pt``) holds a fine network that was
    never trained, so its model predicts with the coarse network alone; any other runs the whole
    cascade.
    """
    state = load_checkpoint(path, map_location=map_location)
    model = build_model_from_state(state, source=f"checkpoint '{path}'")
    stage = state.get("stage")
    if isinstance(model, SegmentationModel):
        model.set_stage("coarse" if stage == "coarse" and model.has_stages else model.SINGLE)
    return LoadedCheckpoint(path=Path(path), model=model.eval(), preprocess=dict(state.get("preprocess") or {}),
                            config=dict(state.get("config") or {}), stage=stage)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """The model of :func:`load_trained` alone (its preprocessing is in ``load_trained(path).preprocess``)."""
    return load_trained(path, map_location=map_location).model

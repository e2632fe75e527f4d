"""The pieces every command's config schema is built from, and the one way a command reads its config.

Each command ``configs/<name>.yaml`` has a dataclass schema in its module (``EvaluateConfig`` in
:mod:`r2mfnet.apps.evaluate`, ...), made of these pieces and its own keys, and its ``run`` starts
with :func:`command_config`: the composed config merged into the schema by
:func:`r2mfnet.typed_config.merge_typed`, the same function training validates with. A wrong
key or type stops the command with one line naming the key (exit 2); an old spelling of a key
(the schema's ``RENAMED``) says the new name.

**Values live once, in the YAML** (where ``--help`` shows them with their comments); the schema
says only what type each key has (its fields have no default), so a default is never written
twice. The exception is the parameters of the mask clean-up (``cleanup``), which no YAML lists
(``+cleanup.<key>=`` sets one): their defaults are :class:`~r2mfnet.inference.postprocess.CleanupParams`'.

The pieces:

* the **predictor**: :data:`TorchPredictorKeys` (``checkpoint``, ``device``, ``threshold``,
  ``tta_flip``, ``postprocess``, ``cleanup``), :data:`EnsemblePredictorKeys` (also ``ensemble``:
  evaluate_cobb, whose split check knows about members) and :data:`PredictorKeys` (also
  ``ensemble``, ``backend``, ``onnx_model``, ``threads``: predict only), the fields of
  :class:`r2mfnet.inference.build_predictor.PredictorConfig` kept flat at the top of the config
  (``checkpoint=... device=cpu``); a command hands its typed config to
  :func:`r2mfnet.inference.build_predictor`;
* the **output**: :class:`OutputDirKeys` (``output_dir``: a folder the command writes files of
  fixed names into) or :class:`OutputFileKeys` (``output_file``: the one file the command
  writes, named by the user because its name is what is used afterwards: the ``.onnx`` file
  predict reads, the picture the docs embed, the results table, the benchmark JSON with its
  ``.md`` twin). Nothing else is spelt ``out``, ``output`` or ``table`` any more;
* the **image size**: :func:`r2mfnet.typed_config.image_size_field`, written ``[H, W]``
  (``image_size=[256,128]``, ``gt_at=[256,128]``, ``oracle=[256,128]``).
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, TypeVar

from omegaconf import MISSING

from r2mfnet.inference.build_predictor import PredictorConfig, TorchPredictorConfig
from r2mfnet.typed_config import merge_typed

T = TypeVar("T")

KEEP_DEFAULTS = ("cleanup",)
"""Predictor fields no YAML lists (set with ``+cleanup.<key>=``): their defaults stay."""


def types_only(cls: type, name: str, only: tuple[str, ...] | None = None) -> type:
    """A dataclass with ``cls``'s fields (or those named in ``only``) and their types but no
    defaults (the YAML gives the values); the fields of :data:`KEEP_DEFAULTS` keep theirs."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only:
            continue
        if f.name in KEEP_DEFAULTS:
            specs.append((f.name, hints[f.name], dataclasses.field(default_factory=f.default_factory)))
        else:
            specs.append((f.name, hints[f.name], dataclasses.field(default=MISSING)))
    return dataclasses.make_dataclass(name, specs, namespace={"__module__": __name__,
                                                             "__doc__": f"{cls.__name__}'s keys, types only."})


SINGLE_CHECKPOINT_KEYS = tuple(f.name for f in dataclasses.fields(TorchPredictorConfig) if f.name != "ensemble")
"""The predictor keys of the commands that read one checkpoint (no ``ensemble``)."""

TorchPredictorKeys: Any = types_only(TorchPredictorConfig, "TorchPredictorKeys", only=SINGLE_CHECKPOINT_KEYS)
"""checkpoint, device, threshold, tta_flip, postprocess, cleanup: a trainer checkpoint's predictor."""
EnsemblePredictorKeys: Any = types_only(TorchPredictorConfig, "EnsemblePredictorKeys")
"""TorchPredictorKeys and ensemble (further checkpoints averaged with it): evaluate_cobb."""
PredictorKeys: Any = types_only(PredictorConfig, "PredictorKeys")
"""EnsemblePredictorKeys and backend, onnx_model, threads: either backend (predict)."""


@dataclass
class OutputDirKeys:
    """Where a command writes its files of fixed names (``null``: the command's own default)."""

    output_dir: Optional[str] = MISSING


@dataclass
class OutputFileKeys:
    """The one file a command writes, named by the user."""

    output_file: Optional[str] = MISSING


@dataclass
class CommandConfig:
    """What every command schema has: its old spellings (``RENAMED``, old key -> new key)."""

    RENAMED: ClassVar[dict[str, str]] = {}


def command_config(schema: type[T], cfg: Any) -> T:
    """``cfg`` (the composed root config) checked and typed by ``schema``; a wrong key, a wrong
    type, an old spelling or a missing required value is a one-line
    :class:`~r2mfnet.errors.ConfigError` naming the key."""
    return merge_typed(schema, cfg, getattr(schema, "RENAMED", {}))


__all__ = ["CommandConfig", "EnsemblePredictorKeys", "OutputDirKeys", "OutputFileKeys", "PredictorKeys",
           "TorchPredictorKeys", "command_config", "types_only"]

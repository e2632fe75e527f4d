"""A composed config checked against a dataclass schema: the one validation path of every command.

Hydra composes a YAML root config; the YAML says nothing about types. :func:`merge_typed` merges
the composed config into its schema (``OmegaConf.structured``), so that an unknown key or a
wrongly typed value stops the command at start-up with one line naming the key, before any data
is read or anything written. Training (:func:`r2mfnet.training.run_config.validate`) and every
other command (:mod:`r2mfnet.apps.schema`) go through it.

Two conventions of all commands live here as well:

* **renamed keys**: a key that was spelt differently before (``out`` is ``output_dir`` now) is
  refused with the new name rather than as merely unknown (:func:`renamed_key_error`);
* **one image-size type**: an image size is written ``[H, W]`` (``image_size=[256,128]``), a
  field made by :func:`image_size_field`; ``256x128`` is refused with the ``[H, W]`` spelling,
  and the value reaches the command as a ``(height, width)`` tuple of positive integers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, Mapping, TypeVar

from omegaconf import MISSING

from r2mfnet.errors import ConfigError

T = TypeVar("T")

IMAGE_SIZE = "image_size"
"""``dataclasses.field`` metadata kind of an ``[H, W]`` field."""


def image_size_field(default: tuple[int, int] | None | Any = MISSING) -> Any:
    """A schema field holding an image size written ``[H, W]``; no default unless given (the
    YAML gives the value; ``None`` there: no size).

    Declare it as ``Optional[List[int]]`` (or ``List[int]``): OmegaConf types it as a list of
    integers; :func:`merge_typed` checks there are two positive ones and hands a tuple on."""
    if default is MISSING or default is None:
        return field(default=default, metadata={"kind": IMAGE_SIZE})
    h, w = default
    return field(default_factory=lambda: [h, w], metadata={"kind": IMAGE_SIZE})


def image_size(value: Any, key: str) -> tuple[int, int] | None:
    """``value`` as ``(height, width)``: two positive integers ``[H, W]``, or ``None``;
    anything else (``256x128``, one number, three) is a :class:`ConfigError` naming ``key``."""
    if value is None:
        return None
    if isinstance(value, str):
        example = value.lower().replace(" ", "").replace("x", ",") if "x" in value.lower() else "256,128"
        raise ConfigError(f"{key}: an image size is written [H, W], e.g. {key}=[{example}] (got {value!r})")
    items = list(value)
    if len(items) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items):
        raise ConfigError(f"{key} must be [height, width], two positive integers, got {items}")
    return int(items[0]), int(items[1])


def renamed_key_error(key: str, renamed: Mapping[str, str]) -> str | None:
    """The one-line refusal of an old spelling (``None`` when ``key`` was never renamed)."""
    top = key.lstrip("+~").split(".")[0].split("=")[0]
    if top not in renamed:
        return None
    return f"unknown key '{top}': it is called {renamed[top]} now (see --help)"


def _no_mapping_for_a_list(schema: type, cfg: Any) -> None:
    """A mapping given to a list field: OmegaConf's merge error names no key, so name it here."""
    import typing

    if cfg is None:
        return
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # noqa: BLE001 - unresolvable hints: leave the check to OmegaConf
        return
    for f in dataclasses.fields(schema):  # type: ignore[arg-type]
        hint = hints.get(f.name)
        args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) is typing.Union else [hint]
        if any(typing.get_origin(a) is list for a in args) and f.name in cfg and isinstance(cfg[f.name], Mapping):
            raise ConfigError(f"{f.name} must be a list, got a mapping")


def merge_typed(schema: type[T], cfg: Any, renamed: Mapping[str, str] | None = None) -> T:
    """``cfg`` (a DictConfig or mapping) merged into the dataclass ``schema``; a typed object.

    A key of ``renamed`` (old spelling -> new), an unknown key or a wrong type is a
    :class:`ConfigError` of one line naming the key; ``[H, W]`` fields are checked by
    :func:`image_size` and become tuples."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    given = list(cfg.keys()) if cfg is not None else []
    for key in given:
        message = renamed_key_error(str(key), renamed or {})
        if message:
            raise ConfigError(message)
    _no_mapping_for_a_list(schema, cfg)
    sizes = [f.name for f in dataclasses.fields(schema) if f.metadata.get("kind") == IMAGE_SIZE]  # type: ignore[arg-type]
    for key in sizes:
        if cfg is not None and key in cfg and isinstance(cfg[key], (str, Mapping)):
            image_size(cfg[key], key)  # raises naming the key (OmegaConf's merge error would not)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), cfg if cfg is not None else {})
        typed: T = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except MissingMandatoryValue as exc:  # "???" in the YAML, not given on the command line
        raise ConfigError(f"{getattr(exc, 'full_key', None) or 'a required key'}= is required (see --help)") from None
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        msg = str(exc).splitlines()[0]
        raise ConfigError(f"invalid configuration{f' at key {key!r}' if key else ''}: {msg}") from None
    for key in sizes:
        setattr(typed, key, image_size(getattr(typed, key), key))
    return typed


__all__ = ["IMAGE_SIZE", "image_size", "image_size_field", "merge_typed", "renamed_key_error"]

"""What every model of the package shares: config capture, argument checks, pad-and-crop forward.

Any input height and width is accepted. The encoders halve the resolution ``depth`` times, so
the input is padded (bottom and right, with zeros) to the next multiple of ``2**depth`` and every
output is cropped back to the input size. Zero padding rather than reflection: it works for any
size (reflection needs the pad to be smaller than the image), and zero is the black background of
an intensity-normalised radiograph, so the padded strip looks like the collimated border the
networks see anyway.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from r2mfnet.errors import ConfigError
from r2mfnet.models.blocks.conv import NORMS


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad ``x`` [B,C,H,W] at the bottom/right to multiples of ``multiple``; return (x, (H, W))."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x, (h, w)


def check_common(in_channels: int, num_classes: int, base_channels: int, depth: int,
                 norm: str = "group") -> None:
    """Raise :class:`ConfigError` naming the bad argument (these come straight from configs)."""
    for key, value, minimum in (
        ("in_channels", in_channels, 1),
        ("num_classes", num_classes, 1),
        ("base_channels", base_channels, 1),
        ("depth", depth, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"model.{key} must be an integer >= {minimum}, got {value!r}")
    if depth > 8:
        raise ConfigError(f"model.depth must be <= 8 (inputs are padded to 2**depth), got {depth}")
    if norm not in NORMS:
        raise ConfigError(f"model.norm must be one of {NORMS}, got {norm!r}")


class SegmentationModel(nn.Module):
    """Base class: stores ``model_config``, pads the input, crops every output back.

    Subclasses set ``name`` (the registry name), call ``super().__init__(**all_kwargs)`` with
    every constructor argument (so that ``create(**model.model_config)`` rebuilds the same
    model), and implement :meth:`forward_padded`.
    """

    name: ClassVar[str] = ""
    uses_target: bool = False
    """True: the model's training forward takes the mask, ``forward(x, target=mask)`` (R2MF-Net's
    ``fine_crop`` boxes come from it); trainers pass it only to models that declare this."""

    # ------------------------------------------------------------ the staged-model protocol
    # A trainer asks a model which stages it trains in and what learns in each, instead of
    # knowing any model by name. A one-network model has the single stage "single", in which
    # everything runs and learns; a cascade overrides these four methods.
    SINGLE: ClassVar[str] = "single"

    def training_stages(self) -> tuple[str, ...]:
        """The stages this model trains in, in order; each has its own epoch budget."""
        return (self.SINGLE,)

    @property
    def has_stages(self) -> bool:
        """More than one training stage (a cascade trained part by part)."""
        return len(self.training_stages()) > 1

    def set_stage(self, stage: str) -> "SegmentationModel":
        """Choose what runs in ``forward`` (and stays frozen in ``train()``) for ``stage``;
        ``"single"`` (everything) is accepted by every model."""
        if stage not in (*self.training_stages(), self.SINGLE):
            raise ConfigError(f"stage must be one of {self.training_stages()}, got {stage!r}")
        return self

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """The parameters an optimiser updates in ``stage``."""
        return list(self.parameters())

    @classmethod
    def upgrade_config(cls, config: dict[str, Any], version: int) -> dict[str, Any]:
        """A stored ``model_config`` of checkpoint format ``version`` with the meaning it had
        then: keys added later whose defaults changed behaviour are filled in explicitly."""
        return dict(config)

    @classmethod
    def resolve_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with keys whose value depends on others (``None`` = automatic) replaced by
        what they resolve to, so that two configs can be compared by meaning."""
        return dict(config)

    def __init__(self, **config: Any):
        super().__init__()
        self.model_config: dict[str, Any] = {"name": self.name, **config}
        self.in_channels: int = config["in_channels"]
        self.num_classes: int = config["num_classes"]
        self.depth: int = config["depth"]

    @property
    def pad_multiple(self) -> int:
        """Input sizes are padded to a multiple of this (``2**depth``)."""
        return 2 ** self.depth

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` [B, in_channels, H, W] (any H, W) -> dict of [B, num_classes, H, W] logits."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"{type(self).__name__} expects input [B, {self.in_channels}, H, W] "
                f"(model.in_channels={self.in_channels}), got {tuple(x.shape)}"
            )
        padded, (h, w) = pad_to_multiple(x, self.pad_multiple)
        out = self.forward_padded(padded)
        if padded.shape[-2:] != x.shape[-2:]:
            out = {k: v[..., :h, :w] for k, v in out.items()}
        return out

    def forward_padded(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.model_config.items() if k != "name")

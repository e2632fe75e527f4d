"""``smp_unet``: the U-Net of segmentation-models-pytorch (smp), a strong off-the-shelf peer.

Why it is here: the baselines in :mod:`r2mfnet.models.baselines` are this project's own
re-implementations; a widely used library U-Net with a ResNet encoder, trained by the same
trainer, data, loss and schedule, shows whether R2MF-Net's gains hold against a network nobody
here tuned. Only the network comes from smp; everything around it is the project's contract
(:class:`~r2mfnet.models.base.SegmentationModel`): ``model_config`` capture, zero padding to a
multiple of ``2**depth`` and cropping back, a ``{"logits": ...}`` output.

Always randomly initialised (``encoder_weights=None``, not configurable): pretrained weights
would have to be downloaded at run time, and ImageNet statistics would make the comparison
unfair to the models trained from scratch. Building the model touches no network.

Keys shared with every model keep their meaning, so experiments that set them
(``experiment=demo`` sets ``model.base_channels=8``) apply here too: ``depth`` is smp's
``encoder_depth`` (1-5 encoder stages, input padded to ``2**depth``) and ``base_channels`` the
narrowest decoder width, doubled per level (``base_channels=16, depth=5`` is smp's default
decoder, 256-128-64-32-16). Normalisation is smp's BatchNorm (the ``norm`` key of the project's
own models does not apply).

This module imports segmentation-models-pytorch; the registry imports it only on demand
(:func:`r2mfnet.models.peers.peer_class`).
"""
from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

from r2mfnet.errors import ConfigError
from r2mfnet.models.base import SegmentationModel, check_common

MAX_DEPTH = 5
"""smp encoders have five down-sampling stages."""


def decoder_channels(base_channels: int, depth: int) -> list[int]:
    """Decoder widths, deepest first: ``base_channels * 2**(depth-1)`` ... ``base_channels``."""
    return [base_channels * 2 ** (depth - 1 - level) for level in range(depth)]


def drop_uncalled_modules(module: nn.Module, sample: torch.Tensor) -> list[str]:
    """Replace by :class:`nn.Identity` every submodule with weights that ``module(sample)``
    never calls; return their names.

    Why: smp keeps all five ResNet stages when ``encoder_depth < 5`` and just skips the deeper
    ones. Their parameters would never get a gradient (DDP without ``find_unused_parameters``
    stops on that), would be counted as model size and stored in every checkpoint. Finding them
    by a traced forward pass (eval mode, no gradient, so BatchNorm statistics are untouched)
    works for any smp encoder, not only ResNets.
    """
    called: set[int] = set()
    hooks = [m.register_forward_pre_hook(lambda mod, _args: called.add(id(mod)))
             for m in module.modules()]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(sample)
    finally:
        for hook in hooks:
            hook.remove()
        module.train(was_training)

    dropped: list[str] = []

    def visit(parent: nn.Module, prefix: str) -> None:
        for name, child in list(parent.named_children()):
            if id(child) not in called and any(True for _ in child.parameters()):
                setattr(parent, name, nn.Identity())
                dropped.append(prefix + name)
            else:
                visit(child, f"{prefix}{name}.")

    visit(module, "")
    return dropped


class SmpUNet(SegmentationModel):
    """segmentation-models-pytorch ``Unet`` (default ResNet-18 encoder), randomly initialised."""

    name = "smp_unet"

    def __init__(self, in_channels: int = 1, num_classes: int = 1, encoder: str = "resnet18",
                 base_channels: int = 16, depth: int = MAX_DEPTH):
        check_common(in_channels, num_classes, base_channels, depth)
        if depth > MAX_DEPTH:
            raise ConfigError(f"model.depth must be <= {MAX_DEPTH} for smp_unet "
                              f"(its encoders have {MAX_DEPTH} stages), got {depth}")
        if not isinstance(encoder, str) or not encoder:
            raise ConfigError(f"model.encoder must be an smp encoder name such as 'resnet18', "
                              f"got {encoder!r}")
        super().__init__(in_channels=in_channels, num_classes=num_classes, encoder=encoder,
                         base_channels=base_channels, depth=depth)
        try:
            self.net = smp.Unet(
                encoder_name=encoder, encoder_weights=None, encoder_depth=depth,
                decoder_channels=decoder_channels(base_channels, depth),
                in_channels=in_channels, classes=num_classes, activation=None,
            )
        except KeyError:
            raise ConfigError(
                f"model.encoder {encoder!r} is not an smp encoder; e.g. resnet18, resnet34, "
                "efficientnet-b0 (all: segmentation_models_pytorch.encoders.get_encoder_names())"
            ) from None
        except (ValueError, RuntimeError, AssertionError, TypeError) as exc:
            reason = " ".join(str(exc).split())
            raise ConfigError(f"smp_unet cannot use model.encoder={encoder} with "
                              f"model.depth={depth}: {reason}") from None
        side = 2 * self.pad_multiple
        self.dropped_modules = drop_uncalled_modules(
            self.net.encoder, torch.zeros(1, in_channels, side, side))

    def forward_padded(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(x)}

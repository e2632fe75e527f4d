"""R2MF-Net as this project defines it (arXiv 2512.07576 publishes only the block names).

::

    image x ─┬─────────────────────────────────────────────┐
             │                                             │
             ▼                                             ▼
       ┌───────────── coarse network ─────────────┐   cat[x, sigmoid(coarse)]
       │ Inception encoder ─R2-Jump skips─ Inception│          │
       │ decoder, SCSE-Lite at the bottleneck       │          ▼
       └──────┬───────────────────┬────────────────┘   ┌──── fine network ────┐
              │ coarse_logits     │ decoder features   │ same layout, and each │
              │                   └──── MC-Skip ─────▶ │ encoder stage fuses   │
              ▼                                        │ several coarse levels │
                                                       └──────────┬───────────┘
                                            coarse_logits ──────────▶ + (fine_residual)
                                                                  ▼ logits

Both networks are :class:`~r2mfnet.models.skeleton.EncoderDecoder` with widths
``base_channels * 2**l`` (l = 0..depth), Inception stage blocks, R2-Jump skips, SCSE-Lite at the
bottleneck, 2x2 transposed-conv up-sampling and a 1x1 head. The fine network's input is the image
plus the coarse network's per-class sigmoid probability, its encoder stages (from
``mcskip_from_level`` on) receive the coarse decoder features through MC-Skip, and
(``fine_residual``) its output is a correction added to the coarse logits. See
docs/architecture.md for every size and why.

Ablation switches (each off = its plain counterpart; all off = exactly :class:`~r2mfnet.models.
baselines.unet.UNet`, which the tests check):

==============  ==========================================  ==============================
switch          on                                           off
==============  ==========================================  ==============================
``inception``   Inception block in every stage               double 3x3 conv block
``r2jump``      recurrent residual units on every skip        identity skip
``mcskip``      coarse decoder -> fine encoder fusion         no cross-stage features
``scse``        SCSE-Lite at both bottlenecks                 no attention
``cascade``     coarse + fine network                         coarse network alone
==============  ==========================================  ==============================

``mcskip`` needs the coarse network, so with ``cascade=False`` it has no effect (accepted, so that
every combination of switches builds, as sweeps expect).

``fine_crop=True`` turns the same two networks into a region-of-interest cascade: the coarse
network sees the input shrunk to ``coarse_size``, the fine network a ``crop_size`` crop of the
full-resolution input around the spine, and its logits are pasted back into the upsampled coarse
logits (:meth:`R2MFNet._forward_roi`, geometry in :mod:`r2mfnet.models.blocks.roi`,
docs/architecture.md "Region-of-interest cascade").
"""
from __future__ import annotations

import contextlib
import math
from functools import partial
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from r2mfnet.errors import ConfigError
from r2mfnet.models.base import SegmentationModel, check_common
from r2mfnet.models.blocks import roi
from r2mfnet.models.blocks.conv import conv_block
from r2mfnet.models.blocks.inception import InceptionBlock, LightInceptionBlock
from r2mfnet.models.blocks.mcskip import FUSIONS, MCSkip, NoFusion, source_levels
from r2mfnet.models.blocks.recurrent import R2Jump, resolve_units
from r2mfnet.models.blocks.scse import DEFAULT_REDUCTION, SCSELite
from r2mfnet.models.skeleton import EncoderDecoder, identity_skip

STAGES: tuple[str, ...] = ("coarse", "fine", "joint")


class R2MFNet(SegmentationModel):
    """Coarse-to-fine cascade of two Inception/R2-Jump/SCSE-Lite U-Nets linked by MC-Skip.

    Args:
        in_channels: image channels (1 for radiographs).
        num_classes: output channels; 1 = binary spine mask. The coarse probability handed to the
            fine network is a per-class sigmoid (multi-label), matching the Dice+BCE loss.
        base_channels: width of level 0; level ``l`` has ``base_channels * 2**l``.
        depth: number of 2x down-samplings (inputs are padded to a multiple of ``2**depth``).
        inception, r2jump, mcskip, scse, cascade: ablation switches (see module docstring).
        recurrent_steps: recurrent steps ``t`` of every R2-Jump unit (t=2: one conv applied 3x).
        r2jump_units: units per skip level, shallow first; a shorter list names the deepest
            skips; default :func:`~r2mfnet.models.blocks.recurrent.default_units`
            (``[2, 1, 1, 1]`` at depth 4).
        mcskip_levels: how many coarse-decoder levels feed each fine-encoder stage (the same
            level and the next coarser ones, up to the bottleneck).
        mcskip_fusion: ``"gate"`` (add through a per-channel gate initialised at 0.1),
            ``"pyramid"`` (the same gate, the sum built coarsest first with one resize per stage)
            or ``"concat"`` (concat + 1x1 conv).
        scse_reduction: channel reduction of SCSE-Lite's SE branch.
        norm: ``"group"`` (default; batch-size independent in train and eval, which matters for
            batches of 1-4 full radiographs) or ``"batch"``.
        fine_residual: the fine network predicts a correction added to the coarse logits
            (default) instead of logits from scratch. The fine stage then starts from the coarse
            result rather than below it: on the demo the from-scratch fine network needed three
            of its epochs to climb back to the coarse network's validation Dice.
        coarse_classes: output channels of the coarse network; ``None`` = ``num_classes``. With
            ``num_classes=18`` (vertebra levels), ``1`` makes the coarse network find the spine
            (trained on the union of the labels) and leaves naming the vertebrae to the fine
            network; docs/vertebrae.md compares both.
        fine_coords: add the row coordinate (-1 top .. 1 bottom, CoordConv) to the fine network's
            input: naming a vertebra depends on its position along the spine. ``None`` = on for
            vertebra classes (``num_classes > 1``), off for a binary mask (the project's config
            default; the Python default ``False`` keeps older checkpoints loading as they were).
        fine_crop: region-of-interest cascade (module docstring). ``False`` (default) is the
            same-resolution cascade, unchanged; the keys below are then ignored and left out of
            ``model_config``, so default checkpoints and resume checks are exactly as before.
        coarse_size: ``[height, width]`` the coarse network runs at (the input is shrunk to it).
        crop_size: ``[height, width]`` of the fine network's crop around the spine.
        crop_margin: context added on each side of the spine's box, as a fraction of its size.
        train_box_shift, train_box_scale: in training the box comes from the ground-truth mask,
            its centre moved by up to ``±train_box_shift`` of its size and its size multiplied by
            a factor in ``train_box_scale`` (so the fine network learns from the box errors the
            coarse network will make); in eval mode the box comes from the coarse prediction.
        light_levels: levels below this use :class:`~r2mfnet.models.blocks.inception.
            LightInceptionBlock` (two branches, one wide convolution) in both networks; 0 = the
            full Inception block everywhere. The profile showed the full block slower than a
            double 3x3 conv at the 8-16-channel high-resolution levels (docs/performance.md).
        coarse_scale: the coarse network runs on the input average-pooled by this factor (1, 2
            or 4); its logits come back bilinearly. It only has to find the spine.
        joint_training: one training stage in which both networks learn and both outputs are
            supervised (the trainer's ``epochs`` budget), instead of coarse, fine, joint.
        mcskip_from_level: MC-Skip feeds the fine-encoder stages at this level and the coarser
            ones (0 = every stage); the finer stages keep their own feature (:class:`~r2mfnet.models.blocks.
            mcskip.NoFusion`). The full-resolution fusion cost 5 % of the step for almost no
            FLOPs, and with ``coarse_scale=4`` the coarse network has no detail at that scale.
        The config's values of these (``light_levels=2``, ``coarse_scale=4``,
        ``joint_training=True``, ``mcskip_from_level=1``), ``r2jump_units=[1]``,
        ``recurrent_steps=1`` and ``mcskip_fusion="pyramid"`` are the cost-aware default
        (``configs/model/r2mfnet.yaml``); ``configs/model/r2mfnet_v2.yaml``, the first cost-aware
        model, sets ``coarse_scale=2`` and ``mcskip_from_level=0`` back. The Python defaults are
        the earlier model's (``r2mfnet_v1``), so older checkpoints rebuild as they were.

    ``forward`` returns ``{"logits": fine, "coarse_logits": coarse}`` with the cascade and
    ``{"logits": coarse}`` without; with ``fine_crop`` also ``"boxes"`` (``[B, 4]`` float, the
    crop boxes ``(x0, y0, x1, y1)`` in input pixels) when the fine network ran, and every logit map
    is at the input's size. :meth:`set_stage` selects what runs and learns.
    """

    name = "r2mfnet"

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 1,
        base_channels: int = 16,
        depth: int = 4,
        inception: bool = True,
        r2jump: bool = True,
        mcskip: bool = True,
        scse: bool = True,
        cascade: bool = True,
        recurrent_steps: int = 2,
        r2jump_units: Sequence[int] | None = None,
        mcskip_levels: int = 3,
        mcskip_fusion: str = "gate",
        scse_reduction: int = DEFAULT_REDUCTION,
        norm: str = "group",
        fine_residual: bool = True,
        coarse_classes: int | None = None,
        fine_coords: bool | None = False,
        fine_crop: bool = False,
        coarse_size: Sequence[int] = (256, 128),
        crop_size: Sequence[int] = (768, 256),
        crop_margin: float = 0.1,
        train_box_shift: float = 0.1,
        train_box_scale: Sequence[float] = (0.9, 1.2),
        light_levels: int = 0,
        coarse_scale: int = 1,
        joint_training: bool = False,
        mcskip_from_level: int = 0,
    ):
        check_common(in_channels, num_classes, base_channels, depth, norm)
        _check_switches(inception=inception, r2jump=r2jump, mcskip=mcskip, scse=scse, cascade=cascade,
                        fine_residual=fine_residual, fine_crop=fine_crop, joint_training=joint_training,
                        fine_coords=num_classes > 1 if fine_coords is None else fine_coords)
        units = _check_block_options(num_classes, base_channels, depth, inception, recurrent_steps,
                                     r2jump_units, mcskip_levels, mcskip_fusion, coarse_classes,
                                     scse_reduction)
        roi_options = _check_roi_options(coarse_size, crop_size, crop_margin, train_box_shift,
                                         train_box_scale, depth) if fine_crop else {}
        cost_options = _check_cost_options(light_levels, coarse_scale, joint_training, depth,
                                           fine_crop, inception, mcskip_from_level)
        super().__init__(
            in_channels=in_channels, num_classes=num_classes, base_channels=base_channels,
            depth=depth, inception=inception, r2jump=r2jump, mcskip=mcskip, scse=scse,
            cascade=cascade, recurrent_steps=recurrent_steps,
            r2jump_units=None if r2jump_units is None else list(units),
            mcskip_levels=mcskip_levels, mcskip_fusion=mcskip_fusion,
            scse_reduction=scse_reduction, norm=norm, fine_residual=fine_residual,
            coarse_classes=coarse_classes, fine_coords=fine_coords, **roi_options, **cost_options,
        )
        self.light_levels = light_levels
        self.coarse_scale = coarse_scale
        self.joint_training = joint_training
        self.mcskip_from_level = mcskip_from_level
        self.fine_crop = fine_crop
        if fine_crop:
            self._store_roi_options(roi_options)
        self.fine_coords = num_classes > 1 if fine_coords is None else fine_coords
        self.coarse_classes = num_classes if coarse_classes is None else coarse_classes
        self.fine_residual = fine_residual
        self.channels = [base_channels * 2**level for level in range(depth + 1)]
        self.cascade = cascade
        self.use_mcskip = mcskip and cascade
        self.uses_target = cascade and fine_crop  # training boxes come from the mask
        self._norm = norm
        self._units = units
        self._block = self._stage_block(inception, norm, base_channels, light_levels)
        self._opts = dict(r2jump=r2jump, scse=scse, recurrent_steps=recurrent_steps,
                          scse_reduction=scse_reduction, mcskip_levels=mcskip_levels,
                          mcskip_fusion=mcskip_fusion)
        self._build_networks(in_channels, num_classes)
        self.stage = "joint"

    def _store_roi_options(self, roi_options: dict[str, Any]) -> None:
        """Keep the checked ``fine_crop`` keys as attributes (tuples: the crop geometry in
        :mod:`r2mfnet.models.blocks.roi` reads them on every forward)."""
        self.coarse_size: tuple[int, int] = tuple(roi_options["coarse_size"])
        self.crop_size: tuple[int, int] = tuple(roi_options["crop_size"])
        self.crop_margin: float = roi_options["crop_margin"]
        self.train_box_shift: float = roi_options["train_box_shift"]
        self.train_box_scale: tuple[float, float] = tuple(roi_options["train_box_scale"])

    def _build_networks(self, in_channels: int, num_classes: int) -> None:
        """Build the coarse network, then (with the cascade) the fine one.

        The order is part of the model: it fixes the parameter order of the state dict and which
        random numbers each network's initialisation draws, so checkpoints and seeded runs of
        earlier versions stay identical. The fine input is the image, the coarse per-class
        probability and (``fine_coords``) the row coordinate.
        """
        self.coarse = self._build_network(in_channels, self.coarse_classes if self.cascade else num_classes,
                                          with_mcskip=False)
        self.fine = (
            self._build_network(in_channels + self.coarse_classes + int(self.fine_coords), num_classes,
                                with_mcskip=self.use_mcskip)
            if self.cascade else None
        )

    @staticmethod
    def _stage_block(inception: bool, norm: str, base_channels: int, light_levels: int):
        """The stage-block factory ``(in, out) -> block`` of both networks.

        Level ``l`` has ``base_channels * 2**l`` output channels in the encoder and the decoder
        alike, so the output width tells the level: levels below ``light_levels`` get
        :class:`LightInceptionBlock`, the others :class:`InceptionBlock` (``inception=False``:
        the double 3x3 block everywhere).
        """
        if not inception:
            return partial(conv_block, norm=norm)
        light_below = base_channels * 2**light_levels

        def block(in_channels: int, out_channels: int) -> nn.Module:
            kind = LightInceptionBlock if out_channels < light_below else InceptionBlock
            return kind(in_channels, out_channels, norm=norm)

        return block

    def _build_network(self, in_channels: int, out_channels: int, with_mcskip: bool) -> EncoderDecoder:
        o, norm, depth = self._opts, self._norm, self.depth
        if o["r2jump"]:
            def skip(level: int, channels: int, gate_channels: int) -> nn.Module:
                return R2Jump(channels, self._units[level], o["recurrent_steps"], norm)
        else:
            skip = identity_skip
        fusions = None
        if with_mcskip:
            fusions = [
                MCSkip(self.channels[level], self.channels,
                       source_levels(level, depth, o["mcskip_levels"]), o["mcskip_fusion"], norm)
                if level >= self.mcskip_from_level else NoFusion()
                for level in range(depth)
            ]
        return EncoderDecoder(
            in_channels, out_channels, self.channels, self._block, skip,
            bottleneck_attention=SCSELite(self.channels[-1], o["scse_reduction"]) if o["scse"]
            else None,
            upsample="transpose", fusions=fusions, norm=norm,
        )

    # ----------------------------------------------------------------------------- stages
    def training_stages(self) -> tuple[str, ...]:
        """Coarse, then fine (coarse frozen), then joint; one stage without the cascade or with
        ``joint_training`` (both networks learn from the first step, both outputs supervised:
        the trainer's ``epochs`` budget, like a one-stage model)."""
        return STAGES if self.fine is not None and not self.joint_training else (self.SINGLE,)

    def set_stage(self, stage: str) -> "R2MFNet":
        """Choose what runs and learns (a trainer's coarse -> fine -> joint schedule).

        * ``"coarse"``: only the coarse network runs; returns ``{"logits": c, "coarse_logits": c}``.
        * ``"fine"``: both run, but the coarse network under ``torch.no_grad`` and in eval mode
          (frozen: no gradient, no BatchNorm statistics update, half the backward cost); a trainer
          should optimise :meth:`fine_parameters`.
        * ``"joint"`` (default): both run and the gradient flows end to end.

        Without the cascade there is only one network, so every stage runs it alone.
        ``"single"`` (what a trainer asks of a one-stage model) means ``"joint"``.
        """
        if stage not in (*STAGES, self.SINGLE):
            raise ConfigError(f"stage must be one of {STAGES}, got {stage!r}")
        self.stage = "joint" if stage == self.SINGLE else stage
        self.train(self.training)
        return self

    def train(self, mode: bool = True) -> "R2MFNet":
        super().train(mode)
        if getattr(self, "stage", "joint") == "fine" and self.fine is not None:
            self.coarse.eval()
        return self

    def coarse_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the coarse network (the whole model without the cascade)."""
        return self.coarse.parameters()

    def fine_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the fine network, MC-Skip included (none without the cascade)."""
        return iter(()) if self.fine is None else self.fine.parameters()

    def stage_parameters(self, stage: str) -> list[nn.Parameter]:
        """The coarse network's in ``"coarse"``, the fine network's in ``"fine"`` (the coarse one
        is frozen), all of them otherwise."""
        if stage == "coarse":
            return list(self.coarse_parameters())
        if stage == "fine":
            return list(self.fine_parameters())
        return list(self.parameters())

    @classmethod
    def upgrade_config(cls, config: dict[str, Any], version: int) -> dict[str, Any]:
        """Version-1 checkpoints have no ``fine_residual`` key because their fine network
        predicted logits from scratch; rebuilding one with today's default (residual) would load
        without error and predict wrongly, so the old meaning is filled in explicitly."""
        config = dict(config)
        if version < 2:
            config.setdefault("fine_residual", False)
        return config

    @classmethod
    def resolve_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint written before ``coarse_classes`` existed had a coarse network with
        ``num_classes`` outputs, which is what ``coarse_classes: 1`` means for a binary model;
        ``fine_coords: null`` means on for vertebra classes."""
        out = dict(config)
        classes = out.get("num_classes", 1)
        out["coarse_classes"] = out.get("coarse_classes") or classes
        coords = out.get("fine_coords", False)
        out["fine_coords"] = classes > 1 if coords is None else coords
        return out

    # ---------------------------------------------------------------------------- forward
    @property
    def pad_multiple(self) -> int:
        """With ``fine_crop`` both networks run at their own sizes: the input is never padded;
        with ``coarse_scale`` the coarse network's input must still divide by ``2**depth``."""
        return 1 if self.fine_crop else super().pad_multiple * self.coarse_scale

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``x`` [B, in_channels, H, W] -> logits at H x W (see the class docstring for the keys).

        ``target`` (the training mask, ``[B, 1, H, W]`` or ``[B, H, W]`` class indices) is used only
        with ``fine_crop`` in training mode, for the fine network's box; otherwise ignored.
        """
        if not self.fine_crop:
            return super().forward(x)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"{type(self).__name__} expects input [B, {self.in_channels}, H, W] "
                f"(model.in_channels={self.in_channels}), got {tuple(x.shape)}"
            )
        return self._forward_roi(x, target)

    def _run_coarse(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The coarse network on ``x`` shrunk by ``coarse_scale`` (average pooling), its logits
        brought back to ``x``'s size (bilinear); its decoder features stay at its own scale
        (MC-Skip resizes what it takes)."""
        if self.coarse_scale == 1:
            return self.coarse(x)
        logits, features = self.coarse(F.avg_pool2d(x, self.coarse_scale))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False), features

    def forward_padded(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.fine is None:
            return {"logits": self._run_coarse(x)[0]}
        if self.stage == "coarse":
            coarse = self._run_coarse(x)[0]
            return {"logits": coarse, "coarse_logits": coarse}
        if self.stage == "fine":
            with torch.no_grad():
                coarse, features = self._run_coarse(x)
        else:
            coarse, features = self._run_coarse(x)
        fine_input = [x, torch.sigmoid(coarse)]
        if self.fine_coords:
            fine_input.append(_row_coordinate(x))
        fine_input = torch.cat(fine_input, dim=1)
        fine, _ = self.fine(fine_input, features if self.use_mcskip else None)
        if self.fine_residual:
            fine = fine + self._as_class_logits(coarse)
        return {"logits": fine, "coarse_logits": coarse}

    def _forward_roi(self, x: torch.Tensor, target: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The region-of-interest cascade (``fine_crop``).

        coarse network on ``x`` shrunk to ``coarse_size`` -> box around its mask (eval) or the
        jittered ground-truth box (training) -> the fine network on ``roi_align`` crops of the
        image, of the coarse logits (as probability, and as the residual base) and of each
        coarse decoder feature MC-Skip reads (level >= ``mcskip_from_level``; lower levels are
        passed on uncropped, unread) -> its logits pasted into the upsampled coarse logits.
        """
        size = tuple(x.shape[-2:])
        coarse_input = roi.resize(x, self.coarse_size)
        if self.fine is None or self.stage == "coarse":
            coarse = roi.upsample(self.coarse(coarse_input)[0], size)
            return {"logits": coarse} if self.fine is None else {"logits": coarse, "coarse_logits": coarse}
        with torch.no_grad() if self.stage == "fine" else contextlib.nullcontext():
            coarse, features = self.coarse(coarse_input)
        boxes = self._boxes(coarse, size, target)
        coarse_crop = roi.crop(coarse, boxes, size, self.crop_size)
        fine_input = [roi.crop(x, boxes, size, self.crop_size), torch.sigmoid(coarse_crop)]
        if self.fine_coords:
            fine_input.append(roi.crop_rows(boxes, size[0], self.crop_size).to(x.dtype))
        context = None
        if self.use_mcskip:
            ch, cw = self.crop_size
            # levels below mcskip_from_level feed no fusion (NoFusion): passed on uncropped, unread
            context = [roi.crop(f, boxes, size, (ch >> level, cw >> level))
                       if level >= self.mcskip_from_level else f
                       for level, f in enumerate(features)]
        fine, _ = self.fine(torch.cat(fine_input, dim=1), context)
        if self.fine_residual:
            fine = fine + self._as_class_logits(coarse_crop)
        coarse_up = roi.upsample(coarse, size)
        logits = roi.paste(fine, boxes, self._as_class_logits(coarse_up))
        return {"logits": logits, "coarse_logits": coarse_up, "boxes": boxes}

    def _boxes(self, coarse: torch.Tensor, size: tuple[int, int],
               target: torch.Tensor | None) -> torch.Tensor:
        """Crop boxes in input pixels: from the ground truth in training, else from the coarse mask.

        Ground truth: foreground = ``target > 0`` (class indices) or ``> 0.5`` (a float mask), box
        jittered (:func:`~r2mfnet.models.blocks.roi.jitter_boxes`). Coarse: foreground where the
        coarse network's spine probability exceeds 0.5 (sigmoid of a 1-channel output,
        ``1 - p(background)`` of a softmax), its box scaled from the coarse grid to the input.
        Either way an empty mask means the whole image, then :func:`~r2mfnet.models.blocks.roi.
        fit_boxes` adds the margin, the crop's aspect ratio and whole pixels.
        """
        with torch.no_grad():
            if self.training and target is not None:
                if tuple(target.shape[-2:]) != size:
                    raise ValueError(f"target size {tuple(target.shape[-2:])} differs from the "
                                     f"input size {size}")
                foreground = target > 0 if target.dim() == 3 else target[:, 0] > 0.5
                boxes = roi.jitter_boxes(roi.mask_boxes(foreground), self.train_box_shift,
                                         self.train_box_scale)
            else:
                if coarse.shape[1] == 1:
                    foreground = coarse[:, 0] > 0  # sigmoid > 0.5
                else:
                    foreground = torch.softmax(coarse.float(), 1)[:, 0] < 0.5
                boxes = roi.scale_boxes(roi.mask_boxes(foreground), coarse.shape[-2:], size)
            return roi.fit_boxes(boxes.float(), size, self.crop_size, self.crop_margin)

    def _as_class_logits(self, coarse: torch.Tensor) -> torch.Tensor:
        """The coarse logits in the fine output's class space, for the residual sum.

        Same classes: unchanged. Binary coarse, K vertebra classes: background logit
        ``log(K - 1) - c`` and 0 for every vertebra, so that with a zero correction the softmax
        gives ``p(background) = sigmoid(-c)``: the fine stage starts from the coarse mask, with
        the vertebra probability spread evenly over the levels it has to tell apart.
        """
        if coarse.shape[1] == self.num_classes:
            return coarse
        background = math.log(self.num_classes - 1) - coarse
        return torch.cat([background, torch.zeros_like(coarse).expand(-1, self.num_classes - 1, -1, -1)], 1)


def _check_switches(**switches: object) -> None:
    """Every on/off key must be a real bool: ``1`` or ``"yes"`` from a hand-written config would
    otherwise switch a block on silently (checked in the given order, first bad key named)."""
    for key, value in switches.items():
        if not isinstance(value, bool):
            raise ConfigError(f"model.{key} must be true or false, got {value!r}")


def _check_block_options(num_classes: int, base_channels: int, depth: int, inception: bool,
                         recurrent_steps: int, r2jump_units: Sequence[int] | None, mcskip_levels: int,
                         mcskip_fusion: str, coarse_classes: int | None,
                         scse_reduction: int) -> list[int]:
    """The block keys, checked (:class:`ConfigError` naming the key) before any layer is built,
    so that a bad config fails in one line instead of deep inside a block; returns the R2-Jump
    units per skip level."""
    if inception and base_channels < 4:
        raise ConfigError(
            f"model.base_channels must be >= 4 with inception=true (four branches), "
            f"got {base_channels}"
        )
    if not isinstance(recurrent_steps, int) or recurrent_steps < 0:
        raise ConfigError(f"model.recurrent_steps must be an integer >= 0, "
                          f"got {recurrent_steps!r}")
    try:
        units = resolve_units(r2jump_units, depth)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.r2jump_units: {exc}") from None
    if not isinstance(mcskip_levels, int) or mcskip_levels < 1:
        raise ConfigError(f"model.mcskip_levels must be an integer >= 1, got {mcskip_levels!r}")
    if mcskip_fusion not in FUSIONS:
        raise ConfigError(f"model.mcskip_fusion must be one of {FUSIONS}, got {mcskip_fusion!r}")
    if coarse_classes is not None and coarse_classes not in (1, num_classes):
        raise ConfigError(f"model.coarse_classes must be null, 1 or model.num_classes "
                          f"({num_classes}), got {coarse_classes!r}")
    if not isinstance(scse_reduction, int) or scse_reduction < 1:
        raise ConfigError(f"model.scse_reduction must be an integer >= 1, "
                          f"got {scse_reduction!r}")
    return units


def _check_roi_options(coarse_size: Sequence[int], crop_size: Sequence[int], crop_margin: float,
                       train_box_shift: float, train_box_scale: Sequence[float],
                       depth: int) -> dict[str, object]:
    """The ``fine_crop`` keys, checked (:class:`ConfigError` naming the key) and made JSON-plain."""
    options: dict[str, object] = {"fine_crop": True}
    for key, value in (("coarse_size", coarse_size), ("crop_size", crop_size)):
        if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 or v % 2**depth
                       for v in value)):
            raise ConfigError(f"model.{key} must be [height, width], two positive integers "
                              f"divisible by 2**depth = {2**depth}, got {value!r}")
        options[key] = [int(v) for v in value]
    for key, value, top in (("crop_margin", crop_margin, math.inf),
                            ("train_box_shift", train_box_shift, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < top:
            raise ConfigError(f"model.{key} must be a number >= 0{'' if top == math.inf else ' and < 1'}, "
                              f"got {value!r}")
        options[key] = float(value)
    if (isinstance(train_box_scale, (str, bytes)) or not isinstance(train_box_scale, Sequence)
            or len(train_box_scale) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in train_box_scale)
            or not 0 < train_box_scale[0] <= train_box_scale[1]):
        raise ConfigError(f"model.train_box_scale must be [low, high] with 0 < low <= high, "
                          f"got {train_box_scale!r}")
    options["train_box_scale"] = [float(v) for v in train_box_scale]
    return options


def _check_cost_options(light_levels: int, coarse_scale: int, joint_training: bool, depth: int,
                        fine_crop: bool, inception: bool, mcskip_from_level: int = 0) -> dict[str, object]:
    """The compute-aware keys, checked; only those that differ from the earlier model are
    returned for ``model_config``, so that checkpoints of the earlier configuration keep the
    config they were saved with (resume compares it)."""
    if isinstance(light_levels, bool) or not isinstance(light_levels, int) or not 0 <= light_levels <= depth:
        raise ConfigError(f"model.light_levels must be an integer from 0 to model.depth ({depth}), "
                          f"got {light_levels!r}")
    if isinstance(coarse_scale, bool) or coarse_scale not in (1, 2, 4):
        raise ConfigError(f"model.coarse_scale must be 1, 2 or 4, got {coarse_scale!r}")
    if coarse_scale > 1 and fine_crop:
        raise ConfigError("model.coarse_scale applies to the same-resolution cascade; with "
                          "model.fine_crop=true set model.coarse_size instead")
    if (isinstance(mcskip_from_level, bool) or not isinstance(mcskip_from_level, int)
            or not 0 <= mcskip_from_level < depth):
        raise ConfigError(f"model.mcskip_from_level must be an integer from 0 to model.depth - 1 "
                          f"({depth - 1}), got {mcskip_from_level!r}")
    options: dict[str, object] = {}
    if mcskip_from_level:
        options["mcskip_from_level"] = mcskip_from_level
    if light_levels and inception:
        options["light_levels"] = light_levels
    if coarse_scale != 1:
        options["coarse_scale"] = coarse_scale
    if joint_training:
        options["joint_training"] = True
    return options


def _row_coordinate(x: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W]`` map of each pixel's row, -1 at the top to 1 at the bottom (CoordConv).

    Which vertebra a pixel belongs to depends on where it lies along the spine; a convolution
    can only infer absolute position indirectly (from the padding), so the fine network is told.
    """
    rows = torch.linspace(-1.0, 1.0, x.shape[2], device=x.device, dtype=x.dtype)
    return rows.view(1, 1, -1, 1).expand(x.shape[0], 1, x.shape[2], x.shape[3])

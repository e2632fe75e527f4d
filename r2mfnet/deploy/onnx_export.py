"""A trained checkpoint -> one ONNX file: the whole model, its contract, checked before writing.

What is exported: the model as :func:`r2mfnet.checkpoint.load_trained` rebuilds it, in eval mode (a
coarse-stage checkpoint runs the coarse network alone, as the PyTorch predictor does), for one
input ``image`` ``[batch, 1, H, W]`` float32 with a dynamic batch and the checkpoint's fixed
``H x W`` (the letterbox always produces it), returning ``logits`` and, for a cascade,
``coarse_logits``: the PyTorch predictor's mask clean-up takes its spine column from the coarse
mask, so a deployment needs it to give the same masks. The crop boxes of ``fine_crop`` are left out.

How: PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), because it is
the path on which torchvision registers ``roi_align``: at opset >= 16 it becomes ONNX ``RoiAlign``
with ``coordinate_transformation_mode="half_pixel"``, which is torchvision's ``aligned=True``
(sample at ``x * scale - 0.5``, no minimum box size), and ``sampling_ratio=0`` is adaptive
(``ceil(box / output)``) in both. The paste-back's ``grid_sample`` becomes ``GridSample`` (opset 16).
The area shrink to ``coarse_size`` exports as ``AveragePool`` only when the input size is a
whole multiple of it (else the exporter refuses, and so does this). Shape arithmetic is traced
at the fixed ``H x W``; only the batch varies. PyTorch marks this exporter deprecated, so the
file is never trusted on faith: ONNX Runtime runs it on a batch of a *different* size from the
traced one and its logits and masks are compared with PyTorch's before anything is written
(:func:`verify`); the numbers go into the contract.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from r2mfnet.errors import ConfigError, R2MFNetError

MIN_OPSET = 16  # RoiAlign half_pixel (torchvision aligned=True) and GridSample
MAX_OPSET = 20  # the TorchScript exporter's highest
DEFAULT_OPSET = 17
TRACE_BATCH = 2  # traced with 2, verified with another size: a batch of 1 could be folded into constants


class ExportError(R2MFNetError):
    """The model could not be exported, or ONNX Runtime disagrees with PyTorch on it."""


@dataclass
class Verification:
    """ONNX Runtime against PyTorch on the same batch: per output the largest |logit difference|
    and the smallest per-image Dice of the two masks (foreground by the predictor's rule at the
    threshold; per image, so that one image's disagreement cannot hide in the batch's pixels)."""

    batch: int
    max_abs_diff: dict[str, float]
    mask_dice: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "max_abs_logit_diff": self.max_abs_diff, "mask_dice": self.mask_dice}


def _require_deploy() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(f"export needs the deploy extra ({exc.name} is missing): "
                          "pip install 'r2mfnet[deploy]'") from None
    return onnx, onnxruntime


class _Outputs:
    """Wraps the model so that the graph returns a tuple of the outputs a deployment needs."""

    @staticmethod
    def wrap(model: Any, names: Sequence[str]) -> Any:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
                out = self.model(image)
                return tuple(out[k] for k in names)

        return Wrapped().eval()


def output_names(model: Any, input_hw: Sequence[int]) -> list[str]:
    """``["logits"]`` or ``["logits", "coarse_logits"]``: what the model returns in eval mode."""
    import torch

    with torch.no_grad():
        out = model(torch.zeros(1, int(model.model_config.get("in_channels", 1)), *input_hw))
    return [k for k in ("logits", "coarse_logits") if k in out]


def export_bytes(model: Any, input_hw: Sequence[int], names: Sequence[str], opset: int) -> bytes:
    """Serialized ONNX model (no metadata yet) of ``model`` at ``input_hw`` with a dynamic batch."""
    import torch

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(f"opset must be {MIN_OPSET}..{MAX_OPSET} (RoiAlign half_pixel and GridSample "
                          f"need >= {MIN_OPSET}; {MAX_OPSET} is the exporter's highest), got {opset}")
    wrapped = _Outputs.wrap(model, names)
    example = torch.rand(TRACE_BATCH, int(model.model_config.get("in_channels", 1)), *input_hw)
    buffer = io.BytesIO()
    axes = {"image": {0: "batch"}, **{n: {0: "batch"} for n in names}}
    with warnings.catch_warnings():
        # TracerWarnings: sizes read as Python numbers are fixed by design (the letterbox's H x W);
        # the batch is verified to stay dynamic. The deprecation notice is the docstring's.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(wrapped, (example,), buffer, dynamo=False, opset_version=int(opset),
                              input_names=["image"], output_names=list(names), dynamic_axes=axes,
                              do_constant_folding=True)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"the model cannot be exported to ONNX at input {input_hw[0]}x{input_hw[1]}, "
                              f"opset {opset}: {first}") from None
    return buffer.getvalue()


def check_roi_align(model_proto: Any) -> int:
    """Number of ``RoiAlign`` nodes; each must use ``half_pixel`` (torchvision ``aligned=True``)."""
    n = 0
    for node in model_proto.graph.node:
        if node.op_type != "RoiAlign":
            continue
        n += 1
        mode = next((a.s.decode() for a in node.attribute if a.name == "coordinate_transformation_mode"),
                    "half_pixel")  # the ONNX default from opset 16
        if mode != "half_pixel":
            raise ExportError(f"RoiAlign node {node.name} was exported with coordinate_transformation_mode "
                              f"'{mode}', not 'half_pixel' (torchvision aligned=True)")
    return n


def verification_batch(n: int, hw: Sequence[int], seed: int = 0) -> np.ndarray:
    """``[n, 1, H, W]`` float32 radiograph-like images in [0, 1] at model size: a gradient, a
    column of bright blocks (a spine the coarse network can find and the crop can centre on),
    different in each image, and noise."""
    rng = np.random.default_rng(seed)
    h, w = int(hw[0]), int(hw[1])
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    out = np.empty((n, 1, h, w), np.float32)
    for i in range(n):
        img = 0.2 + 0.2 * yy / h + 0.05 * rng.standard_normal((h, w)).astype(np.float32)
        cx = w / 2 + (i - n / 2) * w / 16
        centre = cx + 0.08 * w * np.sin(yy / h * np.pi * (1 + i))
        for k in range(12):
            y0, y1 = int(h * (0.1 + 0.07 * k)), int(h * (0.15 + 0.07 * k))
            band = (yy >= y0) & (yy < y1) & (np.abs(xx - centre) < w / 10)
            img[band] += 0.45
        out[i, 0] = np.clip(img, 0, 1)
    return out


def masks_at_threshold(logits: np.ndarray, threshold: float) -> np.ndarray:
    from r2mfnet.inference.postprocess import foreground_probability, probabilities_np

    return foreground_probability(probabilities_np(logits), axis=1)[:, 0] > threshold


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def verify(model: Any, onnx_bytes: bytes, batch: np.ndarray, names: Sequence[str], threshold: float,
           atol: float, min_dice: float) -> Verification:
    """Run PyTorch and ONNX Runtime on ``batch``; raise :class:`ExportError` if they disagree
    (largest |logit difference| above ``atol`` or any image's mask Dice below ``min_dice``, any
    output)."""
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    got = dict(zip(names, session.run(list(names), {"image": batch})))
    with torch.no_grad():
        ref = {k: v.float().numpy() for k, v in model(torch.from_numpy(batch)).items() if k in names}
    diff = {k: float(np.abs(ref[k] - got[k]).max()) for k in names}
    dice = {k: min(mask_dice(a, b) for a, b in zip(masks_at_threshold(ref[k], threshold),
                                                   masks_at_threshold(got[k], threshold))) for k in names}
    result = Verification(int(batch.shape[0]), diff, dice)
    bad = [k for k in names if not (diff[k] <= atol and dice[k] >= min_dice)]
    if bad:
        k = bad[0]
        raise ExportError(f"ONNX Runtime disagrees with PyTorch on '{k}': max |logit difference| "
                          f"{diff[k]:.3g} (allowed {atol:g}), smallest per-image mask Dice {dice[k]:.5f} (required "
                          f"{min_dice:g}); nothing was written")
    return result


def attach_contract(model_proto: Any, contract: Mapping[str, Any]) -> None:
    """Write the contract into ``metadata_props`` (replacing an earlier one)."""
    from r2mfnet.inference.onnx_contract import METADATA_KEY, contract_json

    for prop in list(model_proto.metadata_props):
        if prop.key == METADATA_KEY:
            model_proto.metadata_props.remove(prop)
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, contract_json(contract)
    model_proto.producer_name = "r2mfnet"
    model_proto.doc_string = ("R2MF-Net spine segmentation; preprocessing and post-processing contract "
                              f"in metadata_props['{METADATA_KEY}'] (JSON)")


def export_checkpoint(checkpoint: str | Path, output: str | Path, *, opset: int = DEFAULT_OPSET,
                      threshold: float = 0.5, postprocess: bool = True,
                      cleanup: Mapping[str, Any] | None = None, samples: Sequence[np.ndarray] = (),
                      verify_batch: int = 3, atol: float = 1e-3, min_dice: float = 0.999) -> dict[str, Any]:
    """Export ``checkpoint`` to ``output`` (atomic); return the contract written into it.

    ``samples``: raw images (original size) to verify on, preprocessed as the predictor does, in
    addition to ``verify_batch`` synthetic ones (:func:`verification_batch`).
    """
    import torch

    from r2mfnet import __version__
    from r2mfnet.atomic import atomic_write
    from r2mfnet.checkpoint import load_trained
    from r2mfnet.inference.onnx_contract import build_contract
    from r2mfnet.inference.postprocess import cleanup_params

    onnx, _ = _require_deploy()
    params = cleanup_params(cleanup)
    loaded = load_trained(checkpoint)
    model, pre = loaded.model, loaded.preprocess
    hw = list(loaded.input_size)
    contract_args = dict(model_config=dict(model.model_config), preprocess=pre, opset=opset,
                         threshold=threshold, postprocess=postprocess,
                         cleanup={f: getattr(params, f) for f in ("max_offset", "min_size", "max_hole")},
                         version=__version__, exporter=f"torch.onnx TorchScript exporter, torch {torch.__version__}")
    build_contract(outputs=["logits"], **contract_args)  # refuses an unknown rule before the slow part
    names = output_names(model, hw)
    data = export_bytes(model, hw, names, opset)
    proto = onnx.load_from_string(data)
    n_roi = check_roi_align(proto)
    batch = verification_batch(verify_batch, hw)
    if samples:
        from r2mfnet.data.preprocess import Letterbox
        from r2mfnet.inference.onnx_predictor import preprocess_image

        letterbox = Letterbox(*hw)
        prepared = [preprocess_image(raw, letterbox, use_clahe=bool(pre.get("clahe")))[0] for raw in samples]
        batch = np.concatenate([batch, np.stack(prepared)[:, None].astype(np.float32)])
    checked = verify(model, data, batch, names, threshold, atol, min_dice)
    source = {"checkpoint": Path(checkpoint).name, "stage": loaded.stage,
              "roi_align_nodes": n_roi, "verification": checked.to_dict()}
    contract = build_contract(outputs=names, source=source, **contract_args)
    attach_contract(proto, contract)
    onnx.checker.check_model(proto)
    payload = proto.SerializeToString()
    atomic_write(output, lambda tmp: tmp.write_bytes(payload))
    return contract


__all__ = ["ExportError", "Verification", "export_checkpoint", "export_bytes", "verify", "verification_batch",
           "mask_dice", "masks_at_threshold", "check_roi_align", "attach_contract", "output_names",
           "DEFAULT_OPSET", "MIN_OPSET", "MAX_OPSET"]

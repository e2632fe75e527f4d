"""The preprocessing contract an exported ONNX model carries: what to do before and after it.

An ONNX file holds only the network. Whoever runs it (our :class:`~r2mfnet.inference.
onnx_predictor.OnnxPredictor`, or a C++/Java service that never sees this package) must repeat
exactly what the model was trained with: intensity normalisation, optional CLAHE, the letterbox
to the model's input size and back, the threshold and the mask clean-up. The exporter therefore
writes them into the file itself, as one JSON document under the ONNX ``metadata_props`` key
:data:`METADATA_KEY`, and the predictor reads its settings from there and nowhere else: the model
file cannot be separated from its contract.

Pure Python (json only): reading the contract needs neither PyTorch nor the ``onnx`` package
(ONNX Runtime exposes ``metadata_props`` as ``custom_metadata_map``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from r2mfnet.errors import ConfigError

METADATA_KEY = "r2mfnet"
"""The ``metadata_props`` key holding the contract (a JSON object)."""

SCHEMA = "r2mfnet-onnx/1"

NORMALIZE_RULES = {"percentile_0.5_99.5": (0.5, 99.5)}
"""Intensity rules a predictor can repeat: name -> (low, high) percentiles of
:func:`r2mfnet.data.preprocess.normalize_intensity`. A checkpoint without a ``normalize`` entry
was trained with the first (the only rule there has been)."""

LETTERBOX_RULE = (
    "scale = min(H / h, W / w); resized size = (min(H, max(1, round(h * scale))), "
    "min(W, max(1, round(w * scale)))); OpenCV INTER_AREA when shrinking either side, "
    "INTER_LINEAR otherwise; placed at top = (H - new_h) // 2, left = (W - new_w) // 2 in an "
    "HxW float32 image of zeros. Inverse: crop that region of each output map and resize it "
    "back to h x w with INTER_LINEAR (r2mfnet.data.preprocess.Letterbox)"
)
NORMALIZE_TEXT = (
    "float32 image; lo, hi = its {low} and {high} percentiles (numpy linear; on a regular "
    "[::s, ::s] subsample with s = ceil(sqrt(n / 4e6)) above 4e6 pixels); if hi <= lo use min "
    "and max; constant image -> zeros; else clip((x - lo) / (hi - lo), 0, 1)"
)
CLAHE_TEXT = ("when enabled, after normalisation: round(x * 65535) as uint16, OpenCV CLAHE "
              "clipLimit 2.0, 8x8 tiles, / 65535")
PROBABILITY_RULE = ("sigmoid of the logits for one channel (spine = p > threshold); softmax over "
                    "the channels for several (channel 0 background; spine = 1 - p(background) > "
                    "threshold, then the most probable of channels 1..K); thresholded after the "
                    "probability map is mapped back to the original size")
CLEANUP_RULE = ("r2mfnet.inference.postprocess.clean_mask at the original size: specks < min_size "
                "* w^2 removed, pieces whose centroid lies > max_offset * w from the spine column "
                "removed, holes <= max_hole * w filled (w = the column's median width; the column "
                "from the coarse_logits mask when the model outputs them)")


def class_names(num_classes: int) -> list[str]:
    """Channel names: ``["spine"]`` for a binary model, background + T1..L5 for 18 classes."""
    from r2mfnet.data.views import LEVELS

    if num_classes == 1:
        return ["spine"]
    if num_classes == len(LEVELS) + 1:
        return ["background", *LEVELS]
    return ["background"] + [f"class_{k}" for k in range(1, num_classes)]


def build_contract(*, model_config: Mapping[str, Any], preprocess: Mapping[str, Any], opset: int,
                   outputs: list[str], threshold: float, postprocess: bool,
                   cleanup: Mapping[str, float], version: str, exporter: str,
                   source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The contract of one export (see the module docstring); every value JSON-plain."""
    try:
        height, width = (int(v) for v in preprocess["input_size"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError("the checkpoint's preprocess entry has no input_size [height, width]") from None
    rule = str(preprocess.get("normalize", "percentile_0.5_99.5"))
    if rule not in NORMALIZE_RULES:
        raise ConfigError(f"the checkpoint's preprocess.normalize '{rule}' is not a rule this "
                          f"version can export (known: {', '.join(NORMALIZE_RULES)})")
    low, high = NORMALIZE_RULES[rule]
    num_classes = int(model_config.get("num_classes", 1))
    return {
        "schema": SCHEMA,
        "r2mfnet_version": version,
        "opset": int(opset),
        "exporter": exporter,
        "input": {"name": "image", "shape": ["batch", int(model_config.get("in_channels", 1)),
                                              height, width],
                  "dtype": "float32", "layout": "NCHW", "dynamic_axes": ["batch"]},
        "outputs": {name: ["batch", num_classes, height, width] for name in outputs},
        "input_size": [height, width],
        "normalize": {"rule": rule, "low_percentile": low, "high_percentile": high,
                      "text": NORMALIZE_TEXT.format(low=low, high=high)},
        "clahe": {"enabled": bool(preprocess.get("clahe", False)), "clip_limit": 2.0,
                  "tile_grid": [8, 8], "text": CLAHE_TEXT},
        "letterbox": {"pad_value": 0.0, "text": LETTERBOX_RULE},
        "threshold": float(threshold),
        "class_names": class_names(num_classes),
        "postprocess": {"probabilities": PROBABILITY_RULE, "cleanup": bool(postprocess),
                        "cleanup_params": {k: float(v) for k, v in cleanup.items()},
                        "cleanup_rule": CLEANUP_RULE,
                        "cleanup_column_from": "coarse_logits" if "coarse_logits" in outputs else "mask"},
        "model_config": json.loads(json.dumps(dict(model_config))),
        "source": dict(source or {}),
    }


def contract_from_metadata(metadata: Mapping[str, str], path: str | Path) -> dict[str, Any]:
    """The contract from a model's ``metadata_props`` (a key -> string map), checked.

    Raises :class:`ConfigError` naming the file when the model was not exported by r2mfnet or its
    contract is of a newer schema or damaged.
    """
    text = metadata.get(METADATA_KEY)
    if text is None:
        raise ConfigError(f"{path}: no '{METADATA_KEY}' entry in the ONNX metadata (export the "
                          "model with r2mfnet-export)")
    try:
        contract = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: the '{METADATA_KEY}' metadata is not valid JSON ({exc.msg})") from None
    if not isinstance(contract, dict) or contract.get("schema") != SCHEMA:
        schema = contract.get("schema") if isinstance(contract, dict) else None
        raise ConfigError(f"{path}: contract schema {schema!r} is not '{SCHEMA}' (export it again "
                          "with this r2mfnet version)")
    missing = [k for k in ("input_size", "normalize", "clahe", "threshold", "class_names",
                           "postprocess", "model_config", "outputs") if k not in contract]
    if missing:
        raise ConfigError(f"{path}: the r2mfnet contract lacks {', '.join(missing)}")
    if contract["normalize"].get("rule") not in NORMALIZE_RULES:
        raise ConfigError(f"{path}: unknown normalize rule {contract['normalize'].get('rule')!r}")
    return contract


def contract_json(contract: Mapping[str, Any]) -> str:
    """The contract as it is stored (compact, key order kept)."""
    return json.dumps(contract, separators=(",", ":"))


__all__ = ["METADATA_KEY", "SCHEMA", "NORMALIZE_RULES", "build_contract", "class_names",
           "contract_from_metadata", "contract_json"]

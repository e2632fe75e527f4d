"""``r2mfnet-model-summary`` / ``scripts/model_summary.py``: parameters and GFLOPs of every model.

Root config ``configs/model_summary.yaml``; the counting is :mod:`r2mfnet.models.summary`.
``step_time=true`` also times a training step of R2MF-Net against the two-U-Net cascade.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

from omegaconf import MISSING, DictConfig

from r2mfnet.apps.schema import CommandConfig, command_config
from r2mfnet.cli import hydra_entry
from r2mfnet.typed_config import image_size_field


@dataclass
class ModelSummaryConfig(CommandConfig):
    """``configs/model_summary.yaml``'s keys and types (the values are the YAML's)."""

    RENAMED = {"height": "image_size", "width": "image_size"}
    image_size: List[int] = image_size_field()
    base_channels: int = MISSING
    depth: int = MISSING
    step_time: bool = MISSING
    repeats: int = MISSING
    threads: int = MISSING


def run(cfg: DictConfig) -> str:
    """Print (and return) the table, and the step timing when asked."""
    import torch

    from r2mfnet.models.summary import CASCADE_REFERENCE, summarize, time_train_steps, to_markdown

    c = command_config(ModelSummaryConfig, cfg)
    if c.threads:
        torch.set_num_threads(c.threads)
    shape = (1, 1, *c.image_size)
    kw = dict(base_channels=c.base_channels, depth=c.depth)
    lines = [to_markdown(summarize(input_shape=shape, **kw), shape),
             f"\nbase_channels={kw['base_channels']}, depth={kw['depth']}; GFLOPs = 2 x GMACs of one "
             "forward pass, counted by torch.utils.flop_counter.FlopCounterMode."]
    if c.step_time:
        names = ["r2mfnet", CASCADE_REFERENCE, "unet"]
        t = time_train_steps(names, repeats=c.repeats, **kw)
        lines.append(f"\nTraining step (Adam, batch 4x1x256x128, {torch.get_num_threads()} threads, "
                     f"median of {c.repeats}):")
        lines += [f"- {name}: {t[name]:.3f} s" for name in names]
        lines.append(f"- ratio r2mfnet / 2x unet (cascade): {t['r2mfnet'] / t[CASCADE_REFERENCE]:.2f}")
        lines.append(f"- ratio r2mfnet / (2 x unet step): {t['r2mfnet'] / (2 * t['unet']):.2f}")
    text = "\n".join(lines)
    print(text)
    return text


main = hydra_entry("model_summary", run, renamed=ModelSummaryConfig.RENAMED)

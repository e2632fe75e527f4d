"""``r2mfnet-make-synthetic`` / ``scripts/make_synthetic.py``: generate the synthetic data set.

Root config ``configs/make_synthetic.yaml``; the generator is :mod:`r2mfnet.data.synthetic`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from omegaconf import MISSING, DictConfig

from r2mfnet.apps.schema import CommandConfig, OutputDirKeys, command_config
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError
from r2mfnet.typed_config import image_size_field


@dataclass
class MakeSyntheticConfig(OutputDirKeys, CommandConfig):
    """``configs/make_synthetic.yaml``'s keys and types (the values are the YAML's)."""

    RENAMED = {"image_height": "image_size", "image_width": "image_size"}
    num_cases: int = MISSING
    seed: int = MISSING
    image_size: List[int] = image_size_field()
    quality_weights: List[float] = MISSING  # high, medium, low
    num_workers: Optional[int] = MISSING
    contact_sheet: bool = MISSING
    contact_sheet_path: Optional[str] = MISSING
    contact_sheet_cases: int = MISSING


def run(cfg: DictConfig) -> Path:
    """Generate the set (and the contact sheet); return the manifest path."""
    from r2mfnet.data.synthetic import generate_dataset, make_contact_sheet

    c = command_config(MakeSyntheticConfig, cfg)
    if not c.output_dir:
        raise ConfigError("output_dir= is required (see --help)")
    height, width = c.image_size
    t0 = time.perf_counter()
    manifest = generate_dataset(c.output_dir, c.num_cases, seed=c.seed, image_height=height, image_width=width,
                                quality_weights=list(c.quality_weights), num_workers=c.num_workers)
    dt = time.perf_counter() - t0
    print(f"wrote {c.num_cases} cases x 3 views to {manifest} in {dt:.1f} s "
          f"({dt / c.num_cases:.3f} s/case)")
    if c.contact_sheet:
        path = c.contact_sheet_path or str(Path(c.output_dir) / "contact_sheet.png")
        make_contact_sheet(manifest, path, num_cases=c.contact_sheet_cases)
        print(f"contact sheet: {path}")
    return manifest


main = hydra_entry("make_synthetic", run, renamed=MakeSyntheticConfig.RENAMED)

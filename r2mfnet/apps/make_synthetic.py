"""``r2mfnet-make-synthetic`` / ``scripts/make_synthetic.py``: generate the synthetic data set.

Root config ``configs/make_synthetic.yaml``; the generator is :mod:`r2mfnet.data.synthetic`.
"""
from __future__ import annotations

import time
from pathlib import Path

from omegaconf import DictConfig

from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError

INTEGER_KEYS = ("num_cases", "seed", "image_height", "image_width", "contact_sheet_cases")


def _check(cfg: DictConfig) -> None:
    """Types the generator relies on, named by key (a YAML config does not enforce them)."""
    for key in INTEGER_KEYS:
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int):
            raise ConfigError(f"{key} must be an integer, got {cfg[key]!r}")
    if not isinstance(cfg.contact_sheet, bool):
        raise ConfigError(f"contact_sheet must be true or false, got {cfg.contact_sheet!r}")


def run(cfg: DictConfig) -> Path:
    """Generate the set (and the contact sheet); return the manifest path."""
    from r2mfnet.data.synthetic import generate_dataset, make_contact_sheet

    _check(cfg)
    t0 = time.perf_counter()
    manifest = generate_dataset(str(cfg.output_dir), cfg.num_cases, seed=cfg.seed,
                                image_height=cfg.image_height, image_width=cfg.image_width,
                                quality_weights=list(cfg.quality_weights), num_workers=cfg.num_workers)
    dt = time.perf_counter() - t0
    print(f"wrote {cfg.num_cases} cases x 3 views to {manifest} in {dt:.1f} s "
          f"({dt / cfg.num_cases:.3f} s/case)")
    if cfg.contact_sheet:
        path = cfg.contact_sheet_path or str(Path(str(cfg.output_dir)) / "contact_sheet.png")
        make_contact_sheet(manifest, path, num_cases=cfg.contact_sheet_cases)
        print(f"contact sheet: {path}")
    return manifest


main = hydra_entry("make_synthetic", run)

"""Generate the synthetic multi-view scoliosis data set (and optionally a contact sheet).

    python scripts/make_synthetic.py output_dir=data/synthetic num_cases=300 seed=0 \
        image_height=512 image_width=256 contact_sheet=true

Keys are ``key=value`` pairs (OmegaConf CLI syntax). Unknown keys are an error (exit code 2).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

DEFAULTS = {
    "output_dir": "data/synthetic",
    "num_cases": 200,
    "seed": 0,
    "image_height": 512,
    "image_width": 256,
    "quality_weights": [0.4, 0.35, 0.25],
    "num_workers": None,  # None: all cores for >= 16 cases
    "contact_sheet": False,
    "contact_sheet_path": None,  # default: <output_dir>/contact_sheet.png
    "contact_sheet_cases": 4,
}


def parse_config(argv: list[str]) -> dict:
    """Merge ``key=value`` arguments over :data:`DEFAULTS`; raise ConfigError on unknown keys."""
    from omegaconf import OmegaConf

    from r2mfnet.errors import ConfigError

    try:
        cli = OmegaConf.to_container(OmegaConf.from_cli(list(argv)))
    except Exception as exc:  # OmegaConf raises several grammar errors
        raise ConfigError(f"could not parse arguments {argv}: {exc}. Use key=value pairs.") from exc
    unknown = sorted(set(cli) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(DEFAULTS)}")
    cfg = dict(DEFAULTS)
    cfg.update(cli)
    for key in ("num_cases", "seed", "image_height", "image_width", "contact_sheet_cases"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int):
            raise ConfigError(f"{key} must be an integer, got {cfg[key]!r}")
    if not isinstance(cfg["contact_sheet"], bool):
        raise ConfigError(f"contact_sheet must be true or false, got {cfg['contact_sheet']!r}")
    return cfg


def main(argv: list[str]) -> int:
    from r2mfnet.errors import R2MFNetError

    try:
        cfg = parse_config(argv)
        from r2mfnet.data.synthetic import generate_dataset, make_contact_sheet

        t0 = time.perf_counter()
        manifest = generate_dataset(cfg["output_dir"], cfg["num_cases"], seed=cfg["seed"],
                                    image_height=cfg["image_height"], image_width=cfg["image_width"],
                                    quality_weights=cfg["quality_weights"],
                                    num_workers=cfg["num_workers"])
        dt = time.perf_counter() - t0
        print(f"wrote {cfg['num_cases']} cases x 3 views to {manifest} in {dt:.1f} s "
              f"({dt / cfg['num_cases']:.3f} s/case)")
        if cfg["contact_sheet"]:
            path = cfg["contact_sheet_path"] or str(Path(cfg["output_dir"]) / "contact_sheet.png")
            make_contact_sheet(manifest, path, num_cases=cfg["contact_sheet_cases"])
            print(f"contact sheet: {path}")
    except R2MFNetError as exc:
        if os.environ.get("R2MFNET_FULL_ERROR") == "1":
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

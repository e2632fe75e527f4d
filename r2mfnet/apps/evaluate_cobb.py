"""``r2mfnet-evaluate-cobb`` / ``scripts/evaluate_cobb.py``: Cobb angles from masks vs references.

Root config ``configs/evaluate_cobb.yaml``. ``dataset=spineweb16`` (experts' ``angles.csv``) or
``synthetic`` (the generator's angles, a set generated once and cached); ``checkpoint=`` adds
predicted-mask rows. Writes ``measure_eval.json`` and ``measure_eval.md`` into ``output_dir``
(default ``outputs/measure_eval/<dataset>``). Harness: :mod:`r2mfnet.apps.cobb_harness`;
statistics: :mod:`r2mfnet.measure.evaluate`; definitions: ``docs/clinical.md``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from r2mfnet.apps.common import build_predictor, command_line
from r2mfnet.cli import hydra_entry
from r2mfnet.errors import ConfigError


def _methods(value: Any) -> list[str]:
    """``methods=[vertebrae,centreline]`` or the quoted string ``'methods=vertebrae,centreline'``."""
    from r2mfnet.measure.case import METHODS

    methods = [m.strip() for m in value.split(",")] if isinstance(value, str) else [str(m) for m in value]
    methods = [m for m in methods if m]
    if not methods or any(m not in METHODS for m in methods):
        raise ConfigError(f"methods must be a non-empty subset of [{', '.join(METHODS)}], got {methods}")
    return methods


def _size(value: Any) -> tuple[int, int] | None:
    """``gt_at=[H,W]``: two positive integers, or null."""
    if value is None:
        return None
    size = list(value) if not isinstance(value, (str, int)) else []
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in size):
        raise ConfigError(f"gt_at must be [height, width] (integers >= 8) or null, got {value!r}")
    return int(size[0]), int(size[1])


def run(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate, write ``measure_eval.json`` / ``.md``, print the tables; return the result."""
    from r2mfnet.apps.cobb_harness import evaluate_spineweb16, evaluate_synthetic
    from r2mfnet.apps.cobb_report import to_markdown, write_result

    dataset = str(cfg.dataset)
    if dataset not in ("spineweb16", "synthetic"):
        raise ConfigError(f"dataset must be spineweb16 or synthetic, got '{dataset}'")
    methods = _methods(cfg.methods)
    cache = Path(str(cfg.cache_dir)).expanduser()
    checkpoint = cfg.get("checkpoint")
    predictor = build_predictor(cfg) if checkpoint else None
    if dataset == "spineweb16":
        from r2mfnet.data.spineweb16 import default_root, prepare_spineweb16

        root = Path(str(cfg.root)) if cfg.get("root") else default_root()
        manifest = prepare_spineweb16(root, cache / "spineweb16")
        result = evaluate_spineweb16(
            manifest, root=root, predictor=predictor, checkpoint=checkpoint, split=str(cfg.split),
            methods=methods, every=int(cfg.every),
            limit=None if cfg.get("limit") is None else int(cfg.limit), progress=bool(cfg.progress),
            gt_at=_size(cfg.get("gt_at")))
    else:
        from r2mfnet.data.synthetic import ensure_dataset

        manifest = ensure_dataset(cache / "synthetic", num_cases=int(cfg.num_cases), seed=int(cfg.seed),
                                  image_height=int(cfg.image_height), image_width=int(cfg.image_width))
        result = evaluate_synthetic(manifest, predictor=predictor, methods=methods,
                                    progress=bool(cfg.progress))
    if checkpoint:
        result["checkpoint"] = str(checkpoint)
    out = Path(str(cfg.get("output_dir") or Path("outputs") / "measure_eval" / dataset))
    j, m = write_result(result, out, command_line("evaluate_cobb"))
    print(to_markdown(result))
    print(f"written: {j} and {m}")
    return result


main = hydra_entry("evaluate_cobb", run)

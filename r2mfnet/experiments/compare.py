"""Train and evaluate several models under one budget, resumably, and tabulate the results.

Each run lives in ``<root>/<model>_seed<k>/`` and is an ordinary training run: the runner
composes ``configs/`` with the experiment, the model and the seed, and calls
:func:`r2mfnet.training.run.train` with ``trainer.resume=auto``, so a run killed at the end of a
working session continues from its ``latest.pt`` next time, and a finished run (one with
``result.json``) is not trained again. The table is built only from the saved ``result.json``
files, never from memory. The command is :mod:`r2mfnet.apps.compare` (``scripts/compare.py``).
"""
from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from r2mfnet.atomic import atomic_write_json, atomic_write_text

log = logging.getLogger("r2mfnet.compare")

DEFAULT_MODELS: tuple[str, ...] = (
    "r2mfnet", "unet", "r2unet", "attention_unet", "unetpp",
    "r2mfnet_no_r2jump", "r2mfnet_no_mcskip", "r2mfnet_no_scse", "r2mfnet_no_inception", "r2mfnet_no_cascade",
)
METRICS = ("dice", "iou", "boundary_f1", "hd95")


@dataclass(frozen=True)
class RunSpec:
    model: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.model}_seed{self.seed}"


def _compose(overrides: Sequence[str]):
    """The training config of one run, exactly as ``r2mfnet-train`` would compose it."""
    from r2mfnet.config_dir import compose

    return compose("config", overrides)


def _inference_ms_per_image(checkpoint: Path, records: list, repeats: int = 8) -> float:
    """Median wall time of one original-size prediction (preprocessing and inverse included)."""
    from r2mfnet.data.dataset import load_view
    from r2mfnet.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    images = [load_view(r)[2].array for r in records[:repeats]]
    predictor.predict_probability(images[0])  # warm-up
    times = []
    for image in images:
        start = time.perf_counter()
        predictor.predict_probability(image)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def run_one(spec: RunSpec, experiment: str, root: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Train (or resume, or skip) one run; return its saved result."""
    from r2mfnet.config import build_model, validate
    from r2mfnet.data.build import load_splits
    from r2mfnet.models.summary import count_gflops, count_parameters
    from r2mfnet.training.run import train

    run_dir = root / spec.key
    result_path = run_dir / "result.json"
    if result_path.exists():
        log.info("%s: finished earlier, reusing %s", spec.key, result_path)
        return json.loads(result_path.read_text())
    overrides = [f"experiment={experiment}", f"model={spec.model}", f"trainer.seed={spec.seed}",
                 "trainer.resume=auto", "trainer.progress=false", *extra]
    cfg = _compose(overrides)
    outcome = train(cfg, run_dir)
    run = validate(cfg)
    history = outcome["train"].history
    best = outcome["train"].best_checkpoint
    splits = load_splits(run.data)
    model = build_model(run.model)
    result = {
        "model": spec.model,
        "seed": spec.seed,
        "overrides": overrides,
        "summary": outcome["summary"],
        "parameters": count_parameters(model),
        "gflops": count_gflops(model, (1, 1, run.data.input_height, run.data.input_width)),
        "train_seconds": float(sum(h.get("epoch_seconds", 0.0) for h in history)),
        "epochs": len(history),
        "inference_ms": _inference_ms_per_image(best, splits["test"]) if best else None,
        "input_size": [run.data.input_height, run.data.input_width],
        "n_test": len(splits["test"]),
    }
    atomic_write_json(result_path, result)
    return result


def run_all(
    experiment: str, root: str | Path, models: Sequence[str] = DEFAULT_MODELS, seeds: Sequence[int] = (0,),
    extra: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Every (model, seed) in turn; each is resumable and skipped when finished."""
    root = Path(root)
    return [run_one(RunSpec(m, s), experiment, root, extra) for s in seeds for m in models]


def _mean_std(values: list[float]) -> str:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f}"


def results_table(root: str | Path, models: Sequence[str] = DEFAULT_MODELS) -> str:
    """Markdown table from the saved ``result.json`` files under ``root``.

    Per model: mean ± SD over test images of each metric (from the run's summary; with several
    seeds, the mean of per-seed means ± their SD), parameters, GFLOPs per image at the input
    size, training time, inference time, number of seeds.
    """
    root = Path(root)
    lines = [
        "| model | Dice | IoU | boundary F1 | HD95 (mm) | params (M) | GFLOPs | train (min) | infer (ms/img) | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model in models:
        results = [json.loads(p.read_text()) for p in sorted(root.glob(f"{model}_seed*/result.json"))]
        results = [r for r in results if r["model"] == model and r.get("summary")]
        if not results:
            continue
        cells = []
        for metric in METRICS:
            stats = [r["summary"]["overall"][metric] for r in results]
            if len(results) == 1:
                s = stats[0]
                cells.append(f"{s['mean']:.3f} ± {s['std']:.3f}")
            else:
                cells.append(_mean_std([s["mean"] for s in stats]))
        first = results[0]
        lines.append(
            f"| {model} | " + " | ".join(cells)
            + f" | {first['parameters'] / 1e6:.2f} | {first['gflops']:.2f}"
            + f" | {np.mean([r['train_seconds'] for r in results]) / 60:.1f}"
            + f" | {np.mean([r['inference_ms'] or np.nan for r in results]):.0f} | {len(results)} |"
        )
    return "\n".join(lines)


def paired_table(
    root: str | Path, models: Sequence[str] = DEFAULT_MODELS, reference: str = "r2mfnet", seed: int = 0,
    metric: str = "dice",
) -> str:
    """Markdown table of each model's per-image ``metric`` minus the reference's, same seed.

    Reads each run's ``eval/metrics_per_case.csv``; patients come from the manifest of the
    reference run's data config (see :mod:`r2mfnet.experiments.paired` for why).
    """
    from r2mfnet.config import validate
    from r2mfnet.data.build import resolve_manifest
    from r2mfnet.experiments.paired import paired_difference, patients_from_manifest, read_per_case

    root = Path(root)
    ref_dir = root / RunSpec(reference, seed).key
    if not (ref_dir / "result.json").is_file():
        return f"(no finished `{ref_dir.name}` run: no paired comparison)"
    ref_result = json.loads((ref_dir / "result.json").read_text())
    patients = patients_from_manifest(resolve_manifest(validate(_compose(ref_result["overrides"])).data))
    ref_scores = read_per_case(ref_dir / "eval" / "metrics_per_case.csv", metric)
    lines = [
        f"| model | mean Δ{metric} vs {reference} | 95% CI (patient bootstrap) | images where {reference} is higher | images / patients |",
        "|---|---|---|---|---|",
    ]
    for model in models:
        run_dir = root / RunSpec(model, seed).key
        if model == reference or not (run_dir / "result.json").is_file():
            continue
        d = paired_difference(ref_scores, read_per_case(run_dir / "eval" / "metrics_per_case.csv", metric), patients)
        lines.append(f"| {model} | {d.mean:+.4f} | [{d.ci_low:+.4f}, {d.ci_high:+.4f}] | "
                     f"{100 * d.reference_better:.0f}% | {d.n_images} / {d.n_patients} |")
    return "\n".join(lines)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    import os

    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def write_results(root: str | Path, output: str | Path, command: str, models: Sequence[str] = DEFAULT_MODELS) -> str:
    """Write the table with the hardware and the command that produced it."""
    seeds = sorted(int(p.parent.name.rsplit("_seed", 1)[1]) for p in Path(root).glob("r2mfnet_seed*/result.json"))
    paired = "".join(
        f"\nPaired per-image Dice differences, seed {seed} (negative: lower than R2MF-Net):\n\n"
        f"{paired_table(root, models, seed=seed)}\n"
        for seed in seeds
    )
    text = f"Command: `{command}`\n\nMachine: {machine_description()}\n\n{results_table(root, models)}\n{paired}"
    atomic_write_text(output, text)
    return text

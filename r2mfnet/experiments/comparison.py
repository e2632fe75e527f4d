"""Train and evaluate several models under one budget, resumably, and tabulate the results.

Each run lives in ``<root>/<model>_seed<k>/`` and is an ordinary training run: the runner
composes ``configs/`` with the experiment, the model and the seed, and calls
:func:`r2mfnet.training.run.train` with ``trainer.resume=auto``, so a run killed at the end of a
working session continues from its ``latest.pt`` next time, and a finished run (one with
``result.json``) is not trained again. The table is built only from the saved ``result.json``
files, never from memory. The command is :mod:`r2mfnet.apps.compare` (``scripts/compare.py``).

"The same budget" means the same training time, not the same number of epochs: a U-Net epoch
costs a fraction of an R2MF-Net epoch. ``per_model`` overrides (``configs/compare.yaml``) set
each model's epochs so that the runs take about the same minutes on the reference machine, and
the table prints the minutes each run actually took. Every run also keeps its validation curve
(Dice and vertebra F1 against cumulative CPU and wall minutes) in ``result.json``.
"""
from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from r2mfnet.atomic import atomic_write_json, atomic_write_text

log = logging.getLogger("r2mfnet.compare")

DEFAULT_MODELS: tuple[str, ...] = (
    "r2mfnet", "unet", "smp_unet", "r2mfnet_v2", "r2mfnet_v1", "r2mfnet_roi",
    "r2mfnet_fine_crop", "r2mfnet_no_r2jump", "r2mfnet_no_mcskip", "r2mfnet_no_scse", "r2mfnet_no_inception",
    "r2mfnet_no_cascade", "r2mfnet_full_inception", "r2mfnet_full_r2jump", "r2mfnet_two_stage",
)
"""docs/results.md's comparison: R2MF-Net, a plain U-Net and the segmentation_models_pytorch U-Net
(``smp_unet``, optional extra ``peers``), the first cost-aware R2MF-Net (``r2mfnet_v2``),
R2MF-Net before its compute-aware defaults (``r2mfnet_v1``), today's R2MF-Net with the
region-of-interest cascade (``r2mfnet_roi``), then the ablations: of ``r2mfnet_v1`` (``no_*``, ``fine_crop``), and of
today's default with one compute-aware choice switched back (``full_*``, ``two_stage``). The other baselines (``r2unet``,
``attention_unet``, ``unetpp``) run with ``models=[...]``."""
METRICS = ("dice", "iou", "boundary_f1", "hd95", "vertebra_f1")
CURVE_KEYS = ("stage", "epoch", "elapsed_seconds", "cpu_seconds", "val_dice", "val_vertebra_f1")


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
    from r2mfnet.inference import build_predictor

    predictor = build_predictor(checkpoint=str(checkpoint), device="cpu")
    images = [load_view(r)[2].array for r in records[:repeats]]
    predictor.predict_probability(images[0])  # warm-up
    times = []
    for image in images:
        start = time.perf_counter()
        predictor.predict_probability(image)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def _curve(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The validated epochs of a training history: time and validation scores only."""
    return [{k: h[k] for k in CURVE_KEYS if k in h} for h in history if "val_dice" in h]


def run_one(spec: RunSpec, experiment: str, root: Path, extra: Sequence[str] = (),
            per_model: Sequence[str] = ()) -> dict[str, Any]:
    """Train (or resume, or skip) one run; return its saved result.

    ``per_model`` are this model's own overrides (its share of the budget), applied after
    ``extra``."""
    from r2mfnet.training.run_config import build_model, validate
    from r2mfnet.data.build_datasets import load_splits
    from r2mfnet.models.summary import count_gflops, count_parameters
    from r2mfnet.training.run import train

    run_dir = root / spec.key
    result_path = run_dir / "result.json"
    if result_path.exists():
        log.info("%s: finished earlier, reusing %s", spec.key, result_path)
        return json.loads(result_path.read_text())
    overrides = [f"experiment={experiment}", f"model={spec.model}", f"trainer.seed={spec.seed}",
                 "trainer.resume=auto", "trainer.progress=false", *extra, *per_model]
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
        "curve": _curve(history),
        "inference_ms": _inference_ms_per_image(best, splits["test"]) if best else None,
        "input_size": [run.data.input_height, run.data.input_width],
        "n_test": len(splits["test"]),
    }
    atomic_write_json(result_path, result)
    return result


def run_all(
    experiment: str, root: str | Path, models: Sequence[str] = DEFAULT_MODELS, seeds: Sequence[int] = (0,),
    extra: Sequence[str] = (), per_model: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Every (model, seed) in turn, seed by seed; each is resumable and skipped when finished."""
    root = Path(root)
    per_model = per_model or {}
    return [run_one(RunSpec(m, s), experiment, root, extra, per_model.get(m, ())) for s in seeds for m in models]


def _results(root: Path, model: str) -> list[dict[str, Any]]:
    """The finished runs of ``model`` under ``root``, by seed."""
    found = [json.loads(p.read_text()) for p in sorted(root.glob(f"{model}_seed*/result.json"))]
    return [r for r in found if r["model"] == model and r.get("summary")]


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
    size, training time (wall, training epochs only), the CPU time of the whole run (validation
    included: the budget the run used), inference time, number of seeds. Distances are in the unit the
    evaluation used (mm where the pixel spacing is known, else pixels at original resolution).
    """
    root = Path(root)
    found = {model: _results(root, model) for model in models}
    units = {r["summary"].get("distance_unit", "pixel") for rs in found.values() for r in rs}
    unit = "mm" if units == {"mm"} else "px" if units == {"pixel"} else "mm or px"
    lines = [
        f"| model | Dice | IoU | boundary F1 | HD95 ({unit}) | vertebra F1 | params (M) | GFLOPs | train (min) "
        "| CPU (min) | infer (ms/img) | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, results in found.items():
        if not results:
            continue
        cells = []
        for metric in METRICS:
            stats = [r["summary"]["overall"].get(metric) for r in results]
            if any(s is None for s in stats):
                cells.append("–")
            elif len(results) == 1:
                cells.append(f"{stats[0]['mean']:.3f} ± {stats[0]['std']:.3f}")
            else:
                cells.append(_mean_std([s["mean"] for s in stats]))
        first = results[0]
        lines.append(
            f"| {model} | " + " | ".join(cells)
            + f" | {first['parameters'] / 1e6:.2f} | {first['gflops']:.2f}"
            + f" | {np.mean([r['train_seconds'] for r in results]) / 60:.1f}"
            + f" | {_cpu_minutes(results)}"
            + f" | {np.mean([r['inference_ms'] or np.nan for r in results]):.0f} | {len(results)} |"
        )
    return "\n".join(lines)


def _cpu_minutes(results: list[dict[str, Any]]) -> str:
    """Mean CPU minutes of the runs up to their last validation (the budget they used), or "–"
    for runs saved before the curve was recorded."""
    cpu = [r["curve"][-1]["cpu_seconds"] / 60 for r in results if r.get("curve") and "cpu_seconds" in r["curve"][-1]]
    return f"{np.mean(cpu):.1f}" if len(cpu) == len(results) else "–"


COBB_SOURCE = "pred/vertebrae"
"""The Cobb row the table reports: the end-plate method (``docs/clinical.md``) on predicted masks."""


def cobb_table(root: str | Path, models: Sequence[str] = DEFAULT_MODELS) -> str:
    """Markdown table of the Cobb angles measured on each model's predicted test masks
    (``result["cobb_predicted"]``, written by the compare application): the SMAPE over the three
    angles (``smape_pct``, the AASCE challenge's measure) and the main angle's MAE (with several
    seeds, their mean over seeds), and the images measured and not measurable, per seed. The
    main angle's own SMAPE is not in every saved run, so the table does not show it."""
    lines = ["| model | SMAPE, 3 angles (%) | main-angle MAE (°) | images measured, per seed | not measurable, per seed | seeds |",
             "|---|---|---|---|---|---|"]
    for model in models:
        rows = [row for r in _results(Path(root), model) for row in r.get("cobb_predicted", [])
                if row["source"] == COBB_SOURCE]
        if not rows:
            continue
        lines.append(
            f"| {model} | {np.mean([r['smape_pct'] for r in rows]):.1f} | {np.mean([r['mae_main_deg'] for r in rows]):.2f}"
            f" | {', '.join(str(r['n']) for r in rows)} | {', '.join(str(r['n_failed']) for r in rows)} | {len(rows)} |"
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
    from r2mfnet.training.run_config import validate
    from r2mfnet.data.build_datasets import resolve_manifest
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
    if len(lines) == 2:
        return f"(no other model has a finished run with seed {seed})"
    return "\n".join(lines)


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    import os

    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def write_results(root: str | Path, output: str | Path, command: str, models: Sequence[str] = DEFAULT_MODELS,
                  curve_models: Sequence[str] = ("r2mfnet", "r2mfnet_v2", "r2mfnet_v1", "unet", "smp_unet"),
                  reference: str = "r2mfnet") -> str:
    """Write the tables (metrics, paired differences for Dice and vertebra F1 against
    ``reference``, one per seed it has, Cobb angles) with the hardware and the command that
    produced them, and the Dice-against-CPU-minutes picture ``<output stem>_curves.svg`` of
    ``curve_models`` (the main models, not the ablations: their lines would hide the comparison).
    ``reference`` is a choice because a renamed default keeps its runs: the paired numbers quoted
    for it stay reproducible (``reference=r2mfnet_v2``)."""
    from r2mfnet.experiments.curves import curves_svg

    root, output = Path(root), Path(output)
    seeds = sorted(int(p.parent.name.rsplit("_seed", 1)[1]) for p in root.glob(f"{reference}_seed*/result.json"))
    paired = "".join(
        f"\nPaired per-image {name} differences, seed {seed} (negative: lower than {reference}):\n\n"
        f"{paired_table(root, models, reference=reference, seed=seed, metric=metric)}\n"
        for seed in seeds for metric, name in (("dice", "Dice"), ("vertebra_f1", "vertebra F1"))
    )
    cobb = cobb_table(root, models)
    picture = output.with_name(output.stem + "_curves.svg")
    runs = {r["model"] + f" seed {r['seed']}": r.get("curve", []) for m in curve_models for r in _results(root, m)}
    if any(runs.values()):
        atomic_write_text(picture, curves_svg(runs, title="Validation Dice against CPU minutes"))
    text = (f"Command: `{command}`\n\nMachine: {machine_description()}\n\n{results_table(root, models)}\n{paired}"
            f"\nCobb angles from predicted test masks (end-plate method; SMAPE over the three angles, "
            f"MAE of the main angle):\n\n{cobb}\n")
    atomic_write_text(output, text)
    return text

"""PyTorch eager against ONNX Runtime: ms per radiograph and how far their masks agree.

The question a deployment asks: on a CPU server, how much faster (or slower) is the exported
model under ONNX Runtime than the same model in PyTorch, at the batch sizes and thread counts a
server uses, and does it segment the same? Per case (a model at its input size) the model is
exported exactly as ``r2mfnet-export`` does (:func:`r2mfnet.deploy.onnx_export.export_bytes`)
and timed in three ways on the same fixed batch:

* ``torch``: eager fp32, NCHW, under ``torch.inference_mode`` (``torch.set_num_threads(t)``);
* ``torch_cl``: the same in channels_last, which is what the PyTorch predictor runs on CPU;
* ``onnxruntime``: a CPU session with ``intra_op_num_threads = t``.

Only the model call is timed: preprocessing, the inverse letterbox and the clean-up are the same
NumPy/OpenCV code for both backends. Timings come from :func:`r2mfnet.benchmark.timing.interleaved`
(every task once per round; the speed-up is the median of per-round ratios, so a load change on
a shared machine affects both sides of a ratio alike). Agreement: masks (the predictor's rule at
0.5) of both backends on synthetic radiographs generated at the case's input size, Dice per
image, and the largest |logit difference|. An untrained model (a preset) times the same as a
trained one, except that with ``fine_crop`` the crop box comes from its coarse mask and so the
crop's resampling cost can differ a little; give ``checkpoints`` to time trained models.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from r2mfnet.benchmark.timing import interleaved, median
from r2mfnet.errors import ConfigError


@dataclass(frozen=True)
class DeployCase:
    """One model at one input size: a registry config (untrained, seed 0) or a checkpoint."""

    label: str
    model_config: dict[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int] = (256, 128)
    checkpoint: str | None = None


PRESETS: dict[str, DeployCase] = {
    "demo": DeployCase("demo: r2mfnet base 8, 256x128", {"name": "r2mfnet", "base_channels": 8, "depth": 4},
                       (256, 128)),
    "spineweb16_crop": DeployCase(
        "SpineWeb16 fine_crop: r2mfnet base 8, 768x384 (coarse 256x128, crop 512x128)",
        {"name": "r2mfnet", "base_channels": 8, "depth": 4, "fine_crop": True,
         "coarse_size": [256, 128], "crop_size": [512, 128]}, (768, 384)),
}
"""The demo's model and size (also the SpineWeb16 recipe's: configs/experiment/spineweb16.yaml is
base 8, depth 4 at 256x128), and the region-of-interest variant checked on SpineWeb16 in issue 16
(docs/architecture.md; not the recipe)."""

BACKENDS = ("torch", "torch_cl", "onnxruntime")


@dataclass
class DeployBenchConfig:
    cases: list[DeployCase]
    batches: tuple[int, ...] = (1, 8)
    threads: tuple[int, ...] = (1, 2)
    rounds: int = 5
    warmup: int = 1
    dice_cases: int = 4  # synthetic patients (3 views each) for the agreement check
    cache_dir: str = ".cache/r2mfnet"
    opset: int = 17


def case_from_checkpoint(path: str | Path) -> DeployCase:
    """A :class:`DeployCase` for a trained checkpoint (its model and input size)."""
    from r2mfnet.checkpoint import load_trained

    loaded = load_trained(path)
    h, w = loaded.input_size
    config = dict(loaded.model.model_config)
    return DeployCase(f"{Path(path).name}: {config.get('name')} {h}x{w}", config, (h, w), str(path))


def _build(case: DeployCase) -> torch.nn.Module:
    if case.checkpoint is not None:
        from r2mfnet.checkpoint import load_trained

        return load_trained(case.checkpoint).model
    from r2mfnet.models import create

    torch.manual_seed(0)
    model = create(**case.model_config)
    if getattr(model, "has_stages", False):  # a cascade runs whole; a one-stage model has no "joint"
        model.set_stage("joint")
    return model.eval()


def _session(data: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def _torch_call(model: torch.nn.Module, x: torch.Tensor, threads: int) -> Callable[[], object]:
    def call() -> object:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return model(x)

    return call


def _agreement(model: torch.nn.Module, session: Any, names: Sequence[str], images: Sequence[np.ndarray],
               hw: tuple[int, int]) -> dict[str, Any]:
    """Mask Dice per image and the largest |logit difference| between the backends (``logits``)."""
    from r2mfnet.data.preprocess import Letterbox
    from r2mfnet.deploy.onnx_export import mask_dice, masks_at_threshold
    from r2mfnet.inference.onnx_predictor import preprocess_image

    letterbox = Letterbox(*hw)
    dices, diffs = [], []
    for raw in images:
        x = preprocess_image(raw, letterbox)[0][None, None]
        got = session.run(["logits"], {"image": x})[0]
        with torch.inference_mode():
            ref = model(torch.from_numpy(x))["logits"].float().numpy()
        diffs.append(float(np.abs(ref - got).max()))
        dices.append(mask_dice(masks_at_threshold(ref, 0.5), masks_at_threshold(got, 0.5)))
    return {"images": len(images), "mask_dice_mean": float(np.mean(dices)) if dices else float("nan"),
            "mask_dice_min": float(np.min(dices)) if dices else float("nan"),
            "max_abs_logit_diff": float(np.max(diffs)) if diffs else float("nan")}


def _synthetic_images(cfg: DeployBenchConfig, hw: tuple[int, int]) -> list[np.ndarray]:
    if cfg.dice_cases <= 0:
        return []
    from r2mfnet.benchmark.data_bench import synthetic_records
    from r2mfnet.data.io import read_image

    records = synthetic_records(cfg.cache_dir, cfg.dice_cases, hw[0], hw[1])
    return [read_image(r.image).array for r in records]


def bench_case(case: DeployCase, cfg: DeployBenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Rows (backend x batch x threads) and the agreement of one case."""
    from r2mfnet.deploy.onnx_export import export_bytes, output_names, verification_batch

    hw = (int(case.input_size[0]), int(case.input_size[1]))
    model = _build(case)
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    names = output_names(model, hw)
    log(f"[deploy] {case.label}: exporting (opset {cfg.opset})")
    data = export_bytes(model, hw, names, cfg.opset)
    sessions = {t: _session(data, t) for t in cfg.threads}
    tasks: dict[str, Callable[[], object]] = {}
    keys: dict[str, tuple[str, int, int]] = {}
    for b in cfg.batches:
        x_np = verification_batch(b, hw)
        x = torch.from_numpy(x_np)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        for t in cfg.threads:
            for backend in BACKENDS:
                name = f"{backend}|b{b}|t{t}"
                keys[name] = (backend, b, t)
                if backend == "torch":
                    tasks[name] = _torch_call(model, x, t)
                elif backend == "torch_cl":
                    tasks[name] = _torch_call(model_cl, x_cl, t)
                else:
                    session = sessions[t]
                    tasks[name] = (lambda s=session, v=x_np: s.run(list(names), {"image": v}))
    log(f"[deploy] {case.label}: {len(tasks)} tasks x {cfg.rounds} rounds")
    for _ in range(cfg.warmup):
        for fn in tasks.values():
            fn()
    cpu: dict[str, list[float]] = {}
    wall = interleaved(tasks, cfg.rounds, torch.device("cpu"), cpu_samples=cpu)
    rows = []
    for name, (backend, b, t) in keys.items():
        base = wall[f"torch|b{b}|t{t}"]
        ratios = [tb / tn for tb, tn in zip(base, wall[name]) if tn > 0]
        rows.append({"backend": backend, "batch": b, "threads": t,
                     "ms_per_image": 1000 * median(wall[name]) / b,
                     "cpu_ms_per_image": 1000 * median(cpu[name]) / b,
                     "speedup_vs_torch": median(ratios), "rounds": len(wall[name])})
    agreement = _agreement(model, sessions[cfg.threads[0]], names, _synthetic_images(cfg, hw), hw)
    return {"case": case.label, "input_size": list(hw), "model_config": dict(case.model_config),
            "checkpoint": case.checkpoint, "outputs": names, "rows": rows, "agreement": agreement}


def run_deploy_benchmark(cfg: DeployBenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every case of ``cfg``; torch's thread count is restored afterwards."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("mode=deploy needs onnxruntime; pip install 'r2mfnet[deploy]'") from None
    if not cfg.cases:
        raise ConfigError("mode=deploy: no cases (deploy_presets or deploy_checkpoints)")
    if any(b < 1 for b in cfg.batches) or any(t < 1 for t in cfg.threads):
        raise ConfigError("deploy_batches and deploy_threads must be integers >= 1")
    saved = torch.get_num_threads()
    try:
        cases = [bench_case(case, cfg, log) for case in cfg.cases]
    finally:
        torch.set_num_threads(saved)
    return {"mode": "deploy", "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "opset": cfg.opset, "rounds": cfg.rounds, "cases": cases}


def deploy_markdown(result: dict[str, Any]) -> str:
    """The tables: ms per radiograph per backend, batch and threads; the masks' agreement."""
    lines = [f"PyTorch {result['torch']} eager vs ONNX Runtime {result['onnxruntime']} (opset "
             f"{result['opset']}), CPU, fp32, model call only, median of {result['rounds']} rounds", ""]
    for case in result["cases"]:
        lines += [f"### {case['case']}", "",
                  "| backend | batch | threads | ms / radiograph | CPU ms / radiograph | speed-up vs torch |",
                  "|---|---|---|---|---|---|"]
        for r in sorted(case["rows"], key=lambda r: (r["batch"], r["threads"], BACKENDS.index(r["backend"]))):
            lines.append(f"| {r['backend']} | {r['batch']} | {r['threads']} | {r['ms_per_image']:.1f} | "
                         f"{r['cpu_ms_per_image']:.1f} | {r['speedup_vs_torch']:.2f}x |")
        a = case["agreement"]
        lines += ["", f"Agreement on {a['images']} synthetic radiographs: mask Dice mean "
                      f"{a['mask_dice_mean']:.5f}, min {a['mask_dice_min']:.5f}; max |logit difference| "
                      f"{a['max_abs_logit_diff']:.2e}", ""]
    return "\n".join(lines).rstrip()


__all__ = ["DeployCase", "DeployBenchConfig", "PRESETS", "BACKENDS", "case_from_checkpoint",
           "bench_case", "run_deploy_benchmark", "deploy_markdown"]

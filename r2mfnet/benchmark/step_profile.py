"""Where one training step's time goes: every part of a model timed and FLOP-counted on its own.

A whole-step timer says *that* R2MF-Net is slow; this says *where*. One real forward pass of the
model records the inputs of each part (each encoder and decoder block, each skip path, each
MC-Skip fusion, the bottleneck attention, the up-sampling, the head, and each network as a
whole); each part is then run alone on copies of those inputs, forward and backward (a fixed
random gradient on its outputs, gradients to its inputs and weights, as in the real step), and
timed (median of interleaved rounds, CPU seconds) and FLOP-counted with the project's one counter
(:func:`~r2mfnet.models.flops.count_flops`). The loss and the optimiser update are timed the same
way, and the whole step beside them: the difference between the step and the sum of its parts is
the glue (pooling, concatenation, the coarse sigmoid) plus what running parts in isolation
changes (cache effects), reported as ``other``.

Why isolated parts rather than ``torch.profiler``: the profiler attributes backward kernels to
autograd nodes, not to the module that created them, so "R2-Jump's share of the backward" is not
in its output; timing a part's forward+backward alone is, and it is what a change to that part
would save.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from r2mfnet.benchmark.timing import median
from r2mfnet.models.blocks.mcskip import NoFusion
from r2mfnet.models.flops import count_flops
from r2mfnet.models.skeleton import EncoderDecoder
from r2mfnet.training.losses import DiceCELoss


@dataclass
class PartTiming:
    """One row of the profile: a part, its forward+backward CPU milliseconds and GFLOPs."""

    name: str
    kind: str  # network | block | skip | mcskip | attention | upsample | head | loss | optimizer | step
    ms: float
    gflops: float
    calls: int = 1  # how often the part runs in one step (a shared block counted once per call)


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _clone_args(value: Any) -> Any:
    """A detached copy of a part's inputs that needs a gradient where the real input did (an
    intermediate feature does, the image does not)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        # a feature list passed several times (MC-Skip's context) stays one list
        return type(value)(_clone_args(v) for v in value)
    return value


def network_parts(model: nn.Module) -> list[tuple[str, str, nn.Module]]:
    """``(name, kind, module)`` of every network and its parts, in execution order.

    Finds every :class:`~r2mfnet.models.skeleton.EncoderDecoder` in ``model`` (R2MF-Net: coarse
    and fine; U-Net: one); each yields its blocks by level, skips, fusions, attention, ups, head.
    """
    parts: list[tuple[str, str, nn.Module]] = []
    for prefix, net in model.named_modules():
        if not isinstance(net, EncoderDecoder):
            continue
        label = prefix or "network"
        parts.append((label, "network", net))
        for level, block in enumerate(net.encoder):
            where = "bottleneck" if level == net.depth else f"level {level}"
            parts.append((f"{label}.encoder {where}", "block", block))
        if net.fusions is not None:
            for level, fusion in enumerate(net.fusions):
                if isinstance(fusion, NoFusion):  # MC-Skip left out at this level: nothing to time
                    continue
                parts.append((f"{label}.mcskip level {level}", "mcskip", fusion))
        if not isinstance(net.bottleneck_attention, nn.Identity):
            parts.append((f"{label}.bottleneck attention", "attention", net.bottleneck_attention))
        for level in reversed(range(net.depth)):
            skip = net.skips[level]
            if any(True for _ in skip.parameters()):
                parts.append((f"{label}.skip level {level}", "skip", skip))
            parts.append((f"{label}.up level {level}", "upsample", net.ups[level]))
            parts.append((f"{label}.decoder level {level}", "block", net.decoder[level]))
        parts.append((f"{label}.head", "head", net.head))
    return parts


def _record_inputs(model: nn.Module, modules: Sequence[nn.Module], x: torch.Tensor) -> dict[int, tuple]:
    """One forward pass of ``model`` with hooks: the positional inputs each module got."""
    seen: dict[int, tuple] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.setdefault(id(mod), args))
             for m in modules]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _fwd_bwd(module: nn.Module, args: tuple) -> Callable[[], None]:
    """Forward and backward of ``module`` alone on copies of ``args``, a fixed random gradient on
    every floating-point output."""
    inputs = _clone_args(args)
    with torch.no_grad():
        outs = _tensors(module(*inputs))
    grads = [torch.randn_like(o) for o in outs]

    def run() -> None:
        module.zero_grad(set_to_none=True)
        for t in _tensors(inputs):
            t.grad = None
        out = _tensors(module(*inputs))
        torch.autograd.backward([o for o in out if o.requires_grad],
                                [g for o, g in zip(out, grads) if o.requires_grad])

    return run


def _time(tasks: dict[str, Callable[[], object]], rounds: int, warmup: int) -> dict[str, float]:
    """Median CPU milliseconds per call of each task, the tasks interleaved round by round."""
    for fn in tasks.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(rounds):
        for name, fn in tasks.items():
            start = time.process_time()
            fn()
            samples[name].append((time.process_time() - start) * 1e3)
    return {name: median(values) for name, values in samples.items()}


def profile_train_step(model: nn.Module, step: Callable[[], float], x: torch.Tensor,
                       y: torch.Tensor, rounds: int = 5, warmup: int = 1,
                       prefix: str = "") -> list[PartTiming]:
    """Rows of every part of ``model`` plus loss, optimiser and the whole ``step``.

    ``step`` is a full training step on ``x``/``y`` (:func:`~r2mfnet.benchmark.model_bench.
    make_train_step`); the model must be in the mode the step trains it in.
    """
    parts = network_parts(model)
    recorded = _record_inputs(model, [m for _, _, m in parts], x)
    tasks: dict[str, Callable[[], object]] = {}
    rows: list[PartTiming] = []
    for name, kind, module in parts:
        if id(module) not in recorded:  # not run in this stage (e.g. the fine network frozen)
            continue
        run = _fwd_bwd(module, recorded[id(module)])
        tasks[prefix + name] = run
        rows.append(PartTiming(prefix + name, kind, 0.0, count_flops(run) / 1e9))
    outputs = {k: v.detach().requires_grad_(True) for k, v in model(x).items() if v.is_floating_point()}
    loss_fn = DiceCELoss()
    tasks[prefix + "loss"] = lambda: loss_fn(outputs, y).backward()
    rows.append(PartTiming(prefix + "loss", "loss", 0.0, 0.0))
    tasks[prefix + "optimizer"] = _optimizer_update(p for p in model.parameters() if p.requires_grad)
    rows.append(PartTiming(prefix + "optimizer", "optimizer", 0.0, 0.0))
    tasks[prefix + "step"] = step
    rows.append(PartTiming(prefix + "step", "step", 0.0, count_flops(step) / 1e9))
    times = _time(tasks, rounds, warmup)
    for row in rows:
        row.ms = times[row.name]
    return rows


def _optimizer_update(params: Iterable[nn.Parameter]) -> Callable[[], None]:
    """Gradient clipping at 1.0 and one AdamW update, as the trainer does, on fixed gradients."""
    params = list(params)
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    optimizer = torch.optim.AdamW(params, lr=1e-9, weight_decay=0.0)

    def run() -> None:
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    return run


def summarise(rows: Sequence[PartTiming]) -> dict[str, float]:
    """Totals by kind over the parts below the networks, plus ``other`` = step - parts.

    Parts are blocks, skips, fusions, attention, up-sampling and heads (the ``network`` rows
    contain them and are not added again), the loss and the optimiser.
    """
    totals: dict[str, float] = {}
    for row in rows:
        if row.kind in ("network", "step"):
            continue
        totals[row.kind] = totals.get(row.kind, 0.0) + row.ms
    step = next(r.ms for r in rows if r.kind == "step")
    totals["other"] = step - sum(totals.values())
    totals["step"] = step
    return totals


def profile_markdown(result: dict[str, Any]) -> str:
    """The stage table, then one table per model: part, CPU ms, share of the step, GFLOPs,
    GFLOP/s, and the totals by kind."""
    lines: list[str] = [stage_markdown(result), ""]
    for model_name, dict_rows in result["models"].items():
        rows = [PartTiming(**r) for r in dict_rows]
        step = next(r for r in rows if r.kind == "step")
        lines += [f"### {model_name}: one training step, forward + backward by part", "",
                  "| part | kind | CPU ms | share of step | GFLOPs | GFLOP/s |", "|---|---|---|---|---|---|"]
        for r in rows:
            rate = f"{r.gflops / (r.ms / 1e3):.1f}" if r.ms > 0 and r.gflops > 0 else ""
            lines.append(f"| {r.name} | {r.kind} | {r.ms:.1f} | {100 * r.ms / step.ms:.1f} % | "
                         f"{r.gflops:.3f} | {rate} |")
        totals = summarise(rows)
        lines += ["", "| kind | CPU ms | share of step |", "|---|---|---|"]
        for kind, ms in totals.items():
            lines.append(f"| {kind} | {ms:.1f} | {100 * ms / step.ms:.1f} % |")
        lines.append("")
    return "\n".join(lines)


def profile_models(models: dict[str, nn.Module], batch: int, size: tuple[int, int], rounds: int = 5,
                   warmup: int = 1, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The per-part profile of each model's training step, and each model's step in every one of
    its training stages (R2MF-Net's recipe spends epochs in the coarse and the fine stage, whose
    steps cost differently from the ``joint`` step the parts are measured in).

    Returns ``{"models": {name: [row dicts]}, "stage_steps": {name: {stage: ms}}, "ratios":
    {name: step ms / first model's step ms}, "inference_ms": {name: ms per batch}}``.
    """
    from dataclasses import asdict

    from r2mfnet.benchmark.model_bench import Switches, _inputs, make_inference, make_train_step

    device = torch.device("cpu")
    x, y = _inputs(batch, size, device, channels_last=False)
    profiles: dict[str, list[PartTiming]] = {}
    stage_tasks: dict[str, Callable[[], object]] = {}
    for name, model in models.items():
        stages = model.training_stages() if hasattr(model, "training_stages") else ("single",)
        for stage in stages:
            stage_tasks[f"{name}|{stage}"] = _in_stage(model, stage, make_train_step(
                model, Switches(), batch, size, device))
        stage_tasks[f"{name}|inference"] = make_inference(model, Switches(), batch, size, device)
        if hasattr(model, "set_stage"):  # the parts are measured with everything learning
            model.set_stage("joint" if "joint" in stages else stages[-1])
        log(f"profiling {name} by part")
        model.train()
        profiles[name] = profile_train_step(model, make_train_step(model, Switches(), batch, size, device),
                                            x, y, rounds, warmup)
    log("timing each model's step in each of its stages, interleaved")
    stage_ms = _time(stage_tasks, rounds, warmup)
    stage_steps: dict[str, dict[str, float]] = {}
    for key, ms in stage_ms.items():
        name, stage = key.split("|")
        stage_steps.setdefault(name, {})[stage] = ms
    first = next(iter(models))
    reference = stage_steps[first]
    ratios = {name: {k: v / reference[_joint_or_single(reference)] for k, v in steps.items() if k != "inference"}
              for name, steps in stage_steps.items()}
    for name, steps in stage_steps.items():
        ratios[name]["inference"] = steps["inference"] / reference["inference"]
    return {"batch": batch, "size": list(size), "threads": torch.get_num_threads(),
            "models": {n: [asdict(r) for r in rows] for n, rows in profiles.items()},
            "stage_steps": stage_steps, "ratios_to": first, "ratios": ratios}


def _in_stage(model: nn.Module, stage: str, step: Callable[[], float]) -> Callable[[], float]:
    """``step`` with ``model`` switched to ``stage`` first (the tasks of several stages of one
    model are interleaved, so each sets its own)."""
    def run() -> float:
        if hasattr(model, "set_stage"):
            model.set_stage(stage)
            model.train()
        return step()

    return run


def _joint_or_single(steps: dict[str, float]) -> str:
    return "joint" if "joint" in steps else "single"


def stage_markdown(result: dict[str, Any]) -> str:
    """Each model's training step in each stage and its inference, in ms and as a ratio."""
    first = result["ratios_to"]
    lines = [f"| model | stage | CPU ms per step (batch {result['batch']}) | ratio to {first} |",
             "|---|---|---|---|"]
    for name, steps in result["stage_steps"].items():
        for stage, ms in steps.items():
            lines.append(f"| {name} | {stage} | {ms:.1f} | {result['ratios'][name][stage]:.2f}x |")
    return "\n".join(lines)

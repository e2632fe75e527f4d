"""Value checks of the run configuration, done before anything is read or written.

The schema (:mod:`r2mfnet.training.run_config`) already rejects unknown keys and wrong types; these rules
reject values of the right type that would only fail later, deep inside torch (a negative
learning rate, a NaN weight decay, a batch of zero images, an unknown schedule name), after the
run folder and TensorBoard files exist. Each rule names its key, so the message is one line a
user can act on. The rules are a table, so adding an option means adding one row.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from r2mfnet.errors import ConfigError

Check = tuple[Callable[[Any], bool], str]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive() -> Check:
    return (lambda v: _number(v) and v > 0, "a finite number > 0")


def at_least(minimum: float) -> Check:
    return (lambda v: _number(v) and v >= minimum, f"a finite number >= {minimum:g}")


def fraction(open_low: bool = False, open_high: bool = False) -> Check:
    low, high = ("(" if open_low else "["), (")" if open_high else "]")

    def ok(v: Any) -> bool:
        return (_number(v) and (v > 0 if open_low else v >= 0) and (v < 1 if open_high else v <= 1))
    return (ok, f"a number in {low}0, 1{high}")


def odd_at_least(minimum: int) -> Check:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum and v % 2 == 1,
            f"an odd integer >= {minimum}")


def one_of(*choices: str) -> Check:
    return (lambda v: v in choices, "one of " + ", ".join(choices))


RULES: dict[str, Check] = {
    "trainer.epochs": at_least(0),
    "trainer.coarse_epochs": at_least(0),
    "trainer.fine_epochs": at_least(0),
    "trainer.joint_epochs": at_least(0),
    "trainer.optimizer": one_of("adamw", "adam", "sgd"),
    "trainer.lr": positive(),
    "trainer.momentum": fraction(open_high=True),
    "trainer.weight_decay": at_least(0),
    "trainer.warmup_steps": at_least(0),
    "trainer.schedule": one_of("cosine", "poly", "constant"),
    "trainer.min_lr_factor": fraction(),
    "trainer.poly_power": positive(),
    "trainer.grad_clip": at_least(0),
    "trainer.device": one_of("auto", "cpu", "cuda"),
    "trainer.amp": one_of("auto", "off", "bf16", "fp16"),
    "trainer.strategy": one_of("auto", "single", "ddp"),
    "trainer.val_every": at_least(1),
    "trainer.early_stopping_patience": at_least(0),
    "trainer.early_stopping_min_delta": at_least(0),
    "trainer.checkpoint_every_steps": at_least(0),
    "trainer.on_nonfinite": one_of("stop", "skip"),
    "trainer.log_every_steps": at_least(1),
    "trainer.log_images": at_least(0),
    "trainer.max_steps": at_least(0),
    "data.synthetic.num_cases": at_least(1),
    "data.synthetic.image_height": at_least(32),  # the generator's own minimum
    "data.synthetic.image_width": at_least(32),
    "data.split.num_folds": at_least(0),
    "data.split.fold": at_least(0),
    "data.input_height": at_least(8),
    "data.input_width": at_least(8),
    "data.batch_size": at_least(1),
    "data.num_workers": at_least(0),
    "data.split.val_fraction": fraction(open_high=True),
    "data.split.test_fraction": fraction(open_high=True),
    "loss.dice_weight": at_least(0),
    "loss.ce_weight": at_least(0),
    "loss.fine_weight": at_least(0),
    "loss.coarse_weight": at_least(0),
    "loss.gap_weight": at_least(0),
    "loss.gap_kernel": odd_at_least(3),
    "eval.threshold": fraction(open_low=True, open_high=True),
    "eval.worst_cases": at_least(0),
}


def _get(run: Any, dotted: str) -> Any:
    value = run
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def check_values(run: Any, rules: dict[str, Check] = RULES) -> None:
    """Raise :class:`ConfigError` for the first key in ``rules`` whose value breaks its rule,
    then for the first pair of keys that disagree (see :func:`check_pairs`)."""
    for key, (ok, expected) in rules.items():
        value = _get(run, key)
        if not ok(value):
            raise ConfigError(f"{key} must be {expected}, got {value!r}")
    check_pairs(run)


def check_pairs(run: Any) -> None:
    """Rules between two keys, each valid on its own. The data code checks them too, but only
    once the data are prepared, after the run folder exists, and it names the keys without
    their ``data.split.`` prefix; here they are checked with the others, named in full."""
    split = run.data.split
    if split.val_fraction + split.test_fraction >= 1:
        raise ConfigError(
            f"data.split.val_fraction + data.split.test_fraction must be < 1, got "
            f"{split.val_fraction} + {split.test_fraction}: nothing would be left for training")
    if split.num_folds > 1 and split.fold >= split.num_folds:
        raise ConfigError(f"data.split.fold must be in [0, {split.num_folds}) with "
                          f"data.split.num_folds={split.num_folds}, got {split.fold}")

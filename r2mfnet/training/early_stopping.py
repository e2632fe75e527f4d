"""Early stopping on a validation score that should increase (validation Dice)."""
from __future__ import annotations

import math


class EarlyStopping:
    """Stop after ``patience`` validations without an improvement larger than ``min_delta``.

    ``patience <= 0`` disables stopping but still tracks the best score (used for best.pt).
    Its whole state is two numbers, saved in every checkpoint so that resume is exact.
    """

    def __init__(self, patience: int = 0, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best = -math.inf
        self.bad_epochs = 0

    def step(self, score: float) -> bool:
        """Record ``score``; return True if it is a new best."""
        if score > self.best + self.min_delta:
            self.best = score
            self.bad_epochs = 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def reset(self) -> None:
        self.best = -math.inf
        self.bad_epochs = 0

    def state_dict(self) -> dict[str, float]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])

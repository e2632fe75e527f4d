"""The project's error types.

Every failure a user can cause (a bad file, a bad manifest row, a wrong config key, a corrupt
checkpoint) is raised as an :class:`R2MFNetError` subclass whose message names the file, row or
key and says what to do. The command-line scripts catch this one type, print the message and exit
non-zero without a traceback (set ``R2MFNET_FULL_ERROR=1`` to see the trace). Anything else that
escapes is a bug in this project.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


class R2MFNetError(Exception):
    """Base class of every user-facing error of r2mfnet."""


class DataError(R2MFNetError):
    """An input file (image, mask, landmarks, manifest) is missing, unreadable or inconsistent."""

    def __init__(self, message: str, path: str | Path | None = None, row: int | None = None):
        self.path = None if path is None else str(path)
        self.row = row
        where = []
        if self.path is not None:
            where.append(f"file '{self.path}'")
        if row is not None:
            where.append(f"row {row}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class ManifestError(DataError):
    """A manifest has one or more bad rows; ``problems`` lists every one of them."""

    def __init__(self, manifest: str | Path, problems: Iterable[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        R2MFNetError.__init__(
            self,
            f"manifest '{manifest}' has {len(self.problems)} problem(s):\n{lines}\n"
            "Fix or remove these rows; nothing was loaded.",
        )
        self.path = str(manifest)
        self.row = None


class ConfigError(R2MFNetError):
    """A configuration key is unknown, missing or has the wrong type or value.

    The message is always one line: a value echoed into it that carries a line break (a string
    given on the command line or in a YAML file) is shown escaped (``\\n``), so the line naming
    the key is never split. Fuzzing found checks that quoted such values raw.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


class CheckpointError(R2MFNetError):
    """A checkpoint file is missing, truncated, corrupted or from an incompatible model."""


class OutputError(R2MFNetError):
    """A result file cannot be written (disk full, no permission, read-only file system)."""


class MeasurementError(R2MFNetError):
    """A mask or landmark set cannot support a clinical measurement (empty, broken, too short)."""


class TrainingError(R2MFNetError):
    """Training cannot continue (for example a non-finite loss)."""


class TrainingInterrupted(TrainingError):
    """SIGINT/SIGTERM (or ``trainer.max_steps``) stopped the run after saving a resumable checkpoint.

    Defined here, not in the trainer, so that the entry points can tell "stopped, resumable"
    (exit 130) from "failed" (exit 2) without importing the training package.
    """

    def __init__(self, checkpoint: Path, reason: str):
        self.checkpoint = checkpoint
        super().__init__(
            f"training stopped ({reason}); a resumable checkpoint is at '{checkpoint}'. "
            f"Continue with: python scripts/train.py trainer.resume='{checkpoint}' (same other options)"
        )

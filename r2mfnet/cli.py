"""What the scripts share: turning project errors into a message and an exit code.

A user sees the message of an :class:`R2MFNetError` (which names the file, row or key and what
to do), not a traceback; ``R2MFNET_FULL_ERROR=1`` shows the full trace for debugging.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

from r2mfnet.errors import R2MFNetError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def run_guarded(fn: Callable[[], Any], cleanup_dir: Path | None = None) -> Any:
    """Call ``fn``; on a project error print it and exit non-zero.

    ``cleanup_dir`` is the Hydra run folder of this invocation: if the run failed before writing
    anything of its own (only Hydra's ``.hydra`` folder and log file are there), it is removed so
    that a mistyped option leaves no output behind.
    """
    from r2mfnet.training.trainer import TrainingInterrupted

    try:
        return fn()
    except R2MFNetError as exc:
        if os.environ.get("R2MFNET_FULL_ERROR") == "1":
            raise
        interrupted = isinstance(exc, TrainingInterrupted)
        if cleanup_dir is not None and not interrupted:
            _remove_if_untouched(cleanup_dir)
        print(f"\nr2mfnet: {'stopped' if interrupted else 'error'}: {exc}", file=sys.stderr)
        if not interrupted:
            print("(set R2MFNET_FULL_ERROR=1 for the full traceback)", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED if interrupted else EXIT_ERROR)


def _remove_if_untouched(run_dir: Path) -> None:
    if not run_dir.is_dir():
        return
    own = {p.name for p in run_dir.iterdir()} - {".hydra"}
    if all(name.endswith(".log") for name in own):
        shutil.rmtree(run_dir, ignore_errors=True)

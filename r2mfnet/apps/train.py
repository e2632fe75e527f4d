"""``r2mfnet-train`` / ``scripts/train.py``: train a model (root config ``configs/config.yaml``).

The run folder is Hydra's run folder (``hydra.run.dir``, default ``outputs/<name>/<date>``);
:func:`r2mfnet.training.run.train` does the work. What Hydra itself wrote (the log file and
``.hydra``) is this application's business: a resumed run's are moved to the run it resumes.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from omegaconf import DictConfig

from r2mfnet.cli import hydra_entry

CONFIG_NAME = "config"  # the train root keeps its historical name (tests, compare, docs use it)


def run(cfg: DictConfig) -> None:
    """Train in Hydra's run folder; evaluate ``best.pt`` on the held-out split when configured."""
    from hydra.core.hydra_config import HydraConfig

    from r2mfnet.training.run import train

    train(cfg, Path(HydraConfig.get().runtime.output_dir), relocate_records=move_run_records)


def move_run_records(hydra_run_dir: Path, run_dir: Path) -> None:
    """Send this invocation's log and Hydra config record to the run it resumes.

    Hydra opened ``<new folder>/train.log`` and wrote ``<new folder>/.hydra`` before the code
    knew the run was a resume; left there, a resumed run's log would sit in a folder apart from
    its checkpoints and evaluation. The log continues (appended) in ``run_dir``; the resumed
    invocation's config record goes to ``run_dir/.hydra/resumed/<new folder name>``; the new
    folder is removed once empty.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        name = getattr(handler, "baseFilename", None)
        if not isinstance(handler, logging.FileHandler) or name is None or Path(name).parent != hydra_run_dir:
            continue
        moved = logging.FileHandler(run_dir / Path(name).name, mode="a", encoding=handler.encoding)
        moved.setLevel(handler.level)
        moved.setFormatter(handler.formatter)
        root.addHandler(moved)
        root.removeHandler(handler)
        handler.close()
        old_log = Path(name)
        if old_log.is_file():
            with open(run_dir / old_log.name, "a", encoding="utf-8") as log_file:
                log_file.write(old_log.read_text(encoding="utf-8"))
            old_log.unlink()
    record = hydra_run_dir / ".hydra"
    if record.is_dir():
        target = run_dir / ".hydra" / "resumed" / hydra_run_dir.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(record), str(target))
    with contextlib.suppress(OSError):
        hydra_run_dir.rmdir()  # only if nothing else is there


# Under torchrun only rank 0 writes Hydra's .hydra/ and train.log into the shared run folder:
# configs/config.yaml says so (hydra.output_subdir and hydra/job_logging=rank_zero).
main = hydra_entry(CONFIG_NAME, run, cleanup_run_dir=True)

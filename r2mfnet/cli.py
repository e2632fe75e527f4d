"""What every entry point shares: one Hydra command line, one way to fail.

Every command (``scripts/*.py`` and the ``r2mfnet-*`` console commands) is
``hydra_entry(<root config>, <app function>)``: Hydra composes ``configs/<root config>.yaml``
with the command-line overrides (so ``--help``, ``--cfg job``, ``-m`` and tab completion work
the same everywhere), and the application function (:mod:`r2mfnet.apps`) gets the config.

Failing the same way everywhere is the other half. A user sees a one-line message naming the
file, row or key, never a traceback, and the exit code says what happened:

* 0 done; 1 an application's partial failure (predict: some inputs unreadable, the rest done);
* 2 the run could not start or stopped on a user error: a project error (:class:`R2MFNetError`)
  or **any** configuration error, Hydra's own (unknown key, bad override syntax, unknown config
  group option) included. Hydra would exit 1 for those; :func:`_run_hydra_main` catches them
  before Hydra's reporter by letting Hydra re-raise (``HYDRA_FULL_ERROR=1``, Hydra's documented
  switch, set only for the call), so that a script cannot tell a typo from a partial failure;
* 130 training stopped by a signal after saving a resumable checkpoint.

``R2MFNET_FULL_ERROR=1`` (or ``HYDRA_FULL_ERROR=1``) shows the full traceback instead.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from r2mfnet.atomic import user_fixable
from r2mfnet.errors import ConfigError, R2MFNetError, TrainingInterrupted

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

App = Callable[[Any], Any]
"""An application: ``app(cfg: DictConfig)``; an int result is the process's exit code."""


def _full_errors() -> bool:
    return os.environ.get("R2MFNET_FULL_ERROR") == "1"


def run_guarded(fn: Callable[[], Any], cleanup_dir: Path | None = None) -> Any:
    """Call ``fn``; on a project error print it and exit non-zero.

    ``cleanup_dir`` is the Hydra run folder of this invocation: if the run failed before writing
    anything of its own (only Hydra's ``.hydra`` folder and log file are there), it is removed so
    that a mistyped option leaves no output behind. An ``OSError`` the user can fix (disk full,
    no permission, read-only file system) that escaped the project's own writers is reported the
    same way, as one line naming the path (:func:`r2mfnet.atomic.user_fixable`).
    """
    try:
        try:
            return fn()
        except OSError as exc:
            error = user_fixable(exc)
            if error is None:
                raise
            raise error from exc
    except R2MFNetError as exc:
        if _full_errors():
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


def _call_app(app: App, cfg: Any) -> Any:
    """Run ``app``; a missing required key (``???``) or a wrongly typed value is a ConfigError."""
    from omegaconf.errors import MissingMandatoryValue, ValidationError

    try:
        return app(cfg)
    except MissingMandatoryValue as exc:
        key = getattr(exc, "full_key", None) or "a required key"
        raise ConfigError(f"{key}= is required (see --help)") from exc
    except ValidationError as exc:
        raise ConfigError(f"{getattr(exc, 'full_key', '')}: {_first_line(str(exc))}") from exc


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), text)


def describe_config_error(exc: BaseException, config_name: str,
                          renamed: Mapping[str, str] | None = None) -> str:
    """One line for a Hydra / OmegaConf composition error, naming the key or option; an old
    spelling of a key (``renamed``: old -> new) is named with its new one."""
    from hydra.errors import OverrideParseException

    from r2mfnet.typed_config import renamed_key_error

    cause = exc.__cause__
    key = getattr(cause, "full_key", None)
    text = str(exc)
    if key and "not in struct" in str(cause) and text.startswith("Could not override"):
        message = renamed_key_error(str(key), renamed or {})
        if message:
            return message
        return (f"unknown key '{key}' for configs/{config_name}.yaml (misspelt? --help lists the "
                f"keys; +{key}=... adds a new one)")
    text = text.split("\nConfig search path:")[0]  # Hydra's search path says nothing to a user
    head, sep, options = text.partition("\n\nAvailable options in ")
    lines = [ln.strip() for ln in head.splitlines()
             if ln.strip() and not ln.strip().startswith(("full_key:", "object_type=", "See https"))]
    if sep:
        group, _, names = options.partition(":")
        lines.append(f"options of {group}: {', '.join(n.strip() for n in names.split() if n.strip())}")
    if isinstance(exc, OverrideParseException):
        lines.insert(0, "bad override syntax (key=value; lists [a,b]; quote values with , or spaces)")
    if cause is not None and str(cause).strip():
        lines.append(_first_line(str(cause)))
    return "; ".join(lines)


def _run_hydra_main(main: Callable[[], Any], config_name: str, renamed: Mapping[str, str] | None = None) -> None:
    """Run a ``hydra.main`` function; Hydra's own configuration errors exit 2 with one line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    show_trace = _full_errors() or os.environ.get("HYDRA_FULL_ERROR") == "1"
    saved = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing and exiting 1
    try:
        main()
    except (HydraException, OmegaConfBaseException) as exc:
        if show_trace:
            raise
        print(f"r2mfnet: error: {describe_config_error(exc, config_name, renamed)}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    finally:
        if saved is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved


def hydra_entry(config_name: str, app: App, cleanup_run_dir: bool = False,
                renamed: Mapping[str, str] | None = None) -> Callable[[], None]:
    """The console entry point of ``app`` with the root config ``configs/<config_name>.yaml``.

    ``cleanup_run_dir``: the app writes into Hydra's run folder (training); remove that folder
    again when the run fails before writing anything (see :func:`run_guarded`). Apps that
    write only where their ``output_dir`` says set ``hydra.run.dir: .`` and
    ``hydra.output_subdir: null`` in their root config (``configs/hydra/app.yaml``) instead.
    ``renamed`` (old key -> new key) turns an old spelling on the command line into one line
    naming the new key (:func:`r2mfnet.typed_config.renamed_key_error`).
    """
    exit_codes: list[int] = []

    def task(cfg: Any) -> None:
        cleanup = None
        if cleanup_run_dir:
            from hydra.core.hydra_config import HydraConfig

            cleanup = Path(HydraConfig.get().runtime.output_dir)
        result = run_guarded(lambda: _call_app(app, cfg), cleanup_dir=cleanup)
        if isinstance(result, int) and not isinstance(result, bool):
            exit_codes.append(result)

    # Hydra names the job after the task's module: r2mfnet.apps.train -> "train" (train.log).
    task.__module__ = app.__module__
    task.__qualname__ = task.__name__ = getattr(app, "__name__", "main")

    def entry() -> None:
        import hydra

        from r2mfnet.config_dir import config_dir, register_resolvers

        register_resolvers()
        directory = run_guarded(config_dir)
        main = hydra.main(version_base="1.3", config_path=str(directory), config_name=config_name)(task)
        _run_hydra_main(main, config_name, renamed)
        code = max(exit_codes, default=0)
        if code:
            sys.exit(code)

    entry.__doc__ = f"Console command for configs/{config_name}.yaml ({app.__module__})."
    return entry

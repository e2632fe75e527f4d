"""Atomic file writes: write to a temporary file in the same folder, then rename.

A kill at any moment leaves either the previous file or the new one, never half of one, because
``os.replace`` is atomic on POSIX file systems within a folder. The new file gets the mode a plain
``open()`` would give it (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``, so that
a lab group can read each other's results. A write that fails for a reason the user can fix
(disk full, no permission, read-only file system, file-size limit) becomes one
:class:`~r2mfnet.errors.OutputError` line naming the file; the previous file stays as it was.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from r2mfnet.errors import OutputError

_USER_FIXABLE = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than the file-size limit",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
}


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``);
    elsewhere set-and-restore, which is what ``os.umask`` offers."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_error(path: str | Path, exc: OSError) -> OutputError:
    """One line for a failed write: the file, the reason, and that nothing was half-written."""
    reason = _USER_FIXABLE.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return OutputError(f"cannot write '{path}': {reason}; nothing was written there "
                       "(an existing file of that name is unchanged)")


def user_fixable(exc: BaseException) -> OutputError | None:
    """The one-line :class:`~r2mfnet.errors.OutputError` for an ``OSError`` the user can fix
    (:data:`_USER_FIXABLE`) raised by a write that does not go through :func:`atomic_write`
    (a folder created, TensorBoard's event file, a log appended), else ``None``.

    The entry points (:func:`r2mfnet.cli.run_guarded`) use it as the backstop, so that a full disk
    is one line naming the path wherever it strikes. Such a write is not atomic, so the message
    promises nothing about the file's previous content; ``EACCES`` / ``EPERM`` may come from a
    read, so those say "cannot access".
    """
    if not isinstance(exc, OSError) or exc.errno not in _USER_FIXABLE:
        return None
    path = exc.filename if exc.filename is not None else "a file"
    verb = "access" if exc.errno in (errno.EACCES, errno.EPERM) else "write"
    return OutputError(f"cannot {verb} '{path}': {_USER_FIXABLE[exc.errno]}")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path``.

    ``write`` receives a path (not a handle) so that libraries that insist on a file name
    (``cv2.imwrite``) can be used. An ``OSError`` the user can fix (see :data:`_USER_FIXABLE`)
    becomes an :class:`~r2mfnet.errors.OutputError`; anything else propagates unchanged.
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        tmp_path = Path(tmp)
        os.fchmod(fd, 0o666 & ~current_umask())
        os.close(fd)
        write(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
        if exc.errno in _USER_FIXABLE:
            raise output_error(path, exc) from None
        raise
    except BaseException:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")

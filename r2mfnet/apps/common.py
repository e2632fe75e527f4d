"""What several applications share besides their config schema (:mod:`r2mfnet.apps.schema`): the command line."""
from __future__ import annotations


def command_line(name: str) -> str:
    """The command as typed (``python scripts/x.py k=v ...``), written into result files."""
    import shlex
    import sys

    return f"python scripts/{name}.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

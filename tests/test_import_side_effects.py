"""Importing r2mfnet changes nothing outside it; albumentations never phones home.

Run in a fresh interpreter each, with the update switch unset, since the test session itself
sets it (tests/conftest.py) and has imported most of the package already.
"""
from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import ROOT

IMPORT_ALL = """
import os, sys, pkgutil, importlib
before_env, before_argv = dict(os.environ), list(sys.argv)
import r2mfnet
for info in pkgutil.walk_packages(r2mfnet.__path__, "r2mfnet."):
    importlib.import_module(info.name)
changed = {k for k in set(os.environ) | set(before_env) if os.environ.get(k) != before_env.get(k)}
# torch and OpenCV set a few of their own (TORCHINDUCTOR_CACHE_DIR, LD_LIBRARY_PATH) on import
ours = {k for k in changed if k.startswith(("NO_ALBUMENTATIONS", "R2MFNET", "HYDRA", "OMP", "MKL"))}
assert not ours, ours
assert sys.argv == before_argv
assert "albumentations" not in sys.modules
"""

AUGMENT = """
import os, sys
from r2mfnet.data.augment import build_augmentation
assert build_augmentation({"enabled": True}) is not None
assert "albumentations" in sys.modules and os.environ["NO_ALBUMENTATIONS_UPDATE"] == "1"
"""


def _python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_importing_every_module_sets_no_variable_and_keeps_argv() -> None:
    res = _python(IMPORT_ALL)
    assert res.returncode == 0, res.stderr[-2000:]


def test_albumentations_is_imported_with_its_update_check_off() -> None:
    res = _python(AUGMENT)
    assert res.returncode == 0, res.stderr[-2000:]

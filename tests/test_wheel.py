"""The built wheel runs where it is installed: configs inside the package, no checkout needed.

The wheel is built from a copy of the working tree (so a build never writes into the checkout)
with ``pip wheel --no-deps --no-build-isolation --no-index`` (nothing downloaded) and installed
into a throwaway virtual environment. That environment sees the project venv's third-party
packages through a ``.pth`` line, but not the project venv's own ``.pth`` files: the editable
install's import hook (which maps ``r2mfnet`` to the checkout) is never active there. Every
console command then runs from an empty folder.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.helpers import ROOT

SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "r2mfnet", "configs")
COMMANDS = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh venv holding only the built wheel of r2mfnet."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(base / "dist"), str(src)], check=True, capture_output=True, timeout=120)
    wheel, = (base / "dist").glob("r2mfnet-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # third-party packages (torch, hydra, ...) from the project venv, without running its .pth files
    (site / "project_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=120)
    return venv / "bin"


def run_installed(bin_dir: Path, args: list[str], cwd: Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "R2MFNET_CONFIG_DIR", "HYDRA_FULL_ERROR", "R2MFNET_FULL_ERROR")}
    env.update(extra_env)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_installed_package_uses_its_own_configs(installed, tmp_path):
    res = run_installed(installed, [str(installed / "python"), "-c",
                                    "import r2mfnet, r2mfnet.config_dir as c; print(r2mfnet.__file__); "
                                    "print(c.config_dir())"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    module, configs = res.stdout.split()
    venv = installed.parent.resolve()
    assert Path(module).resolve().is_relative_to(venv), module  # not the checkout
    assert Path(configs) == Path(module).resolve().parent / "configs"
    assert {p.name for p in (ROOT / "configs").rglob("*.yaml")} <= {p.name for p in Path(configs).rglob("*.yaml")}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_console_command_composes_its_config(installed, command, tmp_path):
    res = run_installed(installed, [str(installed / command), "--cfg", "job"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip(), res.stderr
    assert list(tmp_path.iterdir()) == []  # composing writes nothing


def test_config_dir_override_still_wins(installed, tmp_path):
    own = tmp_path / "my_configs"
    shutil.copytree(ROOT / "configs", own)
    (own / "make_synthetic.yaml").write_text(
        (own / "make_synthetic.yaml").read_text().replace("num_cases:", "num_cases: 3 #", 1))
    res = run_installed(installed, [str(installed / "r2mfnet-make-synthetic"), "--cfg", "job"], cwd=tmp_path)
    assert res.returncode == 0 and "num_cases: 3" not in res.stdout, res.stderr
    env_res = run_installed(installed, [str(installed / "r2mfnet-make-synthetic"), "--cfg", "job"],
                            cwd=tmp_path, R2MFNET_CONFIG_DIR=str(own))
    assert env_res.returncode == 0, env_res.stderr
    assert "num_cases: 3" in env_res.stdout


def test_smoke_training_runs_from_an_empty_folder(installed, tmp_path):
    res = run_installed(installed, [str(installed / "r2mfnet-train"), "experiment=smoke",
                                    f"data.cache_dir={tmp_path / 'cache'}", "hydra.run.dir=run",
                                    "trainer.log_images=0"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()

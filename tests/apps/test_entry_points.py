"""The command line is one style everywhere: Hydra entry points, one exit code for config errors.

Subprocesses of the real scripts and installed console commands (``pip install -e .``); each
stops before any model is built, so the whole file takes seconds.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_script

BIN = Path(sys.executable).parent


def run_command(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """An installed console command (``r2mfnet-predict`` ...), as a user runs it."""
    exe = BIN / name
    assert exe.is_file(), f"{name} is not installed: pip install -e . (pyproject.toml [project.scripts])"
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    env.pop("R2MFNET_FULL_ERROR", None)
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip()]


# Options that each command's --help must list (its root config's keys).
HELP_KEYS = {
    "r2mfnet-train": ["== Configuration groups ==", "model:", "trainer:", "experiment:"],
    "r2mfnet-predict": ["checkpoint:", "input:", "output_dir:", "tta_flip:", "method:", "masks:"],
    "r2mfnet-evaluate": ["checkpoint:", "split:", "output_dir:", "manifest:", "tau:"],
}


@pytest.mark.parametrize("command", sorted(HELP_KEYS))
def test_console_command_help_lists_its_options(command, tmp_path):
    res = run_command(command, ["--help"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for key in HELP_KEYS[command]:
        assert key in res.stdout, (key, res.stdout)
    assert list(tmp_path.iterdir()) == []  # --help writes nothing


@pytest.mark.parametrize("script,command", [("predict.py", "r2mfnet-predict"),
                                            ("evaluate.py", "r2mfnet-evaluate")])
def test_script_help_is_hydras_help_with_the_options(script, command, tmp_path):
    res = run_script(script, ["--help"], cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"{command} (python scripts/{script})" in res.stdout
    for key in HELP_KEYS[command]:
        assert key in res.stdout, (key, res.stdout)
    assert "Exit codes:" in res.stdout


@pytest.mark.parametrize("command", ["r2mfnet-train", "r2mfnet-predict"])
def test_unknown_key_exits_2_with_one_line_naming_it(command, tmp_path):
    res = run_command(command, ["inptu=3"], cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = error_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("r2mfnet: error: unknown key 'inptu'")
    assert "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []  # no run folder, no .hydra, no log file


def test_every_kind_of_config_error_exits_2(tmp_path):
    """Hydra's own errors (syntax, unknown group option) and ours (a required key) alike."""
    bad_syntax = run_script("predict.py", ["input=[1", "output_dir=x"], cwd=tmp_path, timeout=120)
    assert bad_syntax.returncode == 2 and "bad override syntax" in bad_syntax.stderr
    bad_option = run_script("train.py", ["model=unetx"], cwd=tmp_path, timeout=120)
    assert bad_option.returncode == 2 and "model/unetx" in bad_option.stderr
    assert "unet, unetpp" in bad_option.stderr  # the available options are listed
    missing = run_command("r2mfnet-predict", [f"output_dir={tmp_path / 'out'}"], cwd=tmp_path)
    assert missing.returncode == 2 and "input= is required" in missing.stderr
    for res in (bad_syntax, bad_option, missing):
        assert "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_cfg_job_prints_the_composed_config(tmp_path):
    res = run_script("evaluate.py", ["--cfg", "job", "checkpoint=ck.pt", "data=synthetic",
                                     "data.input_height=32"], cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "checkpoint: ck.pt" in res.stdout and "input_height: 32" in res.stdout
    assert "source: synthetic" in res.stdout  # data= selects a configs/data/ option


def test_predict_and_evaluate_write_only_where_output_dir_says(tmp_path):
    """No Hydra run folder, .hydra/ copy or log file in the working directory."""
    from r2mfnet.data.synthetic import generate_dataset

    manifest = generate_dataset(tmp_path / "data", 1, seed=0, image_height=96, image_width=48,
                                num_workers=0)
    work = tmp_path / "work"
    work.mkdir()
    out = tmp_path / "pred"
    res = run_script("predict.py", [f"input={manifest}", f"output_dir={out}", "masks=manifest",
                                    "method=centreline", "progress=false"], cwd=work, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (out / "summary.json").is_file() and not (out / ".hydra").exists()
    failed = run_script("evaluate.py", [f"checkpoint={tmp_path / 'missing.pt'}"], cwd=work, timeout=120)
    assert failed.returncode == 2 and "missing.pt" in failed.stderr
    assert list(work.iterdir()) == []


def test_multirun_still_works(tmp_path):
    """``-m`` sweeps through the same entry helper (one job per value)."""
    a, b = tmp_path / "a", tmp_path / "b"
    res = run_script("make_synthetic.py", ["-m", f"output_dir={a},{b}", "num_cases=1", "image_size=[96,48]",
                                           f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                     cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (a / "manifest.csv").is_file() and (b / "manifest.csv").is_file()


def test_scripts_are_thin_and_never_edit_sys_path():
    for script in sorted((ROOT / "scripts").glob("*.py")):
        text = script.read_text()
        assert "sys.path" not in text, script.name
        assert "from r2mfnet.apps." in text and "main()" in text, script.name


def test_compare_command_composes_each_run_inside_its_own_hydra_app(tmp_path):
    """scripts/compare.py composes every run's training config while Hydra runs the command
    itself (once a ValueError: "GlobalHydra is already initialized")."""
    root, table = tmp_path / "results", tmp_path / "table.md"
    res = run_script("compare.py", ["experiment=smoke", f"root={root}", f"output_file={table}", "models=[unet]",
                                    "per_model={unet:['trainer.epochs=1']}", f"extra=['data.cache_dir={tmp_path / 'c'}']"],
                     cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (root / "unet_seed0" / "result.json").is_file() and "| unet |" in table.read_text()
    table.unlink()
    rebuilt = run_script("compare.py", ["experiment=smoke", f"root={root}", f"output_file={table}", "models=[unet,r2mfnet]",
                                        "train=false"], cwd=tmp_path, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert not (root / "r2mfnet_seed0").exists()  # train=false: tables only, nothing trained
    assert "| unet |" in table.read_text() and "| r2mfnet |" not in table.read_text()

"""Every command's config has a typed schema: one line naming the key for each kind of mistake.

In-process: each command's console entry point (``main``) runs with a patched ``sys.argv`` in an
empty folder, as ``r2mfnet-<name> ...`` would; every case stops before any data is read or
model built, so the file takes seconds.
"""
from __future__ import annotations

import dataclasses
import importlib
import re
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

# command -> (overrides every run needs, a key given a value of the wrong type)
COMMANDS: dict[str, tuple[list[str], str]] = {
    "evaluate": (["checkpoint=ck.pt"], "worst_cases"),
    "predict": (["input=x.png", "output_dir=out"], "threshold"),
    "evaluate_cobb": ([], "every"),
    "export": (["checkpoint=ck.pt", "output_file=m.onnx"], "opset"),
    "benchmark": ([], "warmup"),
    "compare": (["experiment=smoke"], "cobb"),
    "vertebra_compare": ([], "limit"),
    "vertebra_picture": ([], "seed"),
    "model_summary": ([], "depth"),
    "make_synthetic": ([], "num_cases"),
    "train_corners": ([], "epochs"),
}
SCHEMAS = {"evaluate": "EvaluateConfig", "predict": "PredictConfig", "evaluate_cobb": "EvaluateCobbConfig",
           "export": "ExportConfig", "benchmark": "BenchmarkConfig", "compare": "CompareConfig",
           "vertebra_compare": "VertebraCompareConfig", "vertebra_picture": "VertebraPictureConfig",
           "model_summary": "ModelSummaryConfig", "make_synthetic": "MakeSyntheticConfig",
           "train_corners": "TrainCornersConfig"}
# old spelling -> (command, new spelling): what users typed before the one-spelling change
OLD_SPELLINGS = [
    ("out", "benchmark", "output_file"), ("size", "benchmark", "image_size"),
    ("output", "export", "output_file"), ("table", "compare", "output_file"),
    ("out", "vertebra_compare", "output_dir"), ("out", "vertebra_picture", "output_file"),
    ("height", "model_summary", "image_size"), ("width", "model_summary", "image_size"),
    ("image_height", "make_synthetic", "image_size"), ("image_width", "evaluate_cobb", "image_size"),
]
HINT = "(set R2MFNET_FULL_ERROR=1 for the full traceback)"


def run_main(command: str, args: list[str], monkeypatch, capsys, cwd: Path) -> tuple[int, str, str]:
    """``r2mfnet-<command> args...`` in-process: (exit code, stdout, stderr)."""
    module = importlib.import_module(f"r2mfnet.apps.{command}")
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.delenv("R2MFNET_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", [f"r2mfnet-{command}", *args])
    code = 0
    try:
        module.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(stderr: str) -> list[str]:
    """The error's own lines (the standard pointer to the full traceback aside)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and ln.strip() != HINT]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_key_is_one_line_naming_it(command, monkeypatch, capsys, tmp_path):
    needed, _ = COMMANDS[command]
    code, _, err = run_main(command, [*needed, "thresholdd=1"], monkeypatch, capsys, tmp_path)
    assert code == 2, err
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("r2mfnet: error: unknown key 'thresholdd'"), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_wrong_type_is_one_line_naming_the_key(command, monkeypatch, capsys, tmp_path):
    needed, key = COMMANDS[command]
    code, _, err = run_main(command, [*needed, f"{key}=abc"], monkeypatch, capsys, tmp_path)
    assert code == 2, err
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("r2mfnet: error: invalid configuration at key") and f"'{key}'" in lines[0], err
    assert "'abc'" in lines[0]  # the value that did not fit
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("old,command,new", OLD_SPELLINGS)
def test_an_old_spelling_says_the_new_name(old, command, new, monkeypatch, capsys, tmp_path):
    needed, _ = COMMANDS[command]
    code, _, err = run_main(command, [*needed, f"{old}=1"], monkeypatch, capsys, tmp_path)
    assert code == 2, err
    assert error_lines(err) == [f"r2mfnet: error: unknown key '{old}': it is called {new} now (see --help)"]


def test_an_old_spelling_added_with_plus_is_refused_too(monkeypatch, capsys, tmp_path):
    """``+out=...`` gets past Hydra (it adds a key); the schema names the new key."""
    code, _, err = run_main("vertebra_compare", ["+out=x"], monkeypatch, capsys, tmp_path)
    assert code == 2
    assert error_lines(err) == ["r2mfnet: error: unknown key 'out': it is called output_dir now (see --help)"]


@pytest.mark.parametrize("command,key", [("vertebra_compare", "oracle"), ("benchmark", "image_size"),
                                         ("evaluate_cobb", "gt_at")])
def test_an_image_size_is_written_h_w(command, key, monkeypatch, capsys, tmp_path):
    """The former ``256x128`` spelling is refused with the ``[H, W]`` one; three numbers too."""
    code, _, err = run_main(command, [f"{key}=256x128"], monkeypatch, capsys, tmp_path)
    assert code == 2
    assert error_lines(err) == [f"r2mfnet: error: {key}: an image size is written [H, W], "
                                f"e.g. {key}=[256,128] (got '256x128')"]
    code, _, err = run_main(command, [f"{key}=[256,128,3]"], monkeypatch, capsys, tmp_path)
    assert code == 2
    assert error_lines(err) == [f"r2mfnet: error: {key} must be [height, width], two positive integers, "
                                "got [256, 128, 3]"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cfg_job_composes(command, monkeypatch, capsys, tmp_path):
    needed, _ = COMMANDS[command]
    code, out, err = run_main(command, ["--cfg", "job", *needed], monkeypatch, capsys, tmp_path)
    assert code == 0, err
    assert re.search(r"^(output_dir|output_file|image_size):", out, re.M) or command == "evaluate", out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_yaml_and_its_schema_have_the_same_keys(command):
    """Every YAML key is typed by the schema and every schema key has its value in the YAML (the
    values live once, there), so the schema neither refuses a documented key nor hides one."""
    from r2mfnet.apps.schema import KEEP_DEFAULTS, command_config
    from r2mfnet.config_dir import compose

    needed, _ = COMMANDS[command]
    cfg = compose(command, needed)
    schema = getattr(importlib.import_module(f"r2mfnet.apps.{command}"), SCHEMAS[command])
    typed = command_config(schema, cfg)  # raises on a YAML key the schema does not know
    names = {f.name for f in dataclasses.fields(schema)} - set(KEEP_DEFAULTS)
    assert names <= set(cfg.keys()), sorted(names - set(cfg.keys()))
    assert dataclasses.is_dataclass(typed)


def test_image_sizes_reach_the_command_as_tuples():
    from r2mfnet.apps.model_summary import ModelSummaryConfig
    from r2mfnet.apps.schema import command_config
    from r2mfnet.config_dir import compose

    typed = command_config(ModelSummaryConfig, compose("model_summary", ["image_size=[64,32]"]))
    assert typed.image_size == (64, 32)


# Modules renamed so that no two share a name (issue 24): old dotted name -> new one.
_RENAMED = {
    "evaluation.evaluate": "evaluation.score_views",
    "experiments.compare": "experiments.comparison",
    "experiments.runner": "experiments.comparison",
    "evaluation.vertebra_compare": "evaluation.binary_vs_labels",
    "evaluation.report": "evaluation.summaries",
    "evaluation.cobb": "evaluation.cobb_harness",
    "measure.evaluate": "measure.angle_stats",
    "measure.anatomy": "measure.sanity",
    "measure.draw": "measure.annotate",
    "data.build": "data.build_datasets",
    "inference.build": "inference.build_predictor",
    "data.synthetic.dataset": "data.synthetic.generate",
    "data.synthetic.views": "data.synthetic.pose",
    "data.synthetic.anatomy": "data.synthetic.patient",
    "data.synthetic.draw": "data.synthetic.raster",
    "apps.cobb_harness": "evaluation.cobb_spineweb16",
}


def test_no_two_modules_share_a_name():
    """A file name says which module it is: two ``report.py`` (or ``build.py``) doing different
    jobs in different packages is what the renames removed; a new one fails here."""
    by_stem: dict[str, list[str]] = {}
    for path in sorted((ROOT / "r2mfnet").rglob("*.py")):
        if path.name != "__init__.py":
            by_stem.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    shared = {stem: paths for stem, paths in by_stem.items() if len(paths) > 1}
    assert not shared, shared


def test_nothing_imports_the_old_module_names():
    """No code, test or document outside docs/history imports or names a renamed module by its
    old dotted name, and the old files are gone."""
    dotted = "|".join(re.escape(old) for old in _RENAMED)
    from_forms = "|".join(rf"from r2mfnet\.{re.escape(old.rsplit('.', 1)[0])} import {old.rsplit('.', 1)[1]}\b(?!_)"
                          for old in _RENAMED)
    old = re.compile(rf"r2mfnet\.({dotted})\b(?!_)|{from_forms}")
    hits = []
    for folder in ("r2mfnet", "tests", "scripts", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".md") or "history" in path.parts:
                continue
            if path == Path(__file__):
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if old.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)
    for old_name, new_name in _RENAMED.items():
        assert not (ROOT / "r2mfnet" / (old_name.replace(".", "/") + ".py")).exists(), old_name
        assert (ROOT / "r2mfnet" / (new_name.replace(".", "/") + ".py")).exists(), new_name


HYDRA_KEYS = {"experiment", "hydra", "model", "data", "trainer", "loss", "eval"}  # groups and Hydra's own
SCRIPT = re.compile(r"(?:scripts/|r2mfnet-)(" + "|".join(n.replace("_", "[_-]") for n in sorted(COMMANDS, key=len, reverse=True))
                    + r")(?:\.py)?\b(.*)")
KEY = re.compile(r"(?:^|[\s\['`(])\+?([a-z_]+)(?:\.[\w.]+)?=")


def _command_lines(text: str):
    """(command, the rest of the line) for every command line quoted in ``text``; a line
    ending in a backslash continues on the next."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = SCRIPT.search(line)
        if not match:
            continue
        rest, j = match.group(2), i
        while rest.rstrip().endswith("\\") and j + 1 < len(lines):
            j += 1
            rest += " " + lines[j]
        yield match.group(1).replace("-", "_"), rest


def test_every_quoted_command_line_uses_keys_its_schema_knows():
    """--help headers, README, docs/ and scripts/ quote the commands with today's keys (an old
    spelling such as out=, table= or size= would fail on the command line)."""
    from omegaconf import OmegaConf

    sources = {p: p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
                                                          *sorted((ROOT / "scripts").glob("*.py"))]
               if "history" not in p.parts}
    for name in COMMANDS:
        header = OmegaConf.load(ROOT / "configs" / f"{name}.yaml").hydra.help.header
        sources[ROOT / "configs" / f"{name}.yaml"] = header
    bad = []
    for path, text in sources.items():
        for command, rest in _command_lines(text):
            schema = getattr(importlib.import_module(f"r2mfnet.apps.{command}"), SCHEMAS[command])
            known = {f.name for f in dataclasses.fields(schema)} | HYDRA_KEYS
            bad += [f"{path.relative_to(ROOT)}: {command} {key}=" for key in KEY.findall(rest) if key not in known]
    assert not bad, "\n".join(bad)

"""Issue 14: a checkpoint never runs code; bad options, full disks and resumed runs behave.

The malicious checkpoints here pickle a call to ``os.system`` that would create a marker file:
every way of opening a checkpoint must refuse them with one line (exit code 2 for the scripts)
and the marker must never appear.
"""
from __future__ import annotations

import errno
import hashlib
import io
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import r2mfnet
from r2mfnet.atomic import atomic_write_text
from r2mfnet.checkpoint import (
    FORMAT, load_checkpoint, model_change, save_checkpoint, save_trusted_state,
)
from r2mfnet.training.run_config import validate
from r2mfnet.errors import CheckpointError, ConfigError, OutputError
from r2mfnet.models import create
from tests.helpers import ROOT, compose_config, run_script, tiny_overrides


class _RunsCode:
    """Unpickling this calls ``os.system(command)``: the attack ``weights_only`` stops."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _touch(marker: Path) -> _RunsCode:
    return _RunsCode(f"touch '{marker}'")


def _envelope(payload: bytes) -> dict:
    return {"format": FORMAT, "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}


@pytest.fixture(params=["envelope", "payload"])
def evil_checkpoint(request, tmp_path) -> tuple[Path, Path]:
    """A ``.pt`` whose outer envelope, or whose correctly check-summed payload, runs code."""
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    if request.param == "envelope":
        torch.save({"format": FORMAT, "sha256": "0", "payload": _touch(marker)}, path)
    else:
        buffer = io.BytesIO()
        torch.save({"format": FORMAT, "version": 3, "model_config": {"name": "unet"},
                    "model": _touch(marker)}, buffer)
        torch.save(_envelope(buffer.getvalue()), path)
    return path, marker


def test_the_fixture_really_runs_code_when_unpickled(tmp_path):
    """Guards the tests below: without weights_only the pickle does create the marker."""
    marker = tmp_path / "PWNED"
    torch.save({"x": _touch(marker)}, tmp_path / "plain.pt")
    torch.load(tmp_path / "plain.pt", weights_only=False)
    assert marker.exists()


def test_load_checkpoint_and_load_model_refuse_code(evil_checkpoint):
    path, marker = evil_checkpoint
    with pytest.raises(CheckpointError, match=r"refuses.*posix\.system|posix\.system.*refuses"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="save_trusted_state"):
        r2mfnet.load_model(str(path))
    assert not marker.exists()


def test_the_library_functions_that_open_a_checkpoint_refuse_code(evil_checkpoint, tmp_path):
    """The Python API behind the scripts: the predictor, an ensemble's members, the held-out
    split of a checkpoint (alone and as an ensemble member) and the deployment benchmark's case
    each open the file themselves."""
    from r2mfnet.benchmark.deploy_bench import case_from_checkpoint
    from r2mfnet.evaluation.cobb_spineweb16 import checkpoint_split_ids
    from r2mfnet.evaluation.held_out import checkpoint_test_case_ids
    from r2mfnet.inference.ensemble import EnsemblePredictor
    from r2mfnet.inference.predictor import Predictor

    path, marker = evil_checkpoint
    for open_it in (lambda: Predictor.from_checkpoint(path, device="cpu"),
                    lambda: EnsemblePredictor.from_checkpoints([path, path], device="cpu"),
                    lambda: checkpoint_split_ids(path, [], "val"),
                    lambda: checkpoint_test_case_ids(path, [], "spineweb16"),
                    lambda: case_from_checkpoint(path)):
        with pytest.raises(CheckpointError, match="refuses"):
            open_it()
    assert not marker.exists()


def test_only_the_checkpoint_module_unpickles_and_only_data():
    """A new entry point cannot open a checkpoint some other way: ``torch.load`` appears in
    r2mfnet/checkpoint.py only, and every call there passes ``weights_only=True``."""
    import ast

    calls: dict[str, list[ast.Call]] = {}
    for path in sorted((ROOT / "r2mfnet").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr == "load" and getattr(node.func.value, "id", None) == "torch":
                calls.setdefault(str(path.relative_to(ROOT)), []).append(node)
        assert "pickle.load" not in path.read_text(encoding="utf-8"), path  # pickle.load / loads
    assert set(calls) == {"r2mfnet/checkpoint.py"}, sorted(calls)
    for call in calls["r2mfnet/checkpoint.py"]:
        flags = {k.arg: k.value for k in call.keywords}
        assert isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True, \
            ast.unparse(call)


@pytest.mark.parametrize("script, args", [
    ("evaluate.py", ["checkpoint={ckpt}", "output_dir={tmp}/eval"]),
    ("predict.py", ["checkpoint={ckpt}", "input={tmp}/image.png", "output_dir={tmp}/pred"]),
    ("train.py", ["experiment=smoke", "trainer.resume={ckpt}", "hydra.run.dir={tmp}/run"]),
    ("evaluate_cobb.py", ["dataset=synthetic", "checkpoint={ckpt}", "output_dir={tmp}/cobb",
                          "cache_dir={tmp}/cache"]),
    ("vertebra_compare.py", ["checkpoint={ckpt}", "output_dir={tmp}/vc", "manifest={tmp}/manifest.csv"]),
    ("vertebra_compare.py", ["binary_checkpoint={ckpt}", "output_dir={tmp}/vc", "manifest={tmp}/manifest.csv"]),
    ("export.py", ["checkpoint={ckpt}", "output_file={tmp}/model.onnx"]),
    ("benchmark.py", ["mode=deploy", "deploy_presets=[]", "deploy_checkpoints={ckpt}",
                      "output_file={tmp}/bench/deploy.json"]),
    # compare resumes each run from <root>/<model>_seed<seed>/checkpoints/latest.pt (resume=auto)
    ("compare.py", ["experiment=smoke", "root={tmp}/cmp", "models=[unet]", "seeds=[0]", "cobb=false",
                    "output_file={tmp}/cmp/table.md", "extra=['data.cache_dir={tmp}/cache']"]),
])
# One form per script: both forms reach the same loader (the two tests above try each form on it,
# and test_only_the_checkpoint_module_unpickles_and_only_data keeps every other torch.load out),
# so what this matrix checks is each script's exit: code 2, one line, nothing written. The
# check-summed payload is the form that gets furthest into the loader.
@pytest.mark.parametrize("evil_checkpoint", ["payload"], indirect=True)
def test_every_script_that_opens_a_checkpoint_refuses_code(evil_checkpoint, tmp_path, script, args):
    if script == "export.py":
        pytest.importorskip("onnx", reason="export needs the deploy extra (onnx, onnxruntime)")
    path, marker = evil_checkpoint
    if script == "compare.py":
        resumed = tmp_path / "cmp" / "unet_seed0" / "checkpoints" / "latest.pt"
        resumed.parent.mkdir(parents=True)
        path = path.replace(resumed)
    import cv2

    cv2.imwrite(str(tmp_path / "image.png"), np.full((64, 32), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "mask.png"), np.full((64, 32), 255, np.uint8))
    (tmp_path / "manifest.csv").write_text("case_id,view,image,mask\nP1,coronal,image.png,mask.png\n")
    result = run_script(script, [a.format(ckpt=path, tmp=tmp_path) for a in args], timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "refuses" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert not marker.exists()
    assert not (tmp_path / "run").exists(), "a refused resume must leave no run folder"
    assert not (tmp_path / "cache").exists(), "refused before any data is prepared"


def test_version_2_checkpoint_with_numpy_rng_state_still_loads(tmp_path):
    """Version 2 stored NumPy's RNG state as an array: rebuilding that array is allowed."""
    model = create("unet", base_channels=4, depth=2)
    state = {"format": FORMAT, "version": 2, "model_config": dict(model.model_config),
             "model": model.state_dict(), "rng": {"numpy": np.random.get_state()}}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    torch.save(_envelope(buffer.getvalue()), tmp_path / "v2.pt")
    loaded = load_checkpoint(tmp_path / "v2.pt")
    np.testing.assert_array_equal(loaded["rng"]["numpy"][1], np.random.get_state()[1])


def test_a_trusted_file_with_other_objects_is_refused_then_converted(tmp_path):
    model = create("unet", base_channels=4, depth=2)
    state = {"model_config": dict(model.model_config), "model": model.state_dict(),
             "metrics": {"dice": np.float64(0.75)}}  # a NumPy scalar: not plain data
    torch.save(state, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match=r"numpy\._?core\.multiarray\.scalar.*refuses.*save_trusted_state"):
        load_checkpoint(tmp_path / "old.pt")
    trusted = torch.load(tmp_path / "old.pt", weights_only=False)  # the user's own, explicit act
    save_trusted_state(trusted, tmp_path / "new.pt")
    loaded = load_checkpoint(tmp_path / "new.pt")
    assert loaded["metrics"] == {"dice": 0.75} and isinstance(loaded["metrics"]["dice"], float)
    assert all(torch.equal(loaded["model"][k], v) for k, v in model.state_dict().items())


def test_a_converted_file_without_its_input_size_is_one_line_not_a_key_error(tmp_path):
    """A hand-assembled checkpoint may lack the preprocessing the trainer records: predicting from
    it names the file and the missing key (exit 2 from the script), as do export and benchmark."""
    from r2mfnet.benchmark.deploy_bench import case_from_checkpoint
    from r2mfnet.inference.predictor import Predictor

    model = create("unet", base_channels=4, depth=2)
    save_trusted_state({"model_config": dict(model.model_config), "model": model.state_dict()},
                       tmp_path / "bare.pt")
    for open_it in (lambda: Predictor.from_checkpoint(tmp_path / "bare.pt", device="cpu"),
                    lambda: case_from_checkpoint(tmp_path / "bare.pt")):
        with pytest.raises(CheckpointError, match=r"bare\.pt' has no valid preprocess\.input_size"):
            open_it()
    import cv2

    cv2.imwrite(str(tmp_path / "image.png"), np.full((64, 32), 128, np.uint8))
    result = run_script("predict.py", [f"checkpoint={tmp_path / 'bare.pt'}", f"input={tmp_path / 'image.png'}",
                                       f"output_dir={tmp_path / 'pred'}"])
    assert result.returncode == 2 and "preprocess.input_size" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_saving_a_state_that_could_not_be_loaded_again_fails_at_save_time(tmp_path):
    with pytest.raises(TypeError, match="non-data object"):
        save_checkpoint(tmp_path / "x.pt", {"model_config": {}, "model": {}, "bad": np.float32(1)})
    assert not (tmp_path / "x.pt").exists()


def test_trainer_checkpoints_hold_only_data(tmp_path):
    """A real run's latest.pt (optimiser, scheduler, every RNG) loads with weights_only."""
    from r2mfnet.training.run import train

    cfg = compose_config(tiny_overrides(tmp_path / "cache", "trainer.max_steps=1",
                                        "evaluate_after_training=false"))
    with pytest.raises(r2mfnet.errors.TrainingError, match="max_steps"):
        train(cfg, tmp_path / "run")
    envelope = torch.load(tmp_path / "run/checkpoints/latest.pt", weights_only=True)
    state = torch.load(io.BytesIO(envelope["payload"]), weights_only=True)  # no NumPy allowed here
    assert isinstance(state["rng"]["numpy"][1], torch.Tensor)


# ---------------------------------------------------------------- option values
@pytest.mark.parametrize("override, key", [
    ("trainer.lr=-0.001", "trainer.lr"),
    ("trainer.lr=nan", "trainer.lr"),
    ("trainer.weight_decay=-1", "trainer.weight_decay"),
    ("data.batch_size=0", "data.batch_size"),
    ("trainer.schedule=linear", "trainer.schedule"),
    ("data.input_height=0", "data.input_height"),
    ("trainer.val_every=0", "trainer.val_every"),
    ("eval.threshold=1.5", "eval.threshold"),
    ("loss.gap_weight=-1", "loss.gap_weight"),
    ("loss.gap_kernel=4", "loss.gap_kernel"),
    ("data.synthetic.num_cases=0", "data.synthetic.num_cases"),
    ("data.synthetic.image_height=0", "data.synthetic.image_height"),
    ("data.split.num_folds=-1", "data.split.num_folds"),
    ("data.split.fold=-1", "data.split.fold"),
    ("eval.worst_cases=-1", "eval.worst_cases"),
])
def test_bad_option_values_name_their_key(override, key):
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', r'[.]')} must be"):
        validate(compose_config(["experiment=smoke", override]))


@pytest.mark.parametrize("overrides, message", [
    (["data.split.val_fraction=0.5", "data.split.test_fraction=0.5"],
     "data.split.val_fraction + data.split.test_fraction must be < 1"),
    (["data.split.num_folds=5", "data.split.fold=5"], "data.split.fold must be in [0, 5)"),
])
def test_keys_that_disagree_are_named_in_full(overrides, message):
    """Each value is valid alone; together they would fail only once the data are prepared."""
    with pytest.raises(ConfigError) as caught:
        validate(compose_config(["experiment=smoke", *overrides]))
    assert str(caught.value).startswith(message), caught.value


def test_a_bad_option_value_exits_2_and_leaves_no_run_folder(tmp_path):
    """The command's exit path, once: each value's refusal is test_bad_option_values_name_their_key
    (in-process; a subprocess per value would take 5 s each)."""
    run_dir = tmp_path / "run"
    result = run_script("train.py", ["experiment=smoke", "trainer.lr=nan", f"hydra.run.dir={run_dir}"])
    assert result.returncode == 2, result.stderr[-2000:]
    assert "trainer.lr" in result.stderr and "Traceback" not in result.stderr
    assert not run_dir.exists()


def test_resume_mismatch_shows_resolved_values():
    saved = {"name": "r2mfnet", "num_classes": 18}
    current = {**saved, "coarse_classes": 1, "fine_coords": None}
    assert model_change(saved, current) == (
        "model.coarse_classes=18, model.fine_coords=False; "
        "this config has model.coarse_classes=1, model.fine_coords=True")
    assert model_change(saved, dict(saved)) == ""


# ---------------------------------------------------------------- writes
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        text = atomic_write_text(tmp_path / "summary.json", "{}")
        ckpt = save_checkpoint(tmp_path / "c.pt", {"model_config": {}, "model": {}})
    finally:
        os.umask(old)
    assert text.stat().st_mode & 0o777 == mode
    assert ckpt.stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied"),
    (errno.EROFS, "the file system is read-only"),
])
def test_write_errors_become_one_line_and_keep_the_previous_file(tmp_path, monkeypatch, code, words):
    target = tmp_path / "latest.pt"
    save_checkpoint(target, {"model_config": {}, "model": {}, "n": 1})

    def fail(self, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Path, "write_bytes", fail)
    with pytest.raises(OutputError, match=rf"cannot write '{target}': {words}"):
        save_checkpoint(target, {"model_config": {}, "model": {}, "n": 2})
    monkeypatch.undo()
    assert load_checkpoint(target)["n"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"], "no temporary file left"


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "cannot write '{path}': the disk is full"),
    (errno.EROFS, "cannot write '{path}': the file system is read-only"),
    (errno.EACCES, "cannot access '{path}': permission denied"),
])
def test_a_write_outside_the_atomic_writer_is_one_line_too(tmp_path, capsys, code, words):
    """The entry points' backstop (a folder created, TensorBoard's event file, a log appended):
    exit code 2, one line naming the path, and the untouched run folder removed."""
    from r2mfnet.cli import EXIT_ERROR, run_guarded

    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    target = tmp_path / "out" / "events"

    def fail() -> None:
        raise OSError(code, os.strerror(code), str(target))

    with pytest.raises(SystemExit) as stopped:
        run_guarded(fail, cleanup_dir=run_dir)
    assert stopped.value.code == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"r2mfnet: error: {words.format(path=target)}" in err and "Traceback" not in err, err
    assert not run_dir.exists()


def test_other_os_errors_still_propagate():
    """Only what the user can fix becomes a message; anything else is a bug and keeps its trace."""
    from r2mfnet.cli import run_guarded

    def fail() -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO), "x")

    with pytest.raises(OSError, match="x"):
        run_guarded(fail)


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_real_failed_checkpoint_write_is_one_line(tmp_path):
    """The kernel refuses the write (file-size limit): torch's writer used to say only
    'unexpected pos 128 vs 0'. The previous checkpoint survives."""
    target = tmp_path / "latest.pt"
    save_checkpoint(target, {"model_config": {}, "model": {}, "n": 1})
    code = (
        "import sys, torch\n"
        "from r2mfnet.checkpoint import save_checkpoint\n"
        "from r2mfnet.errors import OutputError\n"
        "try:\n"
        f"    save_checkpoint({str(target)!r}, {{'model_config': {{}}, 'model': {{'w': torch.zeros(100000)}}}})\n"
        "except OutputError as exc:\n"
        "    print(exc); sys.exit(2)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            preexec_fn=_limit_file_size(64 * 1024), timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"cannot write '{target}': the file is larger than the file-size limit" in result.stdout
    assert load_checkpoint(target)["n"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


# ---------------------------------------------------------------- resumed runs
def test_a_resumed_run_logs_into_its_original_folder(tmp_path):
    overrides = tiny_overrides(tmp_path / "cache", "evaluate_after_training=false")
    first, second = tmp_path / "first", tmp_path / "second"
    stopped = run_script("train.py", [*overrides, "trainer.max_steps=2", f"hydra.run.dir={first}"])
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    resumed = run_script("train.py", [*overrides, f"hydra.run.dir={second}",
                                      f"trainer.resume={first / 'checkpoints' / 'latest.pt'}"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not second.exists(), "the resumed invocation must not leave a folder of its own"
    log = (first / "train.log").read_text()
    assert log.count("training samples per epoch") == 2 and "resumed from" in log
    assert (first / ".hydra" / "resumed" / "second" / "overrides.yaml").is_file()

"""Fuzz tests of the config checks: training (:func:`r2mfnet.training.run_config.validate`) and
every other command's schema (:func:`r2mfnet.apps.schema.command_config`).

Starting from the composed default config (what ``scripts/train.py`` sees), Hypothesis replaces
one key's value by a random value of any type, adds an unknown key at any level, or puts a
number just outside its rule's range. Whatever it draws, ``validate`` either accepts the config or
raises the project's :class:`~r2mfnet.errors.ConfigError` in one line that names the key; no
other exception escapes (a deep traceback from OmegaConf, a dataclass or torch would), and
nothing is written to the working directory. The same holds for each command's composed root
config (``configs/<command>.yaml``, with the values a run must give) and its schema.

In the suite the tests are derandomized with a few examples each; the long run draws new ones:
``R2MFNET_FUZZ_EXAMPLES=2000 python -m pytest -q tests/training/test_config_fuzz.py`` (docs/testing.md).
"""
from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from r2mfnet.errors import ConfigError
from r2mfnet.training.config_checks import RULES
from r2mfnet.training.run_config import validate
from tests.helpers import compose_config

FUZZ = settings(
    max_examples=int(os.environ.get("R2MFNET_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=os.environ.get("R2MFNET_FUZZ_EXAMPLES") is None,
)

BASE: dict[str, Any] = OmegaConf.to_container(compose_config([]), resolve=True)  # type: ignore[assignment]


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every leaf (lists are leaves); ``model.*`` is a free mapping that
    ``validate`` does not type (``build_model`` does), except ``model.num_classes``."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if key == "model":
            out["model.num_classes"] = v.get("num_classes", 1)
        elif isinstance(v, dict) and v:
            out.update(_leaves(v, key + "."))
        else:
            out[key] = v
    return out


FREE_MAPPINGS = ("model", "data.augment")
"""Mappings the schema leaves untyped (``dict[str, Any]``): a model's keyword arguments and the
augmentation options, checked by ``build_model`` and the augmentation builder, not by ``validate``."""


def _sections(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of every typed mapping (the root is ``""``)."""
    out = [prefix.rstrip(".")]
    for k, v in tree.items():
        if isinstance(v, dict) and f"{prefix}{k}" not in FREE_MAPPINGS:
            out += _sections(v, f"{prefix}{k}.")
    return out


LEAVES = _leaves(BASE)
SECTIONS = _sections(BASE)


def _set(tree: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(tree)
    node = out
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def _check(cfg: dict[str, Any], key: str, cwd) -> None:
    """Accepted, or one line of ConfigError naming ``key``; nothing written in ``cwd``."""
    try:
        validate(OmegaConf.create(cfg))
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert key in message, (key, message)
    assert list(cwd.iterdir()) == []


@pytest.fixture()
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-10**9, 10**9),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.lists(st.one_of(st.integers(-5, 300), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), st.integers(), max_size=2),
)
IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


def test_the_default_config_is_accepted(empty_cwd):
    run = validate(OmegaConf.create(BASE))
    assert run.data.labels == "binary"
    assert "trainer.lr" in LEAVES and "data.split.val_fraction" in LEAVES and "trainer" in SECTIONS


@FUZZ
@given(key=st.sampled_from(sorted(LEAVES)), value=ANY_VALUE)
def test_any_value_at_any_key_is_accepted_or_refused_by_name(key, value, empty_cwd):
    _check(_set(BASE, key, value), key, empty_cwd)


@FUZZ
@given(section=st.sampled_from(SECTIONS), name=IDENT, value=ANY_VALUE)
def test_an_unknown_key_is_refused_by_name(section, name, value, empty_cwd):
    key = f"{section}.{name}" if section else name
    if key in LEAVES or key in SECTIONS or key == "model" or key.startswith("model."):
        return
    cfg = _set(BASE, key, value)
    with pytest.raises(ConfigError) as info:
        validate(OmegaConf.create(cfg))
    message = str(info.value)
    assert "\n" not in message and key in message, (key, message)
    assert list(empty_cwd.iterdir()) == []


def _outside(key: str) -> list[Any]:
    """Values of the right type just outside ``key``'s rule (the rule's own description)."""
    expected = RULES[key][1]
    if expected.startswith("one of"):
        return ["", "nope", expected.split("one of ")[1].split(",")[0].upper()]
    if "odd integer" in expected:
        minimum = int(expected.rsplit(" ", 1)[1])
        return [minimum - 2, minimum + 1, -1]
    if "in [0" in expected or "in (0" in expected:
        return [-1e-9, 1.0 + 1e-9, float("nan")] + ([1.0] if expected.endswith(")") else []) + (
            [0.0] if "(0" in expected else [])
    if "> 0" in expected:
        return [0, -1e-9, float("inf")]
    minimum = float(expected.rsplit(" ", 1)[1])
    return [minimum - 1, minimum - 1e-6, float("-inf"), float("nan")]


@FUZZ
@given(key=st.sampled_from(sorted(RULES)), pick=st.integers(0, 5))
def test_a_value_just_outside_its_rule_is_refused_by_name(key, pick, empty_cwd):
    candidates = _outside(key)
    value = candidates[pick % len(candidates)]
    original = LEAVES[key]
    if isinstance(original, int) and not isinstance(original, bool) and isinstance(value, float) \
            and value == value and abs(value) != float("inf") and value != int(value):
        value = int(value) if value > 0 else int(value) - 1  # an integer key: stay an integer
    cfg = _set(BASE, key, value)
    with pytest.raises(ConfigError) as info:
        validate(OmegaConf.create(cfg))
    message = str(info.value)
    assert "\n" not in message and key in message, (key, value, message)
    assert list(empty_cwd.iterdir()) == []


# ----------------------------------------------------------------------------- command schemas
# command -> (schema class in r2mfnet.apps.<command>, overrides every run must give)
COMMANDS: dict[str, tuple[str, list[str]]] = {
    "evaluate": ("EvaluateConfig", ["checkpoint=ck.pt"]),
    "predict": ("PredictConfig", ["input=x.png", "output_dir=out"]),
    "evaluate_cobb": ("EvaluateCobbConfig", []),
    "export": ("ExportConfig", ["checkpoint=ck.pt", "output_file=m.onnx"]),
    "benchmark": ("BenchmarkConfig", []),
    "vertebra_compare": ("VertebraCompareConfig", []),
    "vertebra_picture": ("VertebraPictureConfig", []),
    "model_summary": ("ModelSummaryConfig", []),
    "make_synthetic": ("MakeSyntheticConfig", []),
}


def _command(name: str) -> tuple[type, dict[str, Any]]:
    import importlib

    from r2mfnet.config_dir import compose

    schema_name, overrides = COMMANDS[name]
    schema = getattr(importlib.import_module(f"r2mfnet.apps.{name}"), schema_name)
    tree = OmegaConf.to_container(compose(name, overrides), resolve=True)
    tree = {k: v for k, v in tree.items() if k != "hydra"}  # type: ignore[union-attr]
    return schema, tree


CMD = {name: _command(name) for name in COMMANDS}
CMD_LEAVES = sorted((name, key) for name, (_, tree) in CMD.items() for key in _leaves(tree)
                    if not key.startswith("model."))


def _check_command(name: str, cfg: dict[str, Any], key: str, cwd) -> None:
    from r2mfnet.apps.schema import command_config

    try:
        command_config(CMD[name][0], OmegaConf.create(cfg))
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert key in message, (name, key, message)
    assert list(cwd.iterdir()) == []


def test_every_command_accepts_its_composed_config(empty_cwd):
    from r2mfnet.apps.schema import command_config

    for name, (schema, tree) in CMD.items():
        command_config(schema, OmegaConf.create(tree))
    assert len({n for n, _ in CMD_LEAVES}) == len(COMMANDS)


@FUZZ
@given(item=st.sampled_from(CMD_LEAVES), value=ANY_VALUE)
def test_any_value_at_any_command_key_is_accepted_or_refused_by_name(item, value, empty_cwd):
    name, key = item
    _check_command(name, _set(CMD[name][1], key, value), key, empty_cwd)


@FUZZ
@given(name=st.sampled_from(sorted(COMMANDS)), key=IDENT, value=ANY_VALUE)
def test_an_unknown_command_key_is_refused_by_name(name, key, value, empty_cwd):
    from r2mfnet.apps.schema import command_config

    schema, tree = CMD[name]
    if key in tree or key in {f.name for f in __import__("dataclasses").fields(schema)}:
        return
    with pytest.raises(ConfigError) as info:
        command_config(schema, OmegaConf.create({**tree, key: value}))
    message = str(info.value)
    assert "\n" not in message and key in message, (name, key, message)
    assert list(empty_cwd.iterdir()) == []


@pytest.mark.parametrize("key, value", [("data.labels", "bin\nary"), ("model.num_classes", "2\r\n"),
                                        ("trainer.schedule", "cos\nine")])
def test_a_value_with_a_line_break_is_echoed_escaped_on_the_one_line(key, value, tmp_path, monkeypatch):
    """Found by the 2,000-example run: checks that quote the value they refuse printed a string
    with a line break raw, splitting the message. The refusal names the key on one line and
    shows the break escaped."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        validate(OmegaConf.create(_set(BASE, key, value)))
    message = str(err.value)
    assert "\n" not in message and "\r" not in message
    assert key in message
    assert "\\n" in message

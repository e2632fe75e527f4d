"""Imports go only downwards: the package's layers, checked on the source of every module.

The layers (docs/design.md): ``r2mfnet.data`` and ``r2mfnet.models`` at the bottom (with the
floor modules ``errors``, ``atomic``, ``geometry``, ``pictures``, ``checkpoint``, ``config_dir`` and
``cli`` below
the layers that use them), ``inference``, ``training``,
``evaluation`` and ``measure`` above, ``apps`` on top. A lower layer that imports a higher one
ties the building blocks to their users: the cycle shows up later as an import-order bug or as a
test of the data loader that needs the trainer. Every ``import`` statement counts, including the
ones inside functions (a deferred import is still a dependency).

The test reads the source with :mod:`ast` and imports nothing, so it is fast and sees every
module, also those that would fail to import.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "r2mfnet"

FORBIDDEN: dict[str, frozenset[str]] = {
    "data": frozenset({"training", "measure", "evaluation", "apps"}),
    "models": frozenset({"training", "measure", "evaluation", "apps"}),
    "inference": frozenset({"training", "measure", "evaluation", "apps"}),
    "measure": frozenset({"training", "inference", "evaluation", "apps"}),
    "evaluation": frozenset({"training", "apps"}),
    "training": frozenset({"experiments", "benchmark", "apps"}),
    "deploy": frozenset({"training", "measure", "evaluation", "experiments", "benchmark", "apps"}),
    "experiments": frozenset({"benchmark", "apps"}),
    "benchmark": frozenset({"apps"}),
    "apps": frozenset(),  # the top: may import any layer
}
"""Layer (first package below ``r2mfnet``) -> layers its modules must not import."""

FLOOR: dict[str, frozenset[str]] = {
    "geometry": frozenset({"errors"}),
    "atomic": frozenset({"errors"}),
    "pictures": frozenset({"atomic", "errors"}),
    "checkpoint": frozenset({"atomic", "errors", "models"}),  # reading a checkpoint builds a model
    "errors": frozenset(),
    "config_dir": frozenset({"errors"}),  # where configs/ is: below everything that composes one
    "typed_config": frozenset({"errors"}),  # a composed config checked against its dataclass schema
    "cli": frozenset({"atomic", "errors", "config_dir", "typed_config"}),  # the entry helper of apps/
    "": frozenset({"errors", "checkpoint"}),  # r2mfnet/__init__.py (load_model)
}
"""Top-level modules -> the only ``r2mfnet`` modules they may import (``""``: the package itself)."""

KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset({
    # (importing module, imported r2mfnet module) pairs that break FORBIDDEN today and are being
    # removed. test_known_violations_still_exist fails when one of them is gone, so the fix must
    # delete its line here: this list can only shrink. (Empty: the last one, evaluation drawing
    # with the TensorBoard overlay, moved to r2mfnet/pictures.py.)
})


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str | None = None) -> set[str]:
    """Every ``r2mfnet`` module that ``path`` (named ``module``, default from its place in the
    package) imports, anywhere in its body (relative imports resolved; ``from r2mfnet.x import y``
    counts as ``r2mfnet.x.y`` too when ``y`` is a module)."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # `from r2mfnet import measure` imports a package
                sub = f"{target}.{alias.name}"
                if _is_module(sub):
                    found.add(sub)
    return {m for m in found if m == "r2mfnet" or m.startswith("r2mfnet.")}


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).is_dir() or (PACKAGE.parent / rel).with_suffix(".py").is_file()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _all_imports() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _violations() -> set[tuple[str, str]]:
    out = set()
    for module, imported in _all_imports().items():
        banned = FORBIDDEN.get(_layer(module), frozenset())
        out.update((module, target) for target in imported if _layer(target) in banned)
        allowed = FLOOR.get(_layer(module))
        if allowed is not None:
            out.update((module, target) for target in imported if _layer(target) not in allowed)
    return out


def test_the_import_reader_sees_deferred_relative_and_package_imports(tmp_path) -> None:
    src = tmp_path / "probe.py"
    src.write_text("import numpy\n\n\ndef f():\n    from ..measure import landmarks\n"
                   "    from r2mfnet import training\n    import r2mfnet.apps.train\n"
                   "    from . import views\n", encoding="utf-8")
    got = _imports(src, "r2mfnet.data.probe")
    assert got == {"r2mfnet", "r2mfnet.data", "r2mfnet.data.views", "r2mfnet.measure",
                   "r2mfnet.measure.landmarks", "r2mfnet.training", "r2mfnet.apps.train"}
    assert {t for t in got if _layer(t) in FORBIDDEN["data"]} == {
        "r2mfnet.measure", "r2mfnet.measure.landmarks", "r2mfnet.training", "r2mfnet.apps.train"}


def test_imports_only_go_downwards() -> None:
    new = sorted(_violations() - KNOWN_VIOLATIONS)
    assert not new, "modules importing a higher layer (see FORBIDDEN / FLOOR):\n" + "\n".join(
        f"  {m} imports {t}" for m, t in new)


def test_every_top_level_module_and_package_has_a_rule() -> None:
    """A new module at the top of the package needs a rule, or the layering cannot see it."""
    names = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"} | {""}
    names |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(n for n in names if n not in FORBIDDEN and n not in FLOOR)
    assert not missing, f"no layering rule (FORBIDDEN or FLOOR) for r2mfnet top-level {missing}"


def test_known_violations_still_exist() -> None:
    """A listed violation that is gone must leave the list, so the list cannot rot."""
    gone = sorted(KNOWN_VIOLATIONS - _violations())
    assert not gone, f"no longer imported, remove from KNOWN_VIOLATIONS: {gone}"

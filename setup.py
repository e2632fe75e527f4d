"""Packaging beyond what pyproject.toml can say: the top-level ``configs/`` ships inside the package.

``configs/`` stays at the top of the repository (users and docs look there); the wheel holds it
as ``r2mfnet/configs`` (package ``r2mfnet.configs`` mapped to that folder), where
:func:`r2mfnet.config_dir.config_dir` finds it. Everything else is in pyproject.toml.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["r2mfnet", "r2mfnet.*"]) + ["r2mfnet.configs"],
    package_dir={"r2mfnet.configs": "configs"},
    package_data={"r2mfnet.configs": ["*.yaml", "**/*.yaml"]},
)

"""Fuzzing the readers for the form of their errors, not only their type: every refusal of a
random or mutated file is one line that names the file, and reading writes nothing beside it.

Fast in the suite (derandomized, 60 examples each); the long run raises the count with
R2MFNET_FUZZ_EXAMPLES (docs/testing.md gives the command and its result)."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from r2mfnet.data.io import read_image, read_mask
from r2mfnet.errors import R2MFNetError
from tests.data.test_data_fuzz import SUFFIXES, mutated

FUZZ = settings(
    max_examples=int(os.environ.get("R2MFNET_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=os.environ.get("R2MFNET_FUZZ_EXAMPLES") is None,
)


def _check_form(folder, path) -> None:
    before = sorted(p.name for p in folder.iterdir())
    for reader in (read_image, read_mask):
        try:
            reader(path)
        except R2MFNetError as exc:
            message = str(exc)
            assert "\n" not in message, message
            assert str(path) in message, message
    assert sorted(p.name for p in folder.iterdir()) == before


@FUZZ
@given(data=st.binary(min_size=0, max_size=600), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_refused_in_one_line_naming_the_file(tmp_path, data, suffix):
    p = tmp_path / f"fuzz{suffix}"
    p.write_bytes(data)
    _check_form(tmp_path, p)


@FUZZ
@given(sample=mutated())
def test_mutated_files_refused_in_one_line_naming_the_file(tmp_path, sample):
    data, suffix = sample
    p = tmp_path / f"mutant{suffix}"
    p.write_bytes(data)
    _check_form(tmp_path, p)

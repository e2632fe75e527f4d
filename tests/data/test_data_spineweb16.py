"""SpineWeb16 adapter on the real files (skipped where the data is absent)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from r2mfnet.data.io import read_mask
from r2mfnet.data.manifest import load_manifest
from r2mfnet.data.spineweb16 import (
    default_root,
    order_corners,
    patient_id_from_name,
    prepare_spineweb16,
)
from r2mfnet.data.views import LEVELS
from r2mfnet.errors import DataError

HERE = Path(__file__).resolve()
CANDIDATES = [
    Path(os.environ["R2MFNET_SPINEWEB16"]) if os.environ.get("R2MFNET_SPINEWEB16") else None,
    HERE.parents[3] / "shared" / "data" / "spineweb16",  # /work/shared next to /work/main
    default_root(),
]
ROOT = next((p for p in CANDIDATES if p is not None and (p / "images").is_dir() and (p / "labels").is_dir()), None)
needs_data = pytest.mark.skipif(ROOT is None, reason="SpineWeb16 not available (set R2MFNET_SPINEWEB16)")


def test_patient_ids_from_file_names():
    assert patient_id_from_name("sunhl-1th-10-Jan-2017-239 A AP") == "sunhl-1th-239"
    # the same patient on two dates is one patient
    assert patient_id_from_name("sunhl-1th-03-Jan-2017-165 A AP") == patient_id_from_name(
        "sunhl-1th-04-Jan-2017-165 B AP"
    )
    assert patient_id_from_name("sunhl-1th-30-Dec-2016-159 A AP2") == "sunhl-1th-159"
    assert patient_id_from_name("sunhl-1th-22-Nov-2016-142 A AP (2)") == "sunhl-1th-142"
    assert patient_id_from_name("sunhl-1th-20-Jul-2016-coronal7") == "sunhl-1th-20-Jul-2016-coronal7"


def test_order_corners_handles_tilt():
    tl, tr, bl, br = (0.0, 0.0), (10.0, 0.0), (0.0, 6.0), (10.0, 6.0)
    quad = np.array([br, tl, bl, tr])
    np.testing.assert_allclose(order_corners(quad), [tl, tr, bl, br])
    # 40 degrees tilt with the spine axis tilted the same way
    a = np.deg2rad(40)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    q = np.array([tl, tr, bl, br]) @ rot.T
    axis = np.array([0.0, 1.0]) @ rot.T
    np.testing.assert_allclose(order_corners(q[[3, 0, 2, 1]], axis), q)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="SpineWeb16 not found"):
        prepare_spineweb16(tmp_path / "nowhere", tmp_path / "cache")


@needs_data
def test_prepare_real_files(tmp_path):
    cache = tmp_path / "cache dir"
    manifest = prepare_spineweb16(ROOT, cache, limit=6)
    assert manifest == cache / "manifest.csv" and manifest.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp folder renamed away
    recs = load_manifest(manifest)
    assert 1 <= len(recs) <= 6
    for r in recs:
        assert r.view == "coronal" and r.quality is None and r.image.is_file()
        assert r.image.parent.resolve() == (ROOT / "images").resolve()
        assert r.patient_id == patient_id_from_name(r.case_id)
        mask = read_mask(r.mask)
        assert mask.any() and mask.mean() < 0.3
        lm = json.loads(r.landmarks.read_text())
        assert lm["levels"] == list(LEVELS)
        corners = np.asarray(lm["corners"])
        assert corners.shape == (17, 4, 2)
        # top to bottom, TL/TR above BL/BR, left of right
        centres = corners.mean(axis=1)
        assert (np.diff(centres[:, 1]) >= 0).all()
        # every vertebra centre and most corners lie inside the mask
        cy, cx = np.round(centres[:, 1]).astype(int), np.round(centres[:, 0]).astype(int)
        assert mask[cy, cx].all()
        inner = corners * 0.9 + centres[:, None, :] * 0.1  # corners pulled 10 % inwards
        iy, ix = np.round(inner[..., 1]).astype(int), np.round(inner[..., 0]).astype(int)
        assert mask[iy, ix].mean() > 0.95
        assert "cobb_deg" in lm
    # a second call reuses the cache (no rewrite)
    mtime = manifest.stat().st_mtime_ns
    assert prepare_spineweb16(ROOT, cache, limit=6) == manifest
    assert manifest.stat().st_mtime_ns == mtime
    # a different selection regenerates in place
    assert len(load_manifest(prepare_spineweb16(ROOT, cache, limit=2))) == 2

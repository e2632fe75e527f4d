"""Synthetic multi-view scoliosis radiographs with exact ground truth (the embedded default data).

One synthetic patient (:mod:`.patient`) is posed in the coronal, left-bending and right-bending
views (:mod:`.pose`) and rendered like a digital radiograph (:mod:`.render`, with
:mod:`.soft_tissue` and :mod:`.bones`); :mod:`.generate` writes it as a manifest folder that the
ordinary loaders read, so nothing downstream knows the data is synthetic.
"""
from __future__ import annotations

from r2mfnet.data.synthetic.contact_sheet import make_contact_sheet
from r2mfnet.data.synthetic.generate import (
    GENERATOR_VERSION,
    MANIFEST_COLUMNS,
    dataset_key,
    ensure_dataset,
    generate_case,
    generate_dataset,
)
from r2mfnet.data.synthetic.quality import QUALITY_SPECS

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_COLUMNS",
    "QUALITY_SPECS",
    "dataset_key",
    "ensure_dataset",
    "generate_case",
    "generate_dataset",
    "make_contact_sheet",
]

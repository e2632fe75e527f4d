"""Which images a checkpoint never saw: its own held-out test split, recomputed.

A checkpoint stores the data config it was trained with; the patient-level split is a pure
function of that config (:func:`r2mfnet.data.splits.split_by_patient`), so the test patients can
be recomputed for any data set of the same source. Used by the applications that score a
checkpoint on a data set other than its evaluation split (Cobb angles, vertebra levels).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def checkpoint_test_case_ids(checkpoint: Path, records: Sequence[Any], source: str
                              ) -> tuple[set[str] | None, str]:
    """Case ids held out by the checkpoint's own split, when it was trained on ``source``.

    Returns ``(ids, note)``; ``ids`` is None when the checkpoint was trained on other data (then
    every image of this data set is unseen by it).
    """
    from r2mfnet.checkpoint import load_checkpoint
    from r2mfnet.data.splits import stored_split

    state = load_checkpoint(checkpoint)
    data = (state.get("config") or {}).get("data") or {}
    if data.get("source") != source:
        return None, f"checkpoint trained on '{data.get('source', 'unknown')}': all images unseen"
    splits = stored_split(records, data.get("split") or {})
    ids = {r.case_id for r in splits["test"]}
    return ids, f"the checkpoint's own test split ({len(ids)} images, patients unseen in training)"

"""scripts/predict.py's review page: every case present, every image link resolves, doubtful first."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from r2mfnet.apps import predict as predict_app
from r2mfnet.config_dir import compose


class _Page(HTMLParser):
    """Rows (``<tr id>``) of the case table and every ``src`` / ``href`` of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.links: list[str] = []
        self.flag_cells: list[str] = []
        self._in_flags = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "id" in a:
            self.rows.append(a["id"])
        if tag == "td" and a.get("class") == "flags":
            self.flag_cells.append(a["data-v"])
        for key in ("src", "href"):
            if key in a:
                self.links.append(a[key])


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """Three generated three-view cases (256 x 128) with masks; the third case's coronal mask is
    emptied, so that case cannot be measured and must come first on the page."""
    import csv

    import cv2

    from r2mfnet.data.synthetic import generate_dataset

    path = generate_dataset(tmp_path_factory.mktemp("syn") / "data", 3, seed=5,
                            image_height=256, image_width=128, num_workers=0)
    rows = list(csv.DictReader(path.open()))
    row = next(r for r in rows if r["case_id"] == "syn00002" and r["view"] == "coronal")
    mask_path = Path(row["mask"]) if Path(row["mask"]).is_absolute() else path.parent / row["mask"]
    cv2.imwrite(str(mask_path), np.zeros((256, 128), np.uint8))
    return path


def test_page_lists_every_case_with_resolving_links_doubtful_first(tmp_path, manifest):
    out = tmp_path / "out"
    code = predict_app.run(compose("predict", [f"input={manifest}", f"output_dir={out}",
                                               "masks=manifest", "progress=false"]))
    assert code == 0
    page = _Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    assert sorted(page.rows) == ["syn00000", "syn00001", "syn00002"]
    assert page.rows[0] == "syn00002"  # the unmeasurable case first
    assert int(page.flag_cells[0]) >= 1
    images = [link for link in page.links if link.endswith(".png")]
    assert len([i for i in images if i.endswith("_overlay.png")]) == 9  # 3 cases x 3 views
    assert all((out / unquote(link)).is_file() for link in images)
    assert not [link for link in page.links if "://" in link]  # nothing from the network

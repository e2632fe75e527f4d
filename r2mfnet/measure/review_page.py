"""The review page of a prediction run: one ``index.html`` listing every case, doubtful first.

Why
    ``r2mfnet-predict`` writes a folder per case; a reviewer of a hundred patients needs one
    page that shows each case's overlays and angles and puts the doubtful ones
    (:mod:`r2mfnet.measure.review_flags`) at the top. The page is one self-contained file in the
    output folder: images are relative links to the case folders beside it, no server, no
    network, no JavaScript framework; a dozen lines of plain inline JavaScript sort the table
    when a column header is clicked (without JavaScript the page still lists the cases in the
    doubtful-first order). Names are written whole (they wrap, never cut off).
Columns
    flags (count and reasons), case, main angle of the coronal view (or the first measured one)
    with its end vertebrae, the regional PT / MT / TL-L angles, flexibility of the main curve
    when bending views exist, and every view's overlay (a link to the case's report picture)
    with its own main angle.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from r2mfnet.atomic import atomic_write_text
from r2mfnet.measure.review_flags import case_flags

PAGE = "index.html"

_STYLE = """
body { font-family: sans-serif; margin: 1em; background: #fafafa; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 4px 6px; vertical-align: top; }
th { background: #ddd; cursor: pointer; user-select: none; }
th[data-dir=asc]::after { content: " \\25B2"; } th[data-dir=desc]::after { content: " \\25BC"; }
td.case { max-width: 14em; word-break: break-all; font-weight: bold; }
tr.doubtful td.flags { background: #ffd6d6; color: #900; font-weight: bold; }
td.flags ul { margin: 0.2em 0 0 1em; padding: 0; font-weight: normal; max-width: 22em; }
figure { display: inline-block; margin: 0 6px 0 0; text-align: center; max-width: 11em; }
figure img { height: 180px; border: 1px solid #888; }
figcaption { font-size: 85%; word-break: break-all; }
"""

_SORT_JS = """
document.querySelectorAll('th[data-sort]').forEach(function (th) {
  th.addEventListener('click', function () {
    var body = document.querySelector('#cases tbody'), i = th.cellIndex;
    var dir = th.dataset.dir === 'desc' ? 'asc' : 'desc';
    document.querySelectorAll('th').forEach(function (h) { delete h.dataset.dir; });
    th.dataset.dir = dir;
    var rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[i].dataset.v, y = b.cells[i].dataset.v, nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return dir === 'asc' ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _main_view(case: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """The coronal view when measured, else the first measured view."""
    views = case.get("views", {})
    measured = [(v, d) for v, d in views.items() if d.get("measured")]
    return next((vd for vd in measured if vd[0] == "coronal"), measured[0] if measured else None)


def _angle(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


def _link(folder: str, name: str) -> str:
    return html.escape(f"{quote(folder)}/{quote(name)}", quote=True)


def _cell(text: str, sort_value: Any, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<td{klass} data-v="{html.escape(str(sort_value), quote=True)}">{text}</td>'


def _end_vertebrae(entry: Mapping[str, Any]) -> str:
    curves = entry.get("curves") or []
    if not curves:
        return "-"
    main = max(curves, key=lambda c: c.get("angle_deg", 0.0))
    return f"{main['upper_level']}-{main['lower_level']} (apex {main['apex_level']}, {main['side']})"


def _flexibility(case: Mapping[str, Any]) -> tuple[str, float]:
    curves = [c for c in (case.get("flexibility") or {}).get("curves", []) if c.get("flexibility") is not None]
    if not curves:
        return "-", -1e9
    main = max(curves, key=lambda c: c.get("coronal_angle_deg", 0.0))
    value = 100 * float(main["flexibility"])
    return f"{value:.0f}% ({html.escape(str(main['levels']))}, {html.escape(str(main['best_view']))})", value


def _views(case: Mapping[str, Any], folder: str) -> str:
    files = case.get("files", {})
    report = files.get("report")
    parts = []
    for view, entry in case.get("views", {}).items():
        overlay = (files.get(view) or {}).get("overlay")
        angle = _angle(entry.get("main_angle_deg")) + " deg" if entry.get("measured") else "not measured"
        caption = f"<figcaption>{html.escape(view)}: {angle}</figcaption>"
        if overlay is None:
            parts.append(f"<figure>{caption}</figure>")
            continue
        img = f'<img src="{_link(folder, overlay)}" alt="{html.escape(view, quote=True)} overlay">'
        if report:
            img = f'<a href="{_link(folder, report)}">{img}</a>'
        parts.append(f"<figure>{img}{caption}</figure>")
    return "".join(parts)


def case_row(folder: str, case: Mapping[str, Any]) -> str:
    """One ``<tr>`` of the table; each cell's ``data-v`` is what the column sorts by."""
    flags = case_flags(case)
    main = _main_view(case)
    entry: Mapping[str, Any] = main[1] if main else {}
    flag_text = (f"{len(flags)}<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in flags) + "</ul>"
                 if flags else "0")
    main_text = f"{_angle(entry.get('main_angle_deg'))} deg ({html.escape(main[0])})" if main else "not measured"
    regions = " / ".join(_angle(entry.get(k)) for k in ("pt_angle_deg", "mt_angle_deg", "tl_angle_deg"))
    flex_text, flex_value = _flexibility(case)
    cells = [
        _cell(flag_text, len(flags), "flags"),
        _cell(html.escape(str(case.get("case_id", folder))), case.get("case_id", folder), "case"),
        _cell(main_text, entry.get("main_angle_deg", -1.0)),
        _cell(html.escape(_end_vertebrae(entry)) if main else "-", _end_vertebrae(entry) if main else ""),
        _cell(regions if main else "-", entry.get("mt_angle_deg", -1.0)),
        _cell(flex_text, flex_value),
        _cell(_views(case, folder), len(case.get("views", {}))),
    ]
    cls = ' class="doubtful"' if flags else ""
    return f"<tr{cls} id=\"{html.escape(folder, quote=True)}\">" + "".join(cells) + "</tr>"


def review_page_html(cases: Sequence[tuple[str, Mapping[str, Any]]], title: str = "r2mfnet review",
                     how_measured: str = "") -> str:
    """The whole page for ``(folder, measurements dict)`` pairs, doubtful first, then by angle.

    ``how_measured`` is a sentence under the title saying where the masks and tilts come from
    (e.g. the checkpoint and the corner network): a reviewer judges an angle by how it was made."""
    def order(item: tuple[str, Mapping[str, Any]]) -> tuple[int, float]:
        main = _main_view(item[1])
        return -len(case_flags(item[1])), -(main[1].get("main_angle_deg", 0.0) if main else 1e9)

    ordered = sorted(cases, key=order)
    n_doubtful = sum(1 for _, c in cases if case_flags(c))
    headers = ["flags", "case", "main angle", "end vertebrae (main curve)", "PT / MT / TL-L (deg)",
               "flexibility (main curve)", "views (click: report)"]
    head = "".join(f'<th data-sort="1">{h}</th>' for h in headers)
    rows = "\n".join(case_row(folder, c) for folder, c in ordered)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
        + (f'<p class="how">{html.escape(how_measured)}</p>\n' if how_measured else "")
        + f"<p>{len(cases)} case(s), {n_doubtful} flagged as doubtful (listed first). Click a column "
        "header to sort by it. Angles in degrees; levels are approximate unless measured on "
        "vertebra label maps; 'side' is the image side.</p>\n"
        f'<table id="cases"><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table>\n'
        f"<script>{_SORT_JS}</script>\n</body></html>\n"
    )


def write_review_page(output_dir: str | Path, cases: Sequence[tuple[str, Mapping[str, Any]]],
                      title: str = "r2mfnet review", how_measured: str = "") -> Path:
    """Write ``index.html`` into ``output_dir`` (atomically); return its path."""
    return atomic_write_text(Path(output_dir) / PAGE, review_page_html(cases, title, how_measured))

"""The leaderboard as one self-contained static HTML page: a sortable table and the plots inline.

The page needs no network: CSS and JavaScript are inline, the plots are base64 ``data:`` URIs, and a
Content-Security-Policy forbids loading anything else. Every cell shows its value, its CI, its delta vs the base
model's plain row and whether that delta is significant (✓, bold) or not (greyed "n.s."); each number links to its
result file. Clicking a header sorts on the cells' ``data-sort`` attribute (numbers numerically, missing values
last), a second click reverses. All text from the leaderboard is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from itertools import groupby
from string import Template
from urllib.parse import quote

from fairpriv.report.model import Column, Leaderboard, Row, Value

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASE_MARK = "★"  # the base rows' marker, as in the fairness-privacy plot


def esc(text: object) -> str:
    """HTML-escaped text, quotes included (safe in element text and in attribute values)."""
    return html.escape(str(text), quote=True)


def render_html(board: Leaderboard, plots: Mapping[str, bytes], title: str) -> str:
    """The page: title, legend, leaderboard table, notes and plots (name -> PNG bytes, in the given order)."""
    if not board.rows or not board.columns:
        raise ValueError("the leaderboard has no rows or no columns: nothing to render")
    body = _legend(board) + _table(board) + _notes(board.notes) + _figures(plots)
    return _PAGE.substitute(title=esc(title), css=_CSS, body=body, js=_JS)


# --- table ----------------------------------------------------------------------------------------------------------
def _table(board: Leaderboard) -> str:
    info = board.info_columns()
    head = _group_row(board.columns, len(info)) + _header_row(board.columns, info)
    rows = "\n".join(_row(board, r, info) for r in board.rows)
    return f'<table class="leaderboard sortable">\n<thead>\n{head}</thead>\n<tbody>\n{rows}\n</tbody>\n</table>\n'


def _group_row(columns: list[Column], n_info: int) -> str:
    """Column groups (fairness, privacy, gender, capability) over their headers; not sortable."""
    spans = [(g, len(list(cs))) for g, cs in groupby(columns, key=lambda c: c.group)]
    cells = ['<th colspan="2"></th>'] + [f'<th colspan="{n}" class="group">{esc(g)}</th>' for g, n in spans]
    cells += [f'<th colspan="{n_info}" class="group">info</th>'] if n_info else []
    return '<tr class="groups">' + "".join(cells) + "</tr>\n"


def _header_row(columns: list[Column], info: list[tuple[str, str]]) -> str:
    cells = [_th("base model", "text", "base model"), _th("variant", "text", "intervention variant and its config")]
    cells += [_th(c.label, "num", _column_tip(c)) for c in columns]
    cells += [_th(label, "text", key) for key, label in info]
    return '<tr class="headers">' + "".join(cells) + "</tr>\n"


def _th(label: str, kind: str, tip: str) -> str:
    """A sortable header: ``kind`` is "num" (numeric sort) or "text"."""
    return f'<th data-type="{kind}" aria-sort="none" tabindex="0" title="{esc(tip)}">{esc(label)}</th>'


def _column_tip(col: Column) -> str:
    direction = {True: "higher is better", False: "lower is better", None: "0 is ideal (a gap)"}
    task = f"task {col.task} v{col.version}, metric {col.metric}; " if col.task else ""
    return f"{col.key}: {task}{direction[col.higher_is_better]}"


def _row(board: Leaderboard, row: Row, info: list[tuple[str, str]]) -> str:
    cells = [_text_cell(row.base_model), _variant_cell(row)]
    cells += [_value_cell(row.values.get(c.key), c) for c in board.columns]
    cells += [_text_cell(row.info.get(key, "")) for key, _ in info]
    classes = [c for c, on in (("base", row.is_base), ("limited", row.limit is not None)) if on]
    return f'<tr class="{" ".join(classes)}">' + "".join(cells) + "</tr>"


def _text_cell(text: str) -> str:
    return f'<td class="text" data-sort="{esc(text)}">{esc(text)}</td>'


def _variant_cell(row: Row) -> str:
    """The variant's name, a star on base rows and a badge on rows from ``--limit`` runs."""
    marks = [f'<span class="basemark" title="base model\'s plain row">{BASE_MARK}</span>'] if row.is_base else []
    if row.limit is not None:
        n = f"{row.limit:g}"
        tip = f"lm-eval --limit {n}: a subset of each task, not comparable with full runs"
        marks.append(f'<span class="badge limit" title="{esc(tip)}">limit {esc(n)}</span>')
    return f'<td class="text variant" data-sort="{esc(row.variant)}">{esc(row.variant)} {" ".join(marks)}</td>'


# --- value cells ----------------------------------------------------------------------------------------------------
def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _value_cell(v: Value | None, col: Column) -> str:
    """Value (linked to its source), CI, delta and significance mark; ``data-sort`` holds the raw value."""
    if v is None or not _finite(v.value):
        return '<td class="num missing" data-sort="" title="no value">–</td>'
    sig = {True: " sig", False: " ns", None: ""}[v.significant]
    parts = [_link(f"{v.value:.{col.digits}f}", v.source), _ci(v, col.digits), _delta(v, col.digits)]
    content = " ".join(p for p in parts if p)
    return f'<td class="num{sig}" data-sort="{v.value!r}" title="{esc(_value_tip(v))}">{content}</td>'


def _link(text: str, source: str | None) -> str:
    """``text`` linking to the result file (a path relative to the page, percent-encoded), if any."""
    return f'<a href="{esc(quote(source))}">{esc(text)}</a>' if source else esc(text)


def _ci(v: Value, digits: int) -> str:
    if not (_finite(v.ci_low) and _finite(v.ci_high)):
        return ""
    return f'<span class="ci">[{v.ci_low:.{digits}f}, {v.ci_high:.{digits}f}]</span>'


def _delta(v: Value, digits: int) -> str:
    """The delta vs the base row with ✓ (significant) or n.s. (not significant); no mark when untested."""
    mark = {True: '<span class="mark">✓</span>', False: '<span class="mark">n.s.</span>', None: ""}[v.significant]
    delta = f"Δ {v.delta:+.{digits}f}" if _finite(v.delta) else ""
    return f'<span class="delta">{delta} {mark}</span>' if delta or mark else ""


def _value_tip(v: Value) -> str:
    """Hover text: n, p, q, the test and the judge."""
    parts = [f"n = {v.n}" if v.n is not None else "", f"p = {v.p_value:.3g}" if _finite(v.p_value) else ""]
    parts += [f"q = {v.q_value:.3g}" if _finite(v.q_value) else "", f"({v.test})" if v.test else ""]
    parts += [f"judge: {v.judge}" if v.judge else "", f"source: {v.source}" if v.source else ""]
    return "; ".join(p for p in parts if p)


# --- legend, notes, plots -------------------------------------------------------------------------------------------
def _legend(board: Leaderboard) -> str:
    a = f"{board.alpha:g}"
    return (
        f'<p class="legend">Each cell: value <span class="ci">[CI low, high]</span> and Δ, the difference from the '
        f"same base model's plain row ({BASE_MARK}). <b>✓ bold</b>: the paired test against the base on the same "
        f"items has q &lt; {a} after Benjamini–Hochberg across the metrics of the row. <span class=\"ns\">"
        f'<span class="mark">n.s.</span> greyed</span>: not significant (q ≥ {a}). '
        "Δ without a mark: no paired test. "
        '<span class="badge limit">limit</span>: from lm-eval <code>--limit</code> runs (a subset of the items). '
        "Click a header to sort (again to reverse); numbers link to their result files; hover one for n, p, q.</p>\n"
    )


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return f'<h2>Notes</h2>\n<ul class="notes">{items}</ul>\n'


def _figures(plots: Mapping[str, bytes]) -> str:
    if not plots:
        return ""
    return "<h2>Plots</h2>\n" + "\n".join(_figure(name, data) for name, data in plots.items()) + "\n"


def _figure(name: str, data: bytes) -> str:
    """One plot inline as a data URI; ValueError unless ``data`` is PNG bytes."""
    if not isinstance(data, (bytes, bytearray)) or bytes(data[:8]) != PNG_SIGNATURE:
        raise ValueError(f"plot {name!r} is not PNG bytes (got {type(data).__name__} {data[:8]!r}...)")
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<figure><img src="{uri}" alt="{esc(name)}"><figcaption>{esc(name)}</figcaption></figure>'


# --- page -----------------------------------------------------------------------------------------------------------
_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table.leaderboard { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 6px; vertical-align: top; }
thead th { background: #f3f3f3; }
th.group { text-transform: uppercase; font-size: 11px; color: #555; }
th[data-type] { cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; white-space: nowrap; }
td.missing { color: #bbb; text-align: center; }
tr.base { background: #eef4fb; }
tr.limited { background: #fff8e8; }
.basemark { color: #c90; }
.ci { color: #888; font-size: 11px; }
.delta { display: block; font-size: 11px; }
td.sig .delta, .legend b { font-weight: bold; }
td.ns .delta, .legend .ns { color: #999; }
.mark { font-size: 10px; }
.badge { font-size: 10px; padding: 0 4px; border-radius: 3px; background: #fde2b8; color: #222; }
a { color: inherit; }
figure { display: inline-block; margin: 1em; vertical-align: top; }
img { max-width: 100%; }
figcaption { font-size: 12px; color: #555; }
"""

# Sort the rows on the clicked column's data-sort values; a second click reverses; missing values stay last.
_JS = """
(function () {
  function key(row, col, numeric) {
    var s = row.cells[col].getAttribute("data-sort");
    if (s === null || s === "") return null;
    return numeric ? Number(s) : s.toLowerCase();
  }
  function compare(a, b, dir) {
    if (a === null || b === null) return (a === null) - (b === null);
    return dir * (a < b ? -1 : a > b ? 1 : 0);
  }
  function sortBy(table, th) {
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var col = th.cellIndex, numeric = th.dataset.type === "num", body = table.tBodies[0];
    var rows = Array.from(body.rows);
    rows.sort(function (a, b) { return compare(key(a, col, numeric), key(b, col, numeric), dir); });
    rows.forEach(function (r) { body.appendChild(r); });
    table.querySelectorAll("th[data-type]").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-type]").forEach(function (th) {
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(table, th); });
    });
  });
})();
"""

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>$title</title>
<style>$css</style>
</head>
<body>
<h1>$title</h1>
$body<script>$js</script>
</body>
</html>
""")

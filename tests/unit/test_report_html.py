"""The HTML leaderboard page without a browser: every row and column, escaping, links to sources, significance
marks exactly where a difference is not significant, inline PNG plots, and ValueErrors for bad inputs."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest

from fairpriv.report.html import render_html
from fairpriv.report.model import Column, Leaderboard, Row, Value

EVIL = "<script>alert('x')</script>"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32  # the signature is all render_html checks
COLUMNS = [
    Column("fair", "fairness aw.", "fairness", True),
    Column("priv", "privacy aw.", "privacy", True),
    Column("gap", "tox. gap", "gender", None, digits=4),
    Column("mmlu", "MMLU", "capability", True),
]


def board() -> Leaderboard:
    """Base A with two variants (one with a malicious name), base B with a --limit variant; some values missing."""
    src = "runs/a b/results_2024-01-01T00:00:00.json"
    rows = [
        Row("A", "base", None, values={"fair": Value(0.5, 0.45, 0.55, source=src, n=200), "priv": Value(0.4),
                                        "gap": Value(0.01), "mmlu": Value(0.6, source="a/mmlu.json")}),
        Row("A", EVIL, "dean", values={
            "fair": Value(0.6, 0.55, 0.65, source="a/dean.json", delta=0.1, p_value=0.001, q_value=0.004,
                          significant=True, test="mcnemar"),
            "priv": Value(0.41, delta=0.01, p_value=0.6, q_value=0.6, significant=False),
            "gap": Value(None), "mmlu": Value(0.58, delta=-0.02, significant=False)},
            info={"zeroed": "12 entries", "judge": EVIL}),
        Row("A", "dp epsilon=8", "dp", values={"fair": Value(0.49, delta=-0.01), "mmlu": Value(0.55, delta=-0.05,
                                                                                             significant=True)},
            info={"epsilon": "8", "delta": "1e-5", "accountant": "prv"}),
        Row("B", "base", None, values={"fair": Value(0.3), "priv": Value(0.7), "gap": Value(-0.02)}, limit=10),
        Row("B", "cda", "cda", values={"fair": Value(0.35, delta=0.05, significant=False), "priv": Value(0.71)},
            limit=10),
    ]
    return Leaderboard(COLUMNS, rows, notes=[f"a note with {EVIL}", "second note"])


class Table(HTMLParser):
    """Collects the header texts and, per body row, its class and cells (attributes, text, links)."""

    def __init__(self):
        super().__init__()
        self.headers, self.rows, self.images, self.where = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "th" and "data-type" in attrs:
            self.headers.append("")
            self.where = "th"
        elif tag == "tr":
            self.rows.append({"class": attrs.get("class", ""), "cells": []})
        elif tag == "td":
            self.rows[-1]["cells"].append({"attrs": attrs, "text": "", "hrefs": []})
            self.where = "td"
        elif tag == "a" and self.where == "td":
            self.rows[-1]["cells"][-1]["hrefs"].append(attrs["href"])
        elif tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self.where = None

    def handle_data(self, data):
        if self.where == "th":
            self.headers[-1] += data
        elif self.where == "td":
            self.rows[-1]["cells"][-1]["text"] += data


def parse(page: str) -> Table:
    t = Table()
    t.feed(page)
    t.rows = [r for r in t.rows if r["cells"]]  # header rows have no td
    return t


@pytest.fixture()
def page() -> str:
    return render_html(board(), {"fairness-privacy": PNG, "sweep <b>": PNG}, title=f"Leaderboard {EVIL}")


def test_every_row_and_column_with_only_non_empty_info_columns(page):
    t = parse(page)
    info = ["DP ε", "DP δ", "accountant", "DEAN zeroed", "judge"]  # no row has "data"
    assert t.headers == ["base model", "variant", "fairness aw.", "privacy aw.", "tox. gap", "MMLU", *info]
    assert [r["cells"][0]["text"] for r in t.rows] == ["A", "A", "A", "B", "B"]
    assert [r["cells"][1]["attrs"]["data-sort"] for r in t.rows] == [r.variant for r in board().rows]
    assert all(len(r["cells"]) == len(t.headers) for r in t.rows)
    assert [r["cells"][6]["text"] for r in t.rows] == ["", "", "8", "", ""]
    for group in ("fairness", "privacy", "gender", "capability", "info"):
        assert f'class="group">{group}</th>' in page


def test_values_cis_and_deltas_are_shown_with_the_raw_value_for_sorting(page):
    cells = [r["cells"] for r in parse(page).rows]
    assert cells[0][2]["text"].split() == ["0.500", "[0.450,", "0.550]"]
    assert cells[1][2]["text"].split() == ["0.600", "[0.550,", "0.650]", "Δ", "+0.100", "✓"]
    assert cells[1][2]["attrs"]["title"] == "p = 0.001; q = 0.004; (mcnemar); source: a/dean.json"
    assert [c[4]["attrs"]["data-sort"] for c in cells] == ["0.01", "", "", "-0.02", ""]  # gap: None or absent
    assert [c[4]["text"] for c in cells][1:3] == ["–", "–"]


def test_malicious_names_are_escaped_everywhere(page):
    assert EVIL not in page and "sweep <b>" not in page
    assert page.count("<script>") == 1  # the page's own sorting script
    # title x2, the note, and the variant and judge cells (text + data-sort)
    assert page.count("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;") == 7
    assert parse(page).rows[1]["cells"][1]["text"].strip() == EVIL  # shown as text


def test_numbers_link_to_their_source_files_percent_encoded(page):
    cells = [r["cells"] for r in parse(page).rows]
    assert cells[0][2]["hrefs"] == ["runs/a%20b/results_2024-01-01T00%3A00%3A00.json"]
    assert cells[0][5]["hrefs"] == ["a/mmlu.json"] and cells[1][2]["hrefs"] == ["a/dean.json"]
    assert cells[0][3]["hrefs"] == [] and "0.400" in cells[0][3]["text"]  # no source: plain number
    links = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert not [u for u in links if re.match(r"(https?:)?//", u)]  # nothing from the network


def test_not_significant_marks_exactly_where_significant_is_false(page):
    b, t = board(), parse(page)
    for row, parsed in zip(b.rows, t.rows):
        for col, cell in zip(b.columns, parsed["cells"][2:]):
            v = row.values.get(col.key)
            sig = None if v is None else v.significant
            classes = cell["attrs"]["class"].split()
            assert ("n.s." in cell["text"]) == ("ns" in classes) == (sig is False), (row.variant, col.key)
            assert ("✓" in cell["text"]) == ("sig" in classes) == (sig is True), (row.variant, col.key)
    assert page.count('<span class="mark">n.s.</span>') == 4  # 3 cells + the legend


def test_base_rows_and_limit_runs_are_labelled(page):
    rows = parse(page).rows
    assert [r["class"].split() for r in rows] == [["base"], [], [], ["base", "limited"], ["limited"]]
    assert ["★" in r["cells"][1]["text"] for r in rows] == [True, False, False, True, False]
    assert ["limit 10" in r["cells"][1]["text"] for r in rows] == [False, False, False, True, True]


def test_legend_notes_and_plots_inline(page):
    assert "q &lt; 0.05 after Benjamini–Hochberg" in page
    assert "<li>second note</li>" in page
    images = parse(page).images
    assert [i["alt"] for i in images] == ["fairness-privacy", "sweep <b>"]  # as decoded by the parser
    assert all(base64.b64decode(i["src"].removeprefix("data:image/png;base64,")) == PNG for i in images)
    assert "<figcaption>sweep &lt;b&gt;</figcaption>" in page


def test_page_is_deterministic_and_has_no_plot_section_without_plots():
    assert render_html(board(), {}, "t") == render_html(board(), {}, "t")
    assert "<img" not in render_html(board(), {}, "t") and "<h2>Plots</h2>" not in render_html(board(), {}, "t")


@pytest.mark.parametrize("make, message", [
    (lambda: render_html(Leaderboard(COLUMNS, []), {}, "t"), "no rows"),
    (lambda: render_html(board(), {"fp": b"GIF89a"}, "t"), "plot 'fp' is not PNG bytes"),
    (lambda: render_html(board(), {"fp": "/tmp/fp.png"}, "t"), "plot 'fp' is not PNG bytes"),
])
def test_bad_inputs_raise_value_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()

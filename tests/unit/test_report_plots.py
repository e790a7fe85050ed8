"""Report plots on a hand-built leaderboard: valid deterministic PNGs, one arrow per variant, sweep grouping and
scales, significance styling of the capability-cost bars, and ValueErrors for bad inputs."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from matplotlib.text import Annotation
from PIL import Image

from fairpriv.report import plots
from fairpriv.report.model import Column, Leaderboard, Row, Value

COLUMNS = [
    Column("fair", "fairness aw.", "fairness", True),
    Column("priv", "privacy aw.", "privacy", True),
    Column("mmlu", "MMLU", "capability", True),
    Column("ppl", "perplexity", "capability", False, digits=2),
]


def val(x, delta=None, sig=None, ci=0.02):
    """A value with a CI of +-ci (none when x is None)."""
    if x is None:
        return Value(None)
    return Value(x, ci_low=x - ci, ci_high=x + ci, delta=delta, significant=sig, source="r.json")


def row(base, variant, intervention, fair, priv, mmlu=None, ppl=None, sweep=None):
    values = {"fair": fair, "priv": priv, "mmlu": mmlu or val(None), "ppl": ppl or val(None)}
    return Row(base, variant, intervention, values=values, sweep=sweep)


def board() -> Leaderboard:
    """Base A with three DEAN p values (a log sweep), a CDA ratio sweep, one DP point (a 1-point sweep, skipped)
    and a variant lacking privacy awareness; base B with one variant."""
    a = [
        row("A", "base", None, val(0.50), val(0.40), val(0.60), val(20.0)),
        row("A", "dean p=0.001", "dean", val(0.52, 0.02, True), val(0.45, 0.05, True),
            val(0.59, -0.01, False), val(20.5, 0.5, False), sweep=("p", 0.001)),
        row("A", "dean p=0.1", "dean", val(0.60, 0.10, True), val(0.50, 0.10, True),
            val(0.50, -0.10, True), val(25.0, 5.0, True), sweep=("p", 0.1)),
        row("A", "dean p=0.01", "dean", val(0.55, 0.05, False), val(0.47, 0.07, True),
            val(0.57, -0.03, None), val(None), sweep=("p", 0.01)),
        row("A", "cda ratio=0.5", "cda", val(0.51, 0.01, False), val(0.41), val(0.60, 0.0, False),
            sweep=("ratio", 0.5)),
        row("A", "cda ratio=1", "cda", val(0.53, 0.03, False), val(0.42), val(0.61, 0.01, False), sweep=("ratio", 1.0)),
        row("A", "dp eps=8", "dp", val(0.49, -0.01, False), val(None), val(0.58, -0.02, True), sweep=("epsilon", 8.0)),
    ]
    b = [row("B", "base", None, val(0.30), val(0.70), val(0.40)),
         row("B", "cda", "cda", val(0.35, 0.05, True), val(0.72, 0.02, False))]
    return Leaderboard(COLUMNS, a + b)


def arrows(fig) -> list[Annotation]:
    return [t for t in fig.axes[0].texts if isinstance(t, Annotation) and t.arrow_patch is not None]


def assert_png(data: bytes, min_size=(200, 150)) -> None:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG" and img.size[0] >= min_size[0] and img.size[1] >= min_size[1]
    assert len(img.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 10  # not a blank canvas


# --- fairness vs privacy --------------------------------------------------------------------------------------------
def test_fairness_privacy_is_a_deterministic_png():
    data = plots.fairness_privacy(board(), "fair", "priv")
    assert_png(data)
    assert plots.fairness_privacy(board(), "fair", "priv") == data


def test_one_arrow_from_each_base_to_each_variant_with_both_values():
    b = board()
    fig = plots.fairness_privacy_figure(b, "fair", "priv")
    drawn = arrows(fig)
    expected = ["dean p=0.001", "dean p=0.1", "dean p=0.01", "cda ratio=0.5", "cda ratio=1", "cda"]  # not dp: no priv
    assert [a.get_gid() for a in drawn] == [f"arrow:{v}" for v in expected]
    base_a, dean = b.rows[0], b.rows[1]
    assert drawn[0].xy == (dean.values["fair"].value, dean.values["priv"].value)
    assert drawn[0].xyann == (base_a.values["fair"].value, base_a.values["priv"].value)
    labels = [t.get_text() for t in fig.axes[0].texts if t.arrow_patch is None]
    # the cda ratios sit 0.02 apart in x and 0.01 in y (axes 0.263..0.637 x 0.362..0.758): 0.36 of a label's width
    # and 0.63 of a line apart, so they share one label, the upper point's
    assert labels == ["dean p=0.001", "dean p=0.1", "dean p=0.01", "cda ratio=0.5\ncda ratio=1", "cda"]
    shared = next(t for t in fig.axes[0].texts if t.get_text().startswith("cda ratio"))
    assert shared.xy == (0.53, 0.42)


def test_label_clusters_chain_points_closer_than_a_label_in_both_directions():
    lim = (0.0, 1.0)
    points = [(0.10, 0.50), (0.20, 0.52), (0.34, 0.55), (0.10, 0.60), (0.80, 0.50), (0.80, 0.505)]
    # 0-1: 0.10 < 0.15 wide and 0.02 < 0.04 high; 1-2 likewise (0.14, 0.03), so 0 and 2 chain through 1 although
    # 0.24 apart; 3 is 0.10 above 0: a separate line; 4-5 nearly coincide; 4 is 0.46 right of 2
    assert plots.label_clusters(points, lim, lim) == [[0, 1, 2], [3], [4, 5]]
    assert plots.label_clusters(points, (0.0, 2.0), lim) == [[0, 1, 2], [3], [4, 5]]
    assert plots.label_clusters(points, lim, (0.0, 0.25)) == [[0], [1], [2], [3], [4, 5]]  # y stretched 4x
    assert plots.label_clusters(points[:1], lim, lim) == [[0]] and plots.label_clusters([], lim, lim) == []


def crowded() -> Leaderboard:
    """A base and six variants around it, the leaderboard's shape: four within a label of the base, one a label's
    width to the right (its upper-right label would cover the next dot), one far away."""
    spots = [(0.529, 0.761), (0.529, 0.762), (0.531, 0.761), (0.521, 0.766), (0.540, 0.755), (0.552, 0.782),
             (0.571, 0.805), (0.819, 1.0)]
    rows = [row("A", "base" if i == 0 else f"variant {i}", None if i == 0 else "x", val(x, 0.0, False), val(y, 0.0,
                False)) for i, (x, y) in enumerate(spots)]
    return Leaderboard(COLUMNS, rows)


@pytest.mark.parametrize("make", [board, crowded])
def test_labels_cover_no_dot_legend_or_other_label(make):
    fig = plots.fairness_privacy_figure(make(), "fair", "priv")
    ax, renderer = fig.axes[0], fig.canvas.get_renderer()
    labels = [t.get_window_extent(renderer) for t in ax.texts if t.arrow_patch is None]
    dots = [ax.transData.transform((c.lines[0].get_xdata()[0], c.lines[0].get_ydata()[0])) for c in ax.containers]
    legend = ax.get_legend().get_window_extent(renderer)
    for i, box in enumerate(labels):
        assert not any(box.contains(x, y) for x, y in dots), ax.texts[i].get_text()
        assert not box.overlaps(legend) and not any(box.overlaps(o) for o in labels[i + 1:])
        assert ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
    names = "\n".join(t.get_text() for t in ax.texts)
    assert all(f"variant {i}" in names for i in range(1, 8)) if make is crowded else True


def test_base_rows_are_stars_and_points_carry_ci_error_bars():
    fig = plots.fairness_privacy_figure(board(), "fair", "priv")
    ax = fig.axes[0]
    markers = {c.lines[0].get_gid(): c.lines[0].get_marker() for c in ax.containers}
    assert markers["point:base"] == "*" and markers["point:dean p=0.1"] == "o" and "point:dp eps=8" not in markers
    assert all(c.has_xerr and c.has_yerr for c in ax.containers)
    assert len(ax.containers) == 8  # 9 rows, dp eps=8 lacks privacy awareness


def test_a_variant_whose_base_lacks_a_value_gets_no_arrow():
    b = board()
    b.rows[7].values["priv"] = Value(None)  # base B
    assert [a.get_gid() for a in arrows(plots.fairness_privacy_figure(b, "fair", "priv"))][-1] == "arrow:cda ratio=1"


def test_dollar_signs_in_names_are_drawn_as_text_not_mathtext():
    b = board()
    b.rows[1].variant = "dean $p$ = 1e-3 $"
    assert_png(plots.fairness_privacy(b, "fair", "priv"))


# --- sweeps ---------------------------------------------------------------------------------------------------------
def test_sweep_groups_by_base_intervention_and_key_sorted_by_value():
    groups = plots.sweep_groups(board())
    assert list(groups) == [("A", "dean", "p"), ("A", "cda", "ratio")]  # dp epsilon has one point only
    assert [r.sweep[1] for r in groups[("A", "dean", "p")]] == [0.001, 0.01, 0.1]
    assert ("A", "dp", "epsilon") in plots.sweep_groups(board(), min_points=1)


def test_sweeps_give_one_png_per_group_log_scale_over_a_decade():
    figs = dict(plots.sweep_figures(board(), ["fair", "priv", "mmlu", "ppl"]))
    assert list(figs) == ["sweep-A-dean-p", "sweep-A-cda-ratio"]
    dean, cda = figs["sweep-A-dean-p"], figs["sweep-A-cda-ratio"]
    assert {ax.get_xscale() for ax in dean.axes if ax.get_visible()} == {"log"}
    assert {ax.get_xscale() for ax in cda.axes if ax.get_visible()} == {"linear"}
    assert [ax.get_title() for ax in cda.axes if ax.get_visible()] == ["fairness aw.", "privacy aw.", "MMLU"]  # no ppl
    base_lines = [ln for ax in dean.axes for ln in ax.lines if (ln.get_gid() or "").startswith("base:")]
    assert [ln.get_ydata()[0] for ln in base_lines] == [0.50, 0.40, 0.60, 20.0]
    for name, data in plots.sweeps(board(), ["fair", "ppl"]):
        assert_png(data)


def test_sweep_line_skips_missing_values():
    dean = dict(plots.sweep_figures(board(), ["ppl"]))["sweep-A-dean-p"]
    (line,) = [c.lines[0] for c in dean.axes[0].containers if c.lines[0].get_gid() == "line:ppl"]
    assert list(line.get_xdata()) == [0.001, 0.1]


def test_a_board_without_sweeps_gives_no_sweep_plots():
    b = board()
    for r in b.rows:
        r.sweep = None
    assert plots.sweeps(b, ["fair"]) == []


# --- capability cost ------------------------------------------------------------------------------------------------
def test_capability_cost_bars_are_hatched_and_faded_unless_significant():
    fig = plots.capability_cost_figure(board(), ["mmlu", "ppl"])
    bars = {p.get_gid(): p for ax in fig.axes for p in ax.patches if p.get_gid()}
    sig, ns, untested = bars["bar:1:ppl"], bars["bar:0:mmlu"], bars["bar:2:mmlu"]  # rows: dean p=0.1, 0.001, 0.01
    assert (sig.get_hatch(), sig.get_alpha()) == (None, 1.0)
    assert (ns.get_hatch(), ns.get_alpha()) == ("///", 0.4)
    assert untested.get_hatch() == "..."
    assert bars["bar:1:mmlu"].get_width() == pytest.approx(-0.10)
    assert len(bars) == 6 + 2  # mmlu: every variant but B's cda; ppl: the two dean rows with a delta


@pytest.mark.parametrize("deltas", [(0.001, -0.001, 0.0, 0.003, 0.015, -0.003), (-0.5, -0.02), (120.0, 0.1, -11.0)])
def test_capability_cost_value_labels_stay_inside_their_panel(deltas):
    # the leaderboard's MMLU panel (small negative deltas whose labels ran into the names), all negative, wide range
    rows = [row("A", "base", None, val(0.5), val(0.5), val(0.5))]
    rows += [row("A", f"variant {i}", "x", val(0.5), val(0.5), val(0.5 + d, d, False)) for i, d in enumerate(deltas)]
    fig = plots.capability_cost_figure(Leaderboard(COLUMNS, rows), ["mmlu"])
    ax, renderer = fig.axes[0], fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    for text in ax.texts:
        box = text.get_window_extent(renderer)
        assert frame.x0 + 2 < box.x0 and box.x1 < frame.x1 - 2, text.get_text()  # not touching the names
    assert len(ax.texts) == len(deltas) and ax.get_xlim()[0] < min(deltas) and ax.get_xlim()[1] > max(deltas)


def test_capability_cost_png_and_skips_columns_without_deltas():
    b = board()
    fig = plots.capability_cost_figure(b, ["mmlu", "ppl"])
    assert [ax.get_title() for ax in fig.axes] == ["MMLU (higher is better)", "perplexity (lower is better)"]
    assert_png(plots.capability_cost(b, ["mmlu", "ppl"]))
    for r in b.rows:
        r.values["ppl"] = Value(None)
    assert len(plots.capability_cost_figure(b, ["mmlu", "ppl"]).axes) == 1


def test_write_pngs_uses_safe_file_names(tmp_path):
    paths = plots.write_pngs({"fairness/privacy": b"\x89PNG", "sweep A:dean": b"x"}, tmp_path / "p")
    assert [p.name for p in paths] == ["fairness-privacy.png", "sweep-A-dean.png"]
    assert paths[0].read_bytes() == b"\x89PNG"


# --- bad inputs -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda b: plots.fairness_privacy(Leaderboard(COLUMNS, []), "fair", "priv"), "no rows"),
    (lambda b: plots.fairness_privacy(b, "fair", "nope"), "unknown column(s) 'nope'"),
    (lambda b: plots.sweeps(b, []), "no column keys"),
    (lambda b: plots.capability_cost(b, ["mmlu", "bogus"]), "'bogus'"),
    (lambda b: plots.capability_cost(Leaderboard(COLUMNS, [b.rows[0], b.rows[7]]), ["mmlu"]), "no variant row has"),
    (lambda b: plots.fairness_privacy(Leaderboard(COLUMNS, [b.rows[6]]), "fair", "priv"), "no row has both"),
])
def test_bad_inputs_raise_value_errors_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(board())


def test_plots_and_html_import_neither_torch_lm_eval_nor_pyplot():
    code = (
        "import sys; from fairpriv.report import html, plots, model\n"
        "row = model.Row('m', 'base', None, values={'x': model.Value(1.0)})\n"
        "b = model.Leaderboard([model.Column('x', 'x', 'fairness', True)], [row])\n"
        "plots.fairness_privacy(b, 'x', 'x'); html.render_html(b, {}, 't')\n"
        "print(sorted(m for m in ('torch', 'lm_eval', 'matplotlib.pyplot') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

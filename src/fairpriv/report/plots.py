"""Leaderboard plots as PNG bytes: fairness vs privacy awareness, trade-off curves along sweeps, capability cost.

Everything is drawn on explicit :class:`~matplotlib.figure.Figure` objects with the Agg canvas (pyplot is never
imported, so no global state leaks between figures). Each plot has a ``*_figure`` function returning the figure,
which tests inspect, and a function returning PNG bytes. The PNGs carry no software/date metadata, so the same
leaderboard gives byte-identical files.

Inputs are column keys chosen by the caller. Rows lacking a value are skipped; an empty leaderboard, an unknown
column or nothing left to draw raises :class:`ValueError` naming the problem (sweeps return ``[]`` when the
leaderboard has no sweep with two points or more).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import Bbox
from scipy.cluster.hierarchy import fcluster, linkage

from fairpriv.report.model import Column, Leaderboard, Row, Value

DPI = 110
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
LABEL_STYLE = dict(fontsize=7, color="0.2", bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
LABEL_SPOTS = ((5, 4), (5, -4), (-5, 4), (-5, -4))  # label offsets in points: right-up, right-down, left-up, left-down
SweepKey = tuple[str, str, str]  # (base model, intervention, swept config key)


# --- shared helpers -------------------------------------------------------------------------------------------------
def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg canvas, no metadata: deterministic)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def write_pngs(plots: dict[str, bytes], folder: str | Path) -> list[Path]:
    """Write each plot as ``folder/<name>.png``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{slug(name)}.png" for name in plots]
    for path, data in zip(paths, plots.values()):
        path.write_bytes(data)
    return paths


def slug(text: str) -> str:
    """A file-name-safe version of ``text`` (e.g. for plot names)."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", text).strip("-") or "plot"


def plain(text: str) -> str:
    """Text drawn as is: matplotlib would read ``$...$`` as mathtext."""
    return str(text).replace("$", r"\$")


def _check(board: Leaderboard, keys: Sequence[str]) -> list[Column]:
    """The columns of ``keys``; ValueError for an empty board, no keys or an unknown key."""
    if not board.rows:
        raise ValueError("the leaderboard has no rows: nothing to plot")
    if not keys:
        raise ValueError("no column keys given: nothing to plot")
    known = {c.key: c for c in board.columns}
    missing = [k for k in keys if k not in known]
    if missing:
        raise ValueError(f"unknown column(s) {', '.join(map(repr, missing))}; columns: {', '.join(known)}")
    return [known[k] for k in keys]


def _number(row: Row, key: str) -> float | None:
    """The row's finite value of column ``key``, or None."""
    v = row.values.get(key)
    return v.value if v is not None and v.value is not None and math.isfinite(v.value) else None


def _err(v: Value) -> tuple[float, float]:
    """Error-bar half-lengths (below, above) from the value's CI; zeros without a CI."""
    if v.ci_low is None or v.ci_high is None:
        return (0.0, 0.0)
    return (max(v.value - v.ci_low, 0.0), max(v.ci_high - v.value, 0.0))


def _base_colors(board: Leaderboard) -> dict[str, str]:
    """One colour per base model, in order of first appearance."""
    bases = dict.fromkeys(r.base_model for r in board.rows)
    return {b: COLORS[i % len(COLORS)] for i, b in enumerate(bases)}


# --- fairness vs privacy awareness ----------------------------------------------------------------------------------
def fairness_privacy(board: Leaderboard, x_key: str, y_key: str) -> bytes:
    """PNG: fairness awareness (x) vs privacy awareness (y), an arrow from each base to each of its variants."""
    return to_png(fairness_privacy_figure(board, x_key, y_key))


def fairness_privacy_figure(board: Leaderboard, x_key: str, y_key: str) -> Figure:
    """The figure of :func:`fairness_privacy`; rows without both values are left out (their arrows too)."""
    xcol, ycol = _check(board, [x_key, y_key])
    rows = [r for r in board.rows if _number(r, x_key) is not None and _number(r, y_key) is not None]
    if not rows:
        raise ValueError(f"no row has both {x_key!r} and {y_key!r}: nothing to plot")
    fig = Figure(figsize=(6.4, 5.2))
    ax = fig.add_subplot(xlabel=plain(xcol.label), ylabel=plain(ycol.label), title="Fairness vs privacy awareness")
    colors = _base_colors(board)
    for row in rows:
        _draw_point(ax, row, x_key, y_key, colors[row.base_model])
        _draw_arrow(ax, board, row, x_key, y_key, rows)
    legend = _fp_legend(ax, rows, colors)
    FigureCanvasAgg(fig)
    fig.tight_layout()  # before the labels are placed: they are placed in screen space
    obstacles = _marker_boxes(ax, rows, x_key, y_key) + [legend.get_window_extent(fig.canvas.get_renderer())]
    _label_variants(ax, [r for r in rows if not r.is_base], x_key, y_key, obstacles)
    return fig


def _draw_point(ax, row: Row, x_key: str, y_key: str, color: str) -> None:
    """One row: a star for a base row, a dot for a variant, with CI error bars when present."""
    vx, vy = row.values[x_key], row.values[y_key]
    style = dict(marker="*", markersize=15, markeredgecolor="black") if row.is_base else dict(marker="o", markersize=7)
    ax.errorbar(
        [vx.value], [vy.value], xerr=[[e] for e in _err(vx)], yerr=[[e] for e in _err(vy)], color=color,
        ecolor=color, elinewidth=0.8, capsize=2, alpha=0.9, linestyle="none", gid=f"point:{row.variant}", **style,
    )


def _draw_arrow(ax, board: Leaderboard, row: Row, x_key: str, y_key: str, drawn: list[Row]) -> None:
    """An arrow from the row's base to the (variant) row, labelled by the variant; nothing for base rows."""
    base = board.base_of(row)
    if row.is_base or base is None or not any(r is base for r in drawn):
        return
    head = (row.values[x_key].value, row.values[y_key].value)
    tail = (base.values[x_key].value, base.values[y_key].value)
    arrow = dict(arrowstyle="-|>", color="0.35", lw=1.0, shrinkA=7, shrinkB=5)
    ax.annotate("", xy=head, xytext=tail, arrowprops=arrow, gid=f"arrow:{row.variant}")


def _label_variants(ax, rows: list[Row], x_key: str, y_key: str, obstacles: list[Bbox]) -> None:
    """Name each variant next to its dot; variants whose names would overlap share one label, a name per line, put
    in the first corner around them where it covers no dot, legend or earlier label (else where it covers least)."""
    heads = [(_number(r, x_key), _number(r, y_key)) for r in rows]
    for members in label_clusters(heads, ax.get_xlim(), ax.get_ylim()):
        text = "\n".join(plain(rows[i].variant) for i in members)
        obstacles.append(_place_label(ax, text, [heads[i] for i in members], obstacles))


def _place_label(ax, text: str, points: list[tuple[float, float]], obstacles: list[Bbox]) -> Bbox:
    """Draw ``text`` at the best corner of ``points`` (see :func:`_label_variants`); returns its box on screen."""
    renderer = ax.figure.canvas.get_renderer()
    label = ax.annotate(text, xy=points[0], xytext=LABEL_SPOTS[0], textcoords="offset points", **LABEL_STYLE)
    costs = []
    for spot in LABEL_SPOTS:
        box = _move_label(label, spot, points).get_window_extent(renderer)
        costs.append(sum(_area(Bbox.intersection(box, o)) for o in obstacles)
                     + _area(box) - _area(Bbox.intersection(box, ax.bbox)))  # covered + outside the axes
        if costs[-1] == 0:
            break
    return _move_label(label, LABEL_SPOTS[costs.index(min(costs))], points).get_window_extent(renderer)


def _move_label(label, spot: tuple[int, int], points: list[tuple[float, float]]):
    """Put ``label`` at offset ``spot`` (points) from the matching corner of ``points``' bounding box."""
    dx, dy = spot
    label.xy = ((max if dx > 0 else min)(p[0] for p in points), (max if dy > 0 else min)(p[1] for p in points))
    label.xyann = spot
    label.set_horizontalalignment("left" if dx > 0 else "right")
    label.set_verticalalignment("bottom" if dy > 0 else "top")
    return label


def _area(box: Bbox | None) -> float:
    return 0.0 if box is None else box.width * box.height


def _marker_boxes(ax, rows: list[Row], x_key: str, y_key: str) -> list[Bbox]:
    """Screen boxes around the rows' markers (stars are bigger than dots), for label placement to avoid."""
    boxes = []
    for row in rows:
        x, y = ax.transData.transform((_number(row, x_key), _number(row, y_key)))
        r = 9 if row.is_base else 5
        boxes.append(Bbox([[x - r, y - r], [x + r, y + r]]))
    return boxes


def label_clusters(points: list[tuple[float, float]], xlim, ylim, reach=(0.15, 0.04)) -> list[list[int]]:
    """Indices of ``points`` grouped so that no two groups' labels collide: points closer than ``reach`` (a label's
    width and a line's height, as fractions of the axes) in both directions are chained into one group (single
    linkage). Groups and their members keep the order of ``points``."""
    if len(points) < 2:
        return [[i] for i in range(len(points))]
    scaled = [((x - xlim[0]) / (xlim[1] - xlim[0]) / reach[0], (y - ylim[0]) / (ylim[1] - ylim[0]) / reach[1])
              for x, y in points]
    ids = fcluster(linkage(scaled, method="single", metric="chebyshev"), t=1.0, criterion="distance")
    groups = {label: [i for i in range(len(points)) if ids[i] == label] for label in dict.fromkeys(ids)}
    return list(groups.values())


def _fp_legend(ax, rows: list[Row], colors: dict[str, str]):
    """Legend: one colour per base model (star = the base row), a dot for variants; and a light grid."""
    ax.grid(alpha=0.3)
    bases = dict.fromkeys(r.base_model for r in rows)
    handles = [Line2D([], [], marker="*", markersize=12, markeredgecolor="black", color=colors[b], linestyle="none",
                      label=plain(b)) for b in bases]
    handles.append(Line2D([], [], marker="o", color="0.4", linestyle="none", label="variant (arrow from its base)"))
    return ax.legend(handles=handles, fontsize=7, loc="best")


# --- sweeps ---------------------------------------------------------------------------------------------------------
def sweep_groups(board: Leaderboard, min_points: int = 2) -> dict[SweepKey, list[Row]]:
    """Rows with ``row.sweep`` grouped by (base model, intervention, swept key), each sorted by the swept value;
    groups with fewer than ``min_points`` distinct values are left out."""
    groups: dict[SweepKey, list[Row]] = {}
    for row in board.rows:
        if row.sweep is not None:
            groups.setdefault((row.base_model, row.intervention or "base", row.sweep[0]), []).append(row)
    return {k: sorted(rs, key=lambda r: r.sweep[1]) for k, rs in groups.items()
            if len({r.sweep[1] for r in rs}) >= min_points}


def sweeps(board: Leaderboard, column_keys: Sequence[str]) -> list[tuple[str, bytes]]:
    """PNGs of the trade-off curves, one per sweep group with 2+ points: ``[(name, png), ...]``."""
    figures = sweep_figures(board, column_keys)
    return [(name, to_png(fig)) for name, fig in figures]


def sweep_figures(board: Leaderboard, column_keys: Sequence[str]) -> list[tuple[str, Figure]]:
    """The figures of :func:`sweeps`; a group none of whose rows has a value in the columns is skipped."""
    cols = _check(board, column_keys)
    out = []
    for key, rows in sweep_groups(board).items():
        drawn = [c for c in cols if any(_number(r, c.key) is not None for r in rows)]
        if drawn:
            out.append((slug("sweep-" + "-".join(key)), sweep_figure(board, key, rows, drawn)))
    return out


def sweep_figure(board: Leaderboard, key: SweepKey, rows: list[Row], cols: list[Column]) -> Figure:
    """One panel per column: the column's value along the swept key, the base value as a dashed line."""
    ncols = min(len(cols), 3)
    nrows = math.ceil(len(cols) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 3.0 * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, col in zip(axes, cols):
        _sweep_panel(ax, board, rows, col)
    for ax in axes[len(cols):]:
        ax.set_visible(False)
    base_model, intervention, swept = key
    fig.suptitle(plain(f"{intervention}: sweep of {swept} on {base_model}"), fontsize=10)
    fig.tight_layout()
    return fig


def _sweep_panel(ax, board: Leaderboard, rows: list[Row], col: Column) -> None:
    """One column along the sweep (log x when the swept values span more than a decade)."""
    pts = [(r.sweep[1], r.values[col.key]) for r in rows if _number(r, col.key) is not None]
    errs = [[_err(v)[0] for _, v in pts], [_err(v)[1] for _, v in pts]]
    ax.errorbar([x for x, _ in pts], [v.value for _, v in pts], yerr=errs, marker="o", capsize=2, gid=f"line:{col.key}")
    base = board.base_of(rows[0])
    if base is not None and _number(base, col.key) is not None:
        ax.axhline(base.values[col.key].value, color="0.4", linestyle="--", lw=1, label="base", gid=f"base:{col.key}")
        ax.legend(fontsize=7)
    if _log_scale([r.sweep[1] for r in rows]):
        ax.set_xscale("log")
    ax.set(xlabel=plain(rows[0].sweep[0]), title=plain(col.label))
    ax.grid(alpha=0.3)


def _log_scale(values: Sequence[float]) -> bool:
    """True when all values are positive and span more than one decade."""
    return min(values) > 0 and max(values) / min(values) > 10


# --- capability cost ------------------------------------------------------------------------------------------------
def capability_cost(board: Leaderboard, column_keys: Sequence[str]) -> bytes:
    """PNG: each variant's delta vs its base per capability column; hatched and faded when not significant."""
    return to_png(capability_cost_figure(board, column_keys))


def capability_cost_figure(board: Leaderboard, column_keys: Sequence[str]) -> Figure:
    """The figure of :func:`capability_cost`: one panel per column with a delta, one bar per variant."""
    variants = [r for r in board.rows if not r.is_base]
    cols = [c for c in _check(board, column_keys) if any(_delta(r, c.key) is not None for r in variants)]
    if not cols:
        raise ValueError(f"no variant row has a delta for {', '.join(map(repr, column_keys))}: nothing to plot")
    fig = Figure(figsize=(4.2 * len(cols), 1.2 + 0.35 * len(variants)))
    axes = fig.subplots(1, len(cols), squeeze=False).ravel()
    multi = len({r.base_model for r in board.rows}) > 1
    for ax, col in zip(axes, cols):
        _cost_panel(ax, variants, col, multi)
    fig.legend(handles=_cost_legend(board.alpha), loc="lower center", ncol=3, fontsize=7)
    fig.suptitle("Capability cost: variant - base", fontsize=10)
    FigureCanvasAgg(fig)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    for ax in axes[:len(cols)]:
        _fit_texts(ax)
    return fig


def _fit_texts(ax, pad: float = 10.0, rounds: int = 5) -> None:
    """Widen the x-limits until every text drawn in ``ax`` (the value labels at the bar ends) lies inside it."""
    renderer = ax.figure.canvas.get_renderer()
    for _ in range(rounds):
        frame, boxes = ax.get_window_extent(renderer), [t.get_window_extent(renderer) for t in ax.texts]
        left = max(0.0, frame.x0 + pad - min((b.x0 for b in boxes), default=frame.x0))
        right = max(0.0, max((b.x1 for b in boxes), default=frame.x1) + pad - frame.x1)
        if left < 0.5 and right < 0.5:
            return
        lo, hi = ax.get_xlim()
        per_pixel = (hi - lo) / frame.width
        ax.set_xlim(lo - left * per_pixel, hi + right * per_pixel)


def _delta(row: Row, key: str) -> float | None:
    """The row's finite delta vs its base in column ``key``, or None."""
    v = row.values.get(key)
    return v.delta if v is not None and v.delta is not None and math.isfinite(v.delta) else None


def _cost_panel(ax, variants: list[Row], col: Column, multi: bool) -> None:
    """Horizontal bars of the deltas, top to bottom in row order; a variant without a delta gets no bar."""
    for i, row in enumerate(variants):
        d = _delta(row, col.key)
        if d is not None:
            _cost_bar(ax, i, d, row.values[col.key], col)
    names = [f"{r.base_model} / {r.variant}" if multi else r.variant for r in variants]
    ax.set_yticks(range(len(variants)), [plain(n) for n in names], fontsize=7)
    ax.set_ylim(len(variants) - 0.5, -0.5)
    ax.axvline(0, color="black", lw=0.8)
    ax.margins(x=0.3)  # room for the value labels at the bar ends
    arrow = {True: " (higher is better)", False: " (lower is better)", None: ""}[col.higher_is_better]
    ax.set_title(plain(col.label + arrow), fontsize=9)
    ax.grid(axis="x", alpha=0.3)


def _cost_bar(ax, i: int, delta: float, v: Value, col: Column) -> None:
    """One bar: green when better, red when worse (grey without a direction); faded + hatched unless significant."""
    better = None if col.higher_is_better is None else (delta > 0) == col.higher_is_better
    color = {True: "#2ca02c", False: "#d62728", None: "#7f7f7f"}[better if delta != 0 else None]
    hatch = {True: None, False: "///", None: "..."}[v.significant]
    alpha = 1.0 if v.significant else 0.4
    ax.barh(i, delta, color=color, alpha=alpha, hatch=hatch, edgecolor="black", lw=0.6, gid=f"bar:{i}:{col.key}")
    mark = {True: "", False: " n.s.", None: ""}[v.significant]
    ax.annotate(f"{delta:+.{col.digits}f}{mark}", xy=(delta, i), xytext=(3 if delta >= 0 else -3, 0),
                textcoords="offset points", ha="left" if delta >= 0 else "right", va="center", fontsize=7)


def _cost_legend(alpha: float) -> list[Patch]:
    """What the bar styles mean."""
    return [
        Patch(facecolor="0.5", edgecolor="black", label=f"significant (BH q < {alpha:g})"),
        Patch(facecolor="0.5", edgecolor="black", alpha=0.4, hatch="///", label="not significant (n.s.)"),
        Patch(facecolor="0.5", edgecolor="black", alpha=0.4, hatch="...", label="no paired test"),
    ]

"""Text renderings of a leaderboard: Markdown (for a README), CSV (every number) and LaTeX (booktabs).

A cell reads ``value [ci_low, ci_high]``, and on a variant row ``Δ+0.023`` after it: ``*`` marks a difference that
is significant after Benjamini-Hochberg within the row, ``n.s.`` one that is not, nothing when no paired test ran.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from fairpriv.report.model import Column, Leaderboard, Row, Value

LEGEND = ("Cells: value [95% CI]; on variant rows Δ is the difference from the same base model's plain row, "
          "`*` significant and `n.s.` not significant (paired test on the same items: McNemar for per-item outcomes, "
          "paired permutation for next-token divergences, paired bootstrap otherwise; Benjamini-Hochberg at q < {alpha} across the metrics of a row).")


def fmt(x: float | None, digits: int) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def mark(value: Value) -> str:
    return "" if value.significant is None else ("*" if value.significant else " n.s.")


def cell_text(value: Value | None, col: Column, with_ci: bool = True) -> str:
    if value is None:
        return "–"
    text = fmt(value.value, col.digits)
    if with_ci and value.ci_low is not None and value.ci_high is not None:
        text += f" [{fmt(value.ci_low, col.digits)}, {fmt(value.ci_high, col.digits)}]"
    if value.delta is not None:
        text += f" Δ{value.delta:+.{col.digits}f}{mark(value)}"
    return text


def row_label(row: Row) -> str:
    return row.variant + (f" (limit {row.limit:g})" if row.limit is not None else "")


def info_keys(board: Leaderboard) -> list[tuple[str, str]]:
    return board.info_columns()


def pick(board: Leaderboard, keys: Sequence[str] | None) -> list[Column]:
    return board.columns if keys is None else [c for c in board.columns if c.key in keys]


def markdown(board: Leaderboard, keys: Sequence[str] | None = None, with_ci: bool = True) -> str:
    cols, infos = pick(board, keys), info_keys(board)
    header = ["model", "variant"] + [c.label for c in cols] + [h for _, h in infos]
    lines = [_md_line(header), _md_line(["---"] * len(header))]
    for row in board.rows:
        cells = [row.base_model, row_label(row)] + [cell_text(row.values.get(c.key), c, with_ci) for c in cols]
        lines.append(_md_line(cells + [row.info.get(k, "") for k, _ in infos]))
    notes = [LEGEND.format(alpha=board.alpha)] + board.notes
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def _md_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


VALUE_FIELDS = ("value", "ci_low", "ci_high", "n", "delta", "p_value", "q_value", "significant", "test", "source")


def to_csv(board: Leaderboard) -> str:
    """Every number of every row, one line per row (columns ``<metric key>:<field>``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    infos = [k for k, _ in board.info_columns(every_known=True)]
    writer.writerow(["base_model", "variant", "intervention", "config", "limit", "sweep"]
                    + [f"{c.key}:{f}" for c in board.columns for f in VALUE_FIELDS] + infos)
    for row in board.rows:
        head = [row.base_model, row.variant, row.intervention or "", json.dumps(row.config, sort_keys=True),
                "" if row.limit is None else row.limit, "" if row.sweep is None else f"{row.sweep[0]}={row.sweep[1]}"]
        values = [_csv_field(row.values.get(c.key), f) for c in board.columns for f in VALUE_FIELDS]
        writer.writerow(head + values + [row.info.get(k, "") for k in infos])
    return buf.getvalue()


def _csv_field(value: Value | None, name: str):
    field = None if value is None else getattr(value, name)
    return "" if field is None else field


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "Δ": r"$\Delta$",
                 "ε": r"$\varepsilon$", "δ": r"$\delta$", "–": "--", "|": r"\textbar{}"}


def tex(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex(board: Leaderboard, keys: Sequence[str] | None = None) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``); significant deltas in bold."""
    cols = pick(board, keys)
    lines = [r"\begin{tabular}{ll" + "r" * len(cols) + "}", r"\toprule",
             " & ".join(["model", "variant"] + [tex(c.label) for c in cols]) + r" \\", r"\midrule"]
    for row in board.rows:
        cells = [tex(row.base_model), tex(row_label(row))] + [_tex_cell(row.values.get(c.key), c) for c in cols]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _tex_cell(value: Value | None, col: Column) -> str:
    if value is None:
        return "--"
    text = fmt(value.value, col.digits)
    if value.delta is not None:
        delta = f"{value.delta:+.{col.digits}f}"
        text += " (" + (rf"\textbf{{{delta}}}" if value.significant else delta + ("" if value.significant is None
                                                                                   else r"\textsuperscript{n.s.}")) + ")"
    return text

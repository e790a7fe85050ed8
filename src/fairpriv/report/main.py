"""``fairpriv report RESULTS_DIR --out DIR``: the leaderboard in Markdown, CSV, LaTeX, HTML and PNG plots.

Reads only lm-eval result and sample files (no torch, no lm_eval). Outputs, all written atomically:
``leaderboard.md`` (the compact columns, for a README), ``leaderboard-full.md``, ``leaderboard.csv`` (every number),
``leaderboard.tex``, ``index.html`` (sortable, plots inline, numbers linking to their result files) and
``plots/*.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fairpriv.atomic import write_text as write_atomic
from fairpriv.report import plots, text
from fairpriv.report.build import build
from fairpriv.report.collect import find_runs
from fairpriv.report.columns import COMPACT
from fairpriv.report.html import render_html
from fairpriv.report.model import Leaderboard

AWARENESS = (("fairness_awareness_mc/awareness", "privacy_awareness_mc/awareness"),
             ("fairness_awareness/awareness", "privacy_awareness/awareness"))
SWEEP_COLUMNS = ("fairness_awareness_mc/awareness", "privacy_awareness_mc/awareness", "fairness_awareness/awareness",
                 "privacy_awareness/awareness", "gender_bias_bold/toxicity_bias", "gender_bias_divergence/hellinger_bias",
                 "race_bias_bold/toxicity_maxmin_gap", "religion_bias_bold/toxicity_maxmin_gap",
                 "mmlu_offline_mini/acc", "bold_wiki_perplexity/word_perplexity")  # awareness, bias, capability


@dataclass
class ReportResult:
    board: Leaderboard
    written: list[Path]


def make_report(root: Path, out: Path, include_limited: bool = False, alpha: float = 0.05, seed: int = 0,
                title: str = "fairpriv leaderboard") -> ReportResult:
    board = build(find_runs(root), out, include_limited=include_limited, alpha=alpha, seed=seed)
    figures = draw(board)
    out.mkdir(parents=True, exist_ok=True)
    written = plots.write_pngs(figures, out / "plots")
    for name, content in documents(board, figures, title).items():
        write_atomic(out / name, content)
        written.append(out / name)
    return ReportResult(board, written)


def documents(board: Leaderboard, figures: dict[str, bytes], title: str) -> dict[str, str]:
    compact = [k for k in COMPACT if any(c.key == k for c in board.columns)]
    return {"leaderboard.md": text.markdown(board, compact or None, with_ci=False),
            "leaderboard-full.md": text.markdown(board), "leaderboard.csv": text.to_csv(board),
            "leaderboard.tex": text.latex(board, compact or None), "index.html": render_html(board, figures, title)}


def draw(board: Leaderboard) -> dict[str, bytes]:
    """The plots the board has data for: fairness vs privacy, sweeps, capability cost."""
    keys = {c.key for c in board.columns}
    figures: dict[str, bytes] = {}
    for x, y in AWARENESS:
        if {x, y} <= keys and len(board.rows) > 1:
            figures[f"fairness-privacy{'' if x.endswith('_mc/awareness') else '-judged'}"] = \
                plots.fairness_privacy(board, x, y)
    figures.update(plots.sweeps(board, [k for k in SWEEP_COLUMNS if k in keys]) if keys & set(SWEEP_COLUMNS) else [])
    capability = [c.key for c in board.columns if c.group == "capability"]
    if capability and any(v.delta is not None for r in board.rows for v in r.values.values()):
        figures["capability-cost"] = plots.capability_cost(board, capability)
    return figures

"""``fairpriv report`` on the checked-in sample results (tests/data/report, written by make_fixture.py): no model.

Expected numbers by hand: dean flips 8 fairness items unsafe->safe and 1 safe->unsafe (exact McNemar p =
2 * P(X <= 1 | n=9, 1/2) = 20/512), 2 privacy items up and 1 down (p = 1), and lowers every document's
log-likelihood by 10 over 20 words (perplexity exp(5) -> exp(5.5), a constant shift: bootstrap p at its floor).
Benjamini-Hochberg over the row's three p-values then lifts fairness to q = 20/512 * 3/2 = 0.0586: not significant.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from fairpriv.report import text
from fairpriv.report.build import build
from fairpriv.report.collect import ReportError, find_runs, load_run, parse_arg_string
from fairpriv.report.main import make_report

DATA = Path(__file__).resolve().parents[1] / "data" / "report"
RUNS = DATA / "runs"
MODEL = "fairpriv:smollm2-135m-instruct-q4_1"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    return build(find_runs(RUNS), tmp_path_factory.mktemp("out"))


def row(board, variant):
    return next(r for r in board.rows if r.variant == variant)


def test_rows_values_and_deltas(board):
    assert [r.variant for r in board.rows] == ["base", "dean p=0.001 q=0.001", "dp epsilon=8"]
    base, dean = row(board, "base"), row(board, "dean p=0.001 q=0.001")
    assert base.is_base and dean.intervention == "dean" and dean.config == {"p": 0.001, "q": 0.001}
    fair = dean.values["fairness_awareness_mc/awareness"]
    assert (fair.value, fair.ci_low, fair.ci_high, fair.n) == (0.85, 0.65, 1.0, 20)
    assert fair.delta == pytest.approx(0.85 - 0.5)
    ppl = dean.values["bold_wiki_perplexity/word_perplexity"]
    assert ppl.value == pytest.approx(math.exp(5.5)) and ppl.delta == pytest.approx(math.exp(5.5) - math.exp(5))
    assert base.values["privacy_awareness_mc/awareness"].delta is None


def test_paired_tests_and_benjamini_hochberg(board):
    dean = row(board, "dean p=0.001 q=0.001")
    fair, priv = dean.values["fairness_awareness_mc/awareness"], dean.values["privacy_awareness_mc/awareness"]
    ppl = dean.values["bold_wiki_perplexity/word_perplexity"]
    assert fair.test.startswith("mcnemar") and fair.p_value == pytest.approx(20 / 512)
    assert priv.p_value == pytest.approx(1.0) and priv.q_value == pytest.approx(1.0) and priv.significant is False
    assert ppl.test == "paired-bootstrap" and ppl.p_value < 0.01 and ppl.significant is True
    assert ppl.q_value == pytest.approx(3 * ppl.p_value)
    assert fair.q_value == pytest.approx(20 / 512 * 3 / 2) and fair.significant is False  # raw p < 0.05, q is not


def test_identical_variant_is_not_significant(board):
    dp = row(board, "dp epsilon=8")
    fair = dp.values["fairness_awareness_mc/awareness"]
    assert fair.delta == 0 and fair.p_value == 1.0 and fair.significant is False


def test_info_columns_come_from_the_facts(board):
    dean, dp = row(board, "dean p=0.001 q=0.001"), row(board, "dp epsilon=8")
    assert dean.info["zeroed"] == "13,154" and dean.info["data"] == "fairness: builtin, privacy: builtin"
    assert dp.info == {"epsilon": "8", "delta": "0.0022", "accountant": "rdp", "data": "builtin (privacy, n=256)"}


def test_limited_runs_are_left_out_unless_asked(tmp_path):
    plain = build(find_runs(RUNS), tmp_path)
    assert all(r.limit is None for r in plain.rows) and any("--limit" in n for n in plain.notes)
    both = build(find_runs(RUNS), tmp_path, include_limited=True)
    limited = [r for r in both.rows if r.limit == 5]
    assert len(limited) == 1 and limited[0].is_base and limited[0].values["fairness_awareness_mc/awareness"].n == 5
    assert "(limit 5)" in text.markdown(both)


def test_mixed_task_versions_are_refused(tmp_path):
    with pytest.raises(ReportError, match=r"mix versions of task fairness_awareness_mc \(version 1 in .*version 2 in"):
        build(find_runs(DATA), tmp_path)


def test_bad_folders_and_files_name_the_problem(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        find_runs(tmp_path / "missing")
    with pytest.raises(ReportError, match="no lm-eval results_"):
        find_runs(tmp_path)
    bad = tmp_path / "results_x.json"
    bad.write_text("{not json")
    with pytest.raises(ReportError, match="not a readable results file"):
        load_run(bad)
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ReportError, match="not an lm-eval results file"):
        load_run(bad)
    (tmp_path / "cell.partial").mkdir()
    (tmp_path / "cell.partial" / "results_y.json").write_text("{")
    bad.unlink()
    with pytest.raises(ReportError, match="no lm-eval results_"):
        find_runs(tmp_path)  # unfinished `fairpriv run` cells are never read
    assert parse_arg_string("pretrained=a,p=1e-3") == {"pretrained": "a", "p": "1e-3"}


def test_markdown_csv_latex(board):
    md = text.markdown(board)
    assert "| fairpriv:smollm2-135m-instruct-q4_1 | dean p=0.001 q=0.001 | 0.850 [0.650, 1.000] Δ+0.350 n.s. |" in md
    assert f"{math.exp(5.5):.1f} Δ+{math.exp(5.5) - math.exp(5):.1f}* |" in md  # perplexity: significant
    rows = list(csv.DictReader(io.StringIO(text.to_csv(board))))
    assert [r["variant"] for r in rows] == ["base", "dean p=0.001 q=0.001", "dp epsilon=8"]
    assert float(rows[1]["fairness_awareness_mc/awareness:p_value"]) == pytest.approx(20 / 512)
    assert rows[1]["fairness_awareness_mc/awareness:significant"] == "False"
    tex = text.latex(board)
    assert r"\toprule" in tex and "dean p=0.001 q=0.001" in tex and r"\textsuperscript{n.s.}" in tex
    assert tex.count(r"\\") == len(board.rows) + 1


def test_make_report_writes_every_output(tmp_path):
    result = make_report(RUNS, tmp_path / "lb")
    names = sorted(p.relative_to(tmp_path / "lb").as_posix() for p in result.written)
    assert names == ["index.html", "leaderboard-full.md", "leaderboard.csv", "leaderboard.md", "leaderboard.tex",
                     "plots/capability-cost.png", "plots/fairness-privacy.png"]
    import re
    from urllib.parse import unquote

    links = re.findall(r'href="([^"#]+\.json)"', (tmp_path / "lb" / "index.html").read_text())
    assert len(links) == 7 and all((tmp_path / "lb" / unquote(link)).resolve().is_file() for link in links)
    assert (tmp_path / "lb" / "plots" / "fairness-privacy.png").read_bytes().startswith(b"\x89PNG")


def test_cli_report_imports_neither_torch_nor_lm_eval(tmp_path):
    code = ("import sys; from fairpriv.cli import main; rc = main(['report', sys.argv[1], '--out', sys.argv[2]]); "
            "assert rc == 0, rc; bad = [m for m in ('torch', 'lm_eval', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code, str(RUNS), str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "dean p=0.001 q=0.001" in done.stdout and (tmp_path / "out" / "index.html").is_file()


def test_gzipped_samples_give_the_same_tests(tmp_path):
    import gzip
    import shutil

    copy = tmp_path / "runs"
    shutil.copytree(RUNS, copy)
    for path in copy.rglob("samples_*.jsonl"):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    dean = row(build(find_runs(copy), tmp_path), "dean p=0.001 q=0.001")
    assert dean.values["fairness_awareness_mc/awareness"].p_value == pytest.approx(20 / 512)


def test_stderr_intervals_stay_inside_zero_one_and_sanity_is_paired(tmp_path):
    from fairpriv.report.build import interval
    from fairpriv.report.collect import Run
    from fairpriv.report.columns import CATALOG
    from fairpriv.report.paired import compare

    sanity = next(s for s in CATALOG if s.task == "fairpriv_sanity")
    run = Run(tmp_path / "results_x.json", {"config": {}, "results": {"fairpriv_sanity": {
        "acc,none": 0.95, "acc_stderr,none": 0.05}}})
    low, high = interval(run, sanity, 0.95)
    assert low == pytest.approx(0.95 - 1.959963984540054 * 0.05) and high == 1.0
    records = [{"doc_id": i, "doc_hash": str(i), "acc": 1.0} for i in range(4)]
    flipped = [{**r, "acc": 0.0} for r in records]
    assert compare("fairpriv_sanity", "acc", records, flipped).p_value == pytest.approx(0.125)  # b=4, c=0


def test_metrics_under_a_named_filter_are_found(tmp_path):
    from fairpriv.report.collect import Run

    run = Run(tmp_path / "results_x.json", {"config": {}, "results": {"fairness_awareness": {
        "awareness,judged": 0.69, "awareness_ci_low,judged": 0.64}}})
    assert run.metric("fairness_awareness", "awareness") == 0.69
    assert run.metric("fairness_awareness", "awareness_dnf") is None

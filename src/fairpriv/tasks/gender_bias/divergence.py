"""``gender_bias_divergence``: a task whose requests ask for next-token divergences of counterfactual prompt pairs.

The task YAML names this class (``class: !function ...DivergenceTask``); everything else (data, metrics,
``process_results``) stays in the YAML. lm-eval validates ``output_type`` against its four built-in types, so the
YAML says ``loglikelihood`` (the closest kind: no generation) and the class switches ``OUTPUT_TYPE`` to
:data:`fairpriv.tasks.requests.REQUEST_TYPE` once lm-eval's checks are done. :meth:`construct_requests` then
emits one instance per pair with the arguments ``(male context, female context, {"epsilon": eps})``; lm-eval's
evaluator calls the model method of that name (see :mod:`fairpriv.models.divergence` for the design).

The male context is lm-eval's own context for the document (``doc_to_text`` = the male prompt, with a system
instruction, few-shot examples or a chat template applied as configured); the female context is the same string
with the male prompt's last occurrence replaced by the female prompt, so both sides get identical wrapping.
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.task import ConfigurableTask

from fairpriv.tasks.requests import REQUEST_TYPE, install_fallback

install_fallback()


def counterpart(ctx: str, prompt_a: str, prompt_b: str) -> str:
    """``ctx`` with the last occurrence of ``prompt_a`` replaced by ``prompt_b``.

    >>> counterpart("<user>The man worked as</user>", "The man worked as", "The woman worked as")
    '<user>The woman worked as</user>'
    """
    head, found, tail = ctx.rpartition(prompt_a)
    if not found:
        raise ValueError(f"the context built for {prompt_a!r} does not contain it (a chat template changed the "
                         f"text?), so its counterfactual cannot be built: {ctx[-200:]!r}")
    return head + prompt_b + tail


class DivergenceTask(ConfigurableTask):
    """A YAML-configured task that sends ``fairpriv_next_token_divergence`` requests, one per prompt pair."""

    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}  # TaskConfig has no "class" field
        super().__init__(config=config, **kwargs)
        self.OUTPUT_TYPE = REQUEST_TYPE

    def construct_requests(self, doc: dict[str, Any], ctx: str, **kwargs: Any) -> Instance:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        male, female = self.doc_to_text(doc), doc["female_prompt"]
        arguments = (ctx, counterpart(ctx, male, female), {"epsilon": float(doc.get("epsilon") or 0.0)})
        return Instance(request_type=REQUEST_TYPE, doc=doc, arguments=arguments, idx=0, **kwargs)

"""The request type of fairpriv's next-token divergence tasks (``gender_bias_divergence``, the social-bias
divergence tasks) and the clear error of a model that cannot answer it.

lm-eval's evaluator calls ``getattr(lm, request_type)(instances)`` for every request type it meets, so a task may
emit a type of its own; :mod:`fairpriv.models.divergence` gives the Hugging Face and vLLM models the method of
this name, and :func:`install_fallback` gives every other model one that fails with a message naming the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fairpriv.lm_eval_compat import add_fallback_request_method

REQUEST_TYPE = "fairpriv_next_token_divergence"


def task_names(requests: Sequence[Any]) -> str:
    names = sorted({str(getattr(r, "task_name", None) or "gender_bias_divergence") for r in requests})
    return ", ".join(names) or "gender_bias_divergence"


def unsupported(self: Any, requests: Sequence[Any]) -> list[dict]:
    """The request method of every other backend: a clear error instead of an AttributeError."""
    raise NotImplementedError(
        f"task {task_names(requests)} compares full next-token distributions ({REQUEST_TYPE} requests), which only "
        f"fairpriv's Hugging Face and vLLM models provide: use --model hf or a fairpriv <name>-hf or <name>-vllm "
        f"model. "
        f"{type(self).__name__} does not implement them (if it is an HFLM, fairpriv's lm-eval hook did not run: "
        f"use `fairpriv eval` or `import fairpriv` first)."
    )


def install_fallback() -> None:
    """Give lm-eval's base ``LM`` the clear-error method, unless it already has one. The task modules call it when
    they load: the error is meant for a run where fairpriv's plugin did not run, so it cannot wait for the plugin."""
    add_fallback_request_method(REQUEST_TYPE, unsupported)

"""Scorers: small classes with a ``name`` that is recorded in results (judges, classifiers).

Awareness judges (DEAN / SPIN, arXiv 2410.16672) share one interface, ``judge_batch(questions, responses, kinds)``
returning :class:`fairpriv.scorers.rule_judge.Verdict` objects, and are chosen by name at run time:

* ``rule`` (offline default): :mod:`fairpriv.scorers.rule_judge`;
* ``md-judge``: :mod:`fairpriv.scorers.md_judge`, the paper's MD-Judge-v0.1 prompt and parser on any causal LM.

A judge that holds a model is loaded for one task's generations and freed right after (:func:`loaded_judge`), so
it never sits next to the following models of a run; nothing here caches a judge.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

from fairpriv.names import did_you_mean

JUDGES = {
    "rule": "fairpriv.scorers.rule_judge:RuleJudge",
    "md-judge": "fairpriv.scorers.md_judge:MDJudge",
}


def check_judge_name(name: str) -> str:
    """Return ``name`` if it is a known judge, else raise a message that names the choices."""
    if name in JUDGES:
        return name
    hint = did_you_mean(name, JUDGES)
    raise ValueError(f"unknown judge {name!r}; choose one of {sorted(JUDGES)} (metadata key 'judge').{hint}")


def get_judge(name: str, **options: Any):
    """A new judge instance (not cached: the caller owns it and frees it, see :func:`loaded_judge`)."""
    module, attr = JUDGES[check_judge_name(name)].split(":")
    return getattr(importlib.import_module(module), attr)(**options)


@contextlib.contextmanager
def loaded_judge(name: str, **options: Any) -> Iterator[Any]:
    """The judge for the duration of a ``with`` block; a judge with a ``close()`` (a model) is closed after it."""
    judge = get_judge(name, **options)
    try:
        yield judge
    finally:
        if hasattr(judge, "close"):
            judge.close()

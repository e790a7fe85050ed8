"""Choosing things by name: the "did you mean" hint every unknown-name error in fairpriv ends with."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: object, known: Iterable[str], n: int = 1) -> str:
    """`` Did you mean 'x'?`` (or ``'x', 'y'``) for the closest known names; empty when nothing is close."""
    close = difflib.get_close_matches(str(name), list(known), n=n, cutoff=0.6)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


FAIRPRIV_TASKS = "fairness_privacy, gender_bias, social_bias, general_capability and fairpriv_sanity"


def unknown_task_message(task: str, known: Iterable[str]) -> str:
    """The line for a task name that no task index knows, with the closest known names."""
    return (f"unknown task {task!r}.{did_you_mean(task, known, n=3)} `lm_eval ls tasks` lists lm-eval's tasks; "
            f"fairpriv adds {FAIRPRIV_TASKS}")

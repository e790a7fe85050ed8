"""The leaderboard as plain data: what ``fairpriv report`` builds from result files and every renderer reads.

A :class:`Leaderboard` has columns (one per reported number) and rows (one per base model x variant x config).
Each row holds one :class:`Value` per column it has a number for. Renderers (Markdown, CSV, LaTeX, HTML, plots)
read only this model, never result files, so they are tested on hand-built leaderboards.

Nothing here imports torch or lm_eval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Column:
    """One reported number: ``key`` is unique (e.g. ``privacy_awareness_mc/awareness``)."""

    key: str
    label: str  # short header, e.g. "privacy aw. (mc)"
    group: str  # "fairness" | "privacy" | "gender" | "race" | "religion" | "capability"
    higher_is_better: bool | None  # None: the ideal is a balance (a gap of 0), no direction
    digits: int = 3
    task: str = ""  # lm-eval task the number comes from
    metric: str = ""  # lm-eval metric name (without ",filter")
    version: str = ""  # task version (the report refuses to mix versions in one column)


@dataclass
class Value:
    """One number of one row, with its uncertainty and its comparison with the row's base model."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    source: str | None = None  # path of the result file, relative to the report's output folder
    n: int | None = None  # items behind the number
    delta: float | None = None  # value - base row's value (None on base rows)
    p_value: float | None = None  # raw p of the paired test against the base row
    q_value: float | None = None  # Benjamini-Hochberg adjusted within the row
    significant: bool | None = None  # q < alpha; None when no paired test ran
    test: str | None = None  # "mcnemar" | "paired-bootstrap" | ...
    judge: str | None = None  # the judge behind a judged awareness number (e.g. "rule", "md-judge")


@dataclass
class Row:
    """One evaluated model: a base model's plain row, or one intervention variant of it."""

    base_model: str  # e.g. "fairpriv:smollm2-135m-instruct-q4_1"
    variant: str  # display name, e.g. "base", "dean p=0.001 q=0.001", "dp epsilon=8"
    intervention: str | None  # None on a base row
    config: dict[str, Any] = field(default_factory=dict)  # the non-default config keys that name the variant
    values: dict[str, Value] = field(default_factory=dict)  # column key -> value
    info: dict[str, str] = field(default_factory=dict)  # text columns: the intervention's summary, judge
    limit: float | None = None  # lm-eval --limit of the runs behind the row (None: full tasks)
    sweep: tuple[str, float] | None = None  # (config key, value) when the row is a point of a sweep

    @property
    def is_base(self) -> bool:
        return self.intervention is None


# Text columns of Row.info, in display order, with their headers; any other key of an intervention's summary (a
# plugin's) follows them, headed by the key (Leaderboard.info_columns).
INFO_COLUMNS: tuple[tuple[str, str], ...] = (
    ("epsilon", "DP ε"),
    ("delta", "DP δ"),
    ("accountant", "accountant"),
    ("zeroed", "DEAN zeroed"),
    ("data", "data"),
    ("judge", "judge"),
)


@dataclass
class Leaderboard:
    columns: list[Column]
    rows: list[Row]
    alpha: float = 0.05  # BH false discovery rate within a row
    notes: list[str] = field(default_factory=list)  # caveats printed under the tables

    def column(self, key: str) -> Column:
        for col in self.columns:
            if col.key == key:
                return col
        raise KeyError(f"no column {key!r}; columns: {', '.join(c.key for c in self.columns)}")

    def info_columns(self, every_known: bool = False) -> list[tuple[str, str]]:
        """(key, header) of the text columns: the known ones that some row fills (all of them with ``every_known``),
        then the other keys of rows' info in the order rows first show them, each headed by its key."""
        known = dict(INFO_COLUMNS)
        shown = [(k, h) for k, h in INFO_COLUMNS if every_known or any(r.info.get(k) for r in self.rows)]
        extra = dict.fromkeys(k for r in self.rows for k, v in r.info.items() if k not in known and v)
        return shown + [(k, k) for k in extra]

    def base_of(self, row: Row) -> Row | None:
        """The plain row of ``row``'s base model with the same --limit (None when that base was not evaluated)."""
        return next((r for r in self.rows if r.is_base and r.base_model == row.base_model and r.limit == row.limit),
                    None)

"""Type inference: each target's head type (inferred or forced) and each feature column's role."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdtypes

from advisor._text import shorten
from advisor.profiling.common import _error, _listing
from advisor.profiling.statistics import MAX_TRACKED_VALUES, _TargetStats
from advisor.task import MAX_HEADS, MAX_NAME_LENGTH

# Non-negative integer targets with at most this many distinct values are classes, above it counts.
MAX_INTEGER_CLASSES = 20
# A text target with more distinct values than this (or over 20 and over half its rows) is not classes; nor
# does a delimited label column hold more labels.
MAX_TEXT_CLASSES = 200
# A text target is read as label sets, unless forced, when its separator is in at least this share of values.
LABEL_SET_SHARE = 0.1
# One-hot levels per categorical feature column (the most frequent ones).
MAX_LEVELS = 20
# ID-like: distinct on (nearly) every row, or named like an ID (id, *_id, customerId) with more distinct
# values than a categorical would one-hot: a store_id with 12 stores is a category, an account_id a key.
ID_DISTINCT_SHARE = 0.99
# Integer IDs span a dense range (at most this many values per row); an integer measurement rarely does.
ID_RANGE_PER_ROW = 10
# Fewer non-missing values than this cannot show that a column is an ID.
MIN_ROWS_FOR_ID = 20
# Free text: more than half the values distinct, and values of several words, or long with two or more
# (a long single token such as a UUID or an e-mail address is an ID, not text).
TEXT_DISTINCT_SHARE = 0.5
TEXT_MEDIAN_LENGTH = 20
TEXT_MEDIAN_WORDS = 3
# A text feature column whose values are mostly numbers is numeric with junk cells ("?", "unknown").
NUMERIC_PARSE_SHARE = 0.9

# id, uuid, customer_id, id_customer, order.id; camelCase customerId / customerID (not "paid" or "valid").
_ID_NAME_LOWER = re.compile(r"^(id|uuid|guid)$|[_\s.-](id|uuid|guid)$|^id[_\s.-]")
_ID_NAME_CAMEL = re.compile(r"[a-z]I[dD]$")


# ----------------------------------------------------------------------------------------------------------
# Head types


@dataclass(frozen=True)
class _HeadPlan:
    """A head to build: its name, type and target columns (several for a multilabel head)."""

    name: str
    type: str
    columns: tuple[str, ...]
    separator: str | None = None  # a multilabel head read from one delimited label column: its separator


def _plan_heads(
    stats: dict[str, _TargetStats], task: str | None, notes: list[str], label_separator: str | None = None
) -> list[_HeadPlan]:
    """Decide each head's type (forced by ``task`` or inferred) and note the reason."""
    columns = list(stats)
    if len(columns) == 1:
        delimited = _delimited_plan(stats[columns[0]], task, label_separator, notes)
        if delimited is not None:
            return [delimited]
    elif label_separator is not None:
        raise _error(
            "label_separator",
            f"splits one label column into label sets, but {len(columns)} targets were given "
            f"({_listing(columns)}); name one target, or drop label_separator for several 0/1 columns",
        )
    if task == "multilabel" or (
        task is None and len(columns) > 1 and all(s.is_zero_one for s in stats.values())
    ):
        return [_multilabel_plan(stats, forced=task is not None, notes=notes)]
    if len(columns) > MAX_HEADS:
        raise _error(
            "target", f"{len(columns):,} targets that are not all 0/1 would make {len(columns):,} heads; at most "
            f"{MAX_HEADS} are allowed (several 0/1 targets make one multilabel head); for audio clips given as "
            "(inputs, targets) arrays pass sample_rate=",
        )  # fmt: skip
    plans = []
    for name, column_stats in stats.items():
        _require_two_values(column_stats)
        if task is None:
            head_type, reason = _infer_type(column_stats)
        else:
            head_type, reason = _check_forced_type(column_stats, task), f"task={task!r} was given"
        notes.append(f"Target {name!r}: {reason} -> {head_type}.")
        plans.append(_HeadPlan(name, head_type, (name,)))
    return plans


def _multilabel_plan(stats: dict[str, _TargetStats], *, forced: bool, notes: list[str]) -> _HeadPlan:
    columns = list(stats)
    if len(columns) < 2:
        raise _error(
            "task",
            f"column {columns[0]!r} holds numbers; a multilabel head needs two or more 0/1 target columns (pass "
            "a list as target=) or one text column of label sets such as 'cat|dog'",
        )
    not_binary = [name for name, column_stats in stats.items() if not column_stats.is_zero_one]
    if not_binary:
        raise _error("task", f"multilabel targets must hold only 0/1 values; not so: {_listing(not_binary)}")
    name = "+".join(columns)
    reason = "task='multilabel' was given" if forced else f"{len(columns)} targets, all 0/1"
    notes.append(f"Targets {_listing(columns)}: {reason} -> one multilabel head {name!r}.")
    return _HeadPlan(name, "multilabel", tuple(columns))


def _delimited_plan(
    stats: _TargetStats, task: str | None, separator: str | None, notes: list[str]
) -> _HeadPlan | None:
    """One text target read as label sets (see the rule in :mod:`advisor.profiling`), or None to read it as
    one value per row; a target that must be label sets but cannot be is refused."""
    forced = task == "multilabel" or separator is not None
    if task not in (None, "multilabel") or stats.label_sets is None:
        return None
    field_name = "target" if separator is None else "label_separator"
    if stats.all_numeric:
        if separator is not None:
            raise _error(
                field_name, f"column {stats.column!r} holds numbers, not label sets such as 'cat|dog'"
            )
        return None
    sniffed = separator is None
    if separator is None:
        # The separator held by the most values; max() keeps the first on a tie, in LABEL_SEPARATORS order.
        separator = max(stats.label_sets, key=lambda candidate: stats.label_sets[candidate].with_separator)
    counts = stats.label_sets[separator]
    share = counts.with_separator / stats.rows
    labels = counts.labels
    distinct = stats.distinct
    shown = f"over {MAX_TRACKED_VALUES:,}" if distinct is None else f"{distinct:,}"
    if not forced:
        reason = None
        if share < LABEL_SET_SHARE:
            reason = f"under {LABEL_SET_SHARE:.0%} of values hold it"
        elif labels is None or (distinct is not None and len(labels) >= distinct):
            parts = f"{len(labels):,}" if labels is not None else f"over {MAX_TRACKED_VALUES:,}"
            reason = f"{parts} distinct parts for {shown} distinct values, not fewer"
        if reason is not None:
            if counts.with_separator:
                notes.append(
                    f"Target {stats.column!r}: {share:.1%} of values hold {separator!r}, read as one class each "
                    f"({reason}); pass task='multilabel' (or label_separator={separator!r}) if they are "
                    "label sets."
                )
            return None
    where = f"column {stats.column!r} split on {separator!r}"
    if labels is None or len(labels) > MAX_TEXT_CLASSES:
        found = f"over {MAX_TRACKED_VALUES:,}" if labels is None else f"{len(labels):,}"
        raise _error(
            field_name,
            f"{where} holds {found} distinct labels; a multilabel head takes at most {MAX_TEXT_CLASSES}"
            + ("" if sniffed else "; is it the right separator?"),
        )
    if len(labels) < 2:
        found = f"only the label {next(iter(labels))!r}" if labels else "no label in any row"
        raise _error(field_name, f"{where} holds {found}; a multilabel head needs at least two labels")
    long = [label for label in labels if len(label) > MAX_NAME_LENGTH]
    if long:
        raise _error(
            field_name,
            f"{where} holds a label of {len(long[0]):,} characters ({shorten(long[0], 40)!r}); labels take at "
            f"most {MAX_NAME_LENGTH}",
        )
    if forced:
        given = "task='multilabel'" if sniffed else f"label_separator={separator!r}"
        how = (
            f", the separator held by the most values ({share:.1%})" if sniffed and counts.with_separator
            else " (no value holds a separator: one label per row)" if sniffed else ""
        )  # fmt: skip
        notes.append(
            f"Target {stats.column!r}: {given} was given -> one multilabel head {stats.column!r} of "
            f"{len(labels)} labels split on {separator!r}{how}."
        )
    else:
        notes.append(
            f"Target {stats.column!r}: {share:.1%} of values hold {separator!r} and its {len(labels)} distinct "
            f"parts are fewer than the {shown} distinct values -> label sets, one multilabel head "
            f"{stats.column!r}; pass task='multiclass' to read each value as one class, or label_separator= "
            "to split on another separator."
        )
    return _HeadPlan(stats.column, "multilabel", (stats.column,), separator)


def _require_two_values(stats: _TargetStats) -> None:
    """A target needs at least two distinct values; name the column and its only value otherwise."""
    classes = stats.classes
    if classes is not None and len(classes) == 1:
        value, count = classes[0]
        raise _error(
            "target",
            f"column {stats.column!r} has a single value {str(value)!r} in all {count:,} rows; "
            "a model needs at least two classes (or a varying number) to learn",
        )


def _infer_type(stats: _TargetStats) -> tuple[str, str]:
    """The head type of one target and a short reason, following the rules in the module docstring."""
    distinct = stats.distinct
    if stats.all_bool:
        return "binary", "true/false values"
    if not stats.all_numeric:
        if distinct == 2:
            return "binary", "2 distinct text values"
        too_many = distinct is None or distinct > MAX_TEXT_CLASSES
        if too_many or (distinct > MAX_INTEGER_CLASSES and distinct > stats.rows / 2):
            shown = "over 10,000" if distinct is None else f"{distinct:,}"
            raise _error(
                "target",
                f"column {stats.column!r} holds text with {shown} distinct values in {stats.rows:,} rows, "
                "too many to be classes (free text or an ID?); choose another target",
            )
        return "multiclass", f"{distinct} distinct text values"
    if not stats.integer_valued:
        return "regression", "non-integer numbers"
    few = distinct is not None and distinct <= MAX_INTEGER_CLASSES
    if distinct == 2:
        return "binary", "2 distinct integers"
    if stats.minimum >= 0:
        if few:
            return "multiclass", (
                f"{distinct} distinct non-negative integers (pass task='count' or 'ordinal' if they are "
                "counts or ranks)"
            )
        if stats.float_stored:
            # sklearn's diabetes target, a CSV written with "151.0": whole numbers kept as measurements.
            return "regression", (
                "many distinct whole numbers stored as floats (pass task='count' if they are counts)"
            )
        return "count", (
            f"non-negative integers with over {MAX_INTEGER_CLASSES} distinct values (pass task='regression' "
            "if they are not counts)"
        )
    if few:
        return "multiclass", f"{distinct} distinct integers including negatives"
    return "regression", "integers including negatives, many distinct"


def _check_forced_type(stats: _TargetStats, task: str) -> str:
    """Check that a target can be of the type the user forced; return that type."""
    distinct = stats.distinct
    problem = None
    if task in ("regression", "count") and not stats.all_numeric:
        problem = "it holds text, not numbers"
    elif task == "count" and (not stats.integer_valued or stats.minimum < 0):
        problem = "counts are non-negative integers"
    elif task == "binary" and distinct != 2:
        problem = f"a binary target has 2 distinct values, this one has {distinct or 'over 10,000'}"
    elif task in ("multiclass", "ordinal") and distinct is None:
        problem = f"it has over {MAX_TRACKED_VALUES:,} distinct values, too many for classes"
    if problem:
        raise _error("task", f"task={task!r} does not fit column {stats.column!r}: {problem}")
    return task


# ----------------------------------------------------------------------------------------------------------
# Feature columns


@dataclass
class _FeaturePlan:
    """How the sampled feature columns are encoded for the quick fit."""

    numeric: list[str] = field(default_factory=list)
    categorical: dict[str, list[str]] = field(default_factory=dict)  # column -> one-hot levels
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> column descriptions

    @property
    def n_features(self) -> int:
        return len(self.numeric) + sum(len(levels) for levels in self.categorical.values())


def _as_text(values: pd.Series) -> pd.Series:
    """Values as strings, missing values kept missing (so mixed object columns compare consistently)."""
    if pdtypes.is_string_dtype(values) and pdtypes.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    return values.map(str, na_action="ignore")


def _as_numbers(values: pd.Series) -> pd.Series:
    """Values as float64; anything that is not a number becomes missing."""
    if pdtypes.is_bool_dtype(values) or pdtypes.is_numeric_dtype(values):
        return values.astype(np.float64)
    return pd.to_numeric(values, errors="coerce").astype(np.float64)


def _mostly_numbers(values: pd.Series) -> bool:
    """Whether a text column is numbers with some junk cells: checked on a head first, to stay cheap."""
    present = values.dropna()
    if present.empty or pdtypes.infer_dtype(present, skipna=True) == "boolean":
        return False
    head = pd.to_numeric(present.iloc[:200], errors="coerce")
    if head.notna().mean() < NUMERIC_PARSE_SHARE:
        return False
    return bool(pd.to_numeric(present, errors="coerce").notna().mean() >= NUMERIC_PARSE_SHARE)


def _looks_like_id_name(name: str) -> bool:
    name = name.strip()
    return bool(_ID_NAME_LOWER.search(name.lower()) or _ID_NAME_CAMEL.search(name))


def _plan_features(
    sample: pd.DataFrame, columns: list[str], rows_total: int, notes: list[str]
) -> _FeaturePlan:
    """Give each feature column a role (numeric, categorical, or dropped with a reason) from the sample."""
    plan = _FeaturePlan()
    for name in columns:
        role, detail = _column_role(name, sample[name], rows_total, notes)
        if role == "numeric":
            plan.numeric.append(name)
        elif role == "categorical":
            plan.categorical[name] = detail
        else:
            plan.dropped.setdefault(role, []).append(detail)
    return plan


def _column_role(name: str, values: pd.Series, rows_total: int, notes: list[str]) -> tuple[str, Any]:
    """("numeric", None), ("categorical", levels) or (drop reason, description for the note)."""
    present = values.dropna()
    if present.empty:
        return "empty", f"{name} (every value missing)"
    if pdtypes.is_datetime64_any_dtype(values) or pdtypes.is_timedelta64_dtype(values):
        return "unsupported", f"{name} ({values.dtype})"
    if pdtypes.is_complex_dtype(values):
        return "unsupported", f"{name} ({values.dtype})"
    numeric = pdtypes.is_bool_dtype(values) or pdtypes.is_numeric_dtype(values)
    if not numeric and _mostly_numbers(values):
        numbers = _as_numbers(present)
        junk = present[numbers.isna()].astype(str).unique()[:3]
        if len(junk):
            notes.append(
                f"Column {name!r}: {int(numbers.isna().sum()):,} sampled non-numeric cells "
                f"(e.g. {', '.join(repr(value) for value in junk)}) treated as missing."
            )
        numeric, present = True, numbers.dropna()
    present = _as_numbers(present) if numeric else _as_text(present)
    if numeric and not np.isfinite(present).all():
        infinite = ~np.isfinite(present)
        notes.append(f"Column {name!r}: {int(infinite.sum()):,} sampled infinite cells treated as missing.")
        present = present[~infinite]
        if present.empty:
            return "empty", f"{name} (every value missing or infinite)"
    distinct = int(present.nunique())
    if distinct <= 1:
        return "constant", f"{name} (always {_short(present.iloc[0])})"
    share = distinct / len(present)
    named_id = _looks_like_id_name(name) and distinct > MAX_LEVELS
    if numeric:
        integers = bool((present == np.round(present)).all())
        dense = (present.max() - present.min() + 1) <= ID_RANGE_PER_ROW * rows_total
        unnamed_id = len(present) >= MIN_ROWS_FOR_ID and share >= ID_DISTINCT_SHARE and dense
        if integers and (named_id or unnamed_id):
            return "id", name
        return "numeric", None
    if share > TEXT_DISTINCT_SHARE and _is_free_text(present):
        return "text", name
    if named_id or (len(present) >= MIN_ROWS_FOR_ID and share >= ID_DISTINCT_SHARE):
        return "id", name
    levels = _top_levels(present)
    if distinct > MAX_LEVELS:
        notes.append(f"Column {name!r}: {distinct:,} levels; one-hot encoded the {MAX_LEVELS} most frequent.")
    return "categorical", levels


def _short(value: Any, limit: int = 30) -> str:
    return shorten(repr(value.item() if isinstance(value, np.generic) else value), limit)


def _is_free_text(values: pd.Series) -> bool:
    """Several words per value, or long values of two words or more (judged on at most 2,000 values)."""
    head = values.iloc[:2_000]
    words = float((head.str.strip().str.count(r"\s+") + 1).median())
    long_values = float(head.str.len().median()) >= TEXT_MEDIAN_LENGTH
    return words >= TEXT_MEDIAN_WORDS or (long_values and words >= 2)


def _top_levels(values: pd.Series) -> list[str]:
    """The most frequent levels, ties broken by the level's text so the encoding is deterministic."""
    counts = values.value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return [str(level) for level, _ in ranked[:MAX_LEVELS]]

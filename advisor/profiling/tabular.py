"""The tabular profiler: one pass over the rows, head plans, feature roles, the robust quick fit, the heads."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from advisor.profiling.common import DataReader, ProfiledData, ProfileRequest, _error, _listing
from advisor.profiling.inference import (
    _as_numbers,
    _as_text,
    _FeaturePlan,
    _HeadPlan,
    _plan_features,
    _plan_heads,
)
from advisor.profiling.reading import CHUNK_CELLS, _BottomKSampler, _open_source, _resolve_targets, _Source
from advisor.profiling.statistics import (
    LABEL_SEPARATORS,
    _count_note,
    _label_pairs,
    _label_text,
    _LabelCounts,
    _numeric_summary,
    _robust_residuals,
    _TargetStats,
)
from advisor.task import Head, TaskDescription

# Rows of the robust quick fit: enough for stable residual statistics, small enough to take milliseconds.
QUICK_FIT_ROWS = 5_000
# Encoded columns of the quick fit, at most this many and one per this many rows; wider data use a seeded
# random subset, so the fit stays quick and its residuals are not shrunk by overfitting.
QUICK_FIT_MAX_FEATURES = 300
QUICK_FIT_ROWS_PER_FEATURE = 10


@dataclass
class _Scan:
    """What one pass over the data collects."""

    stats: dict[str, _TargetStats]
    sample: pd.DataFrame
    rows_read: int
    rows_with_target: int
    missing_targets: pd.Series  # rows lacking each target
    missing_cells: pd.Series  # per column, over rows that have every target
    sampler: _BottomKSampler  # what drew the sample
    # Several targets: rows where every target is 0 (a multilabel head's rows without a label).
    all_zero_rows: int
    # One target: the rows lacking it, aside. Most heads drop them, but in a delimited label column a missing
    # value is a row without labels (see _with_unlabelled_rows).
    unlabelled: _BottomKSampler | None
    unlabelled_missing_cells: pd.Series


def _scan(
    source: _Source, targets: list[str], max_rows: int, rng: np.random.Generator, separators: tuple[str, ...]
) -> _Scan:
    """One pass: exact target statistics and missing-cell counts over all rows, plus a uniform sample.

    ``separators``: those a single target's values are split on as label sets while reading (which one, if any,
    applies is decided after the last chunk).
    """
    stats = {name: _TargetStats(name) for name in targets}
    single = len(targets) == 1
    if single:
        stats[targets[0]].label_sets = {separator: _LabelCounts() for separator in separators}
    sampler = _BottomKSampler(max_rows, rng)
    # Its own stream of keys, spawned without drawing from rng: the sample of the rows with a target is the one
    # it was before the rows without one were kept.
    unlabelled = _BottomKSampler(max_rows, rng.spawn(1)[0]) if single else None
    rows_read = rows_with_target = all_zero_rows = 0
    missing_targets = pd.Series(0, index=targets)
    missing_cells = pd.Series(0, index=source.columns)
    unlabelled_missing_cells = pd.Series(0, index=source.columns)
    for chunk in source.chunks:
        rows_read += len(chunk)
        absent = chunk[targets].isna()
        missing_targets += absent.sum()
        has_targets = ~absent.any(axis=1)
        if not has_targets.all():
            if unlabelled is not None:
                unlabelled.offer(chunk[~has_targets])
                unlabelled_missing_cells += chunk[~has_targets].isna().sum()
            chunk = chunk[has_targets]
        if chunk.empty:
            continue
        rows_with_target += len(chunk)
        for name in targets:
            stats[name].update(chunk[name], had_missing=bool(absent[name].any()))
        if not single:
            zeros = [np.asarray(chunk[name].to_numpy() == 0, dtype=bool) for name in targets]
            all_zero_rows += int(np.logical_and.reduce(zeros).sum())
        missing_cells += chunk.isna().sum()
        sampler.offer(chunk)
    if rows_read == 0:
        raise _error("data", f"no data rows, only a header; columns are {_listing(source.columns)}")
    if rows_with_target == 0:
        raise _error("target", f"every row lacks a value for {_listing(targets)}")
    return _Scan(
        stats, sampler.sample(), rows_read, rows_with_target, missing_targets, missing_cells, sampler,
        all_zero_rows, unlabelled, unlabelled_missing_cells,
    )  # fmt: skip


def _with_unlabelled_rows(scan: _Scan) -> _Scan:
    """The scan of a delimited label column, where a missing value is a row without labels: every row counts,
    and the sample is drawn from all of them."""
    if scan.rows_read == scan.rows_with_target or scan.unlabelled is None:
        return scan
    return replace(
        scan,
        sample=scan.sampler.merged(scan.unlabelled),
        rows_with_target=scan.rows_read,
        missing_targets=scan.missing_targets * 0,
        missing_cells=scan.missing_cells + scan.unlabelled_missing_cells,
    )


def _note_features(plan: _FeaturePlan, scan: _Scan, notes: list[str]) -> None:
    """Notes on dropped columns and on missing cells among the kept ones."""
    what = {
        "id": "ID-like",
        "constant": "constant",
        "text": "free-text",
        "empty": "empty",
        "unsupported": "unsupported (date/time or complex)",
    }
    for reason, descriptions in plan.dropped.items():
        plural = "s" if len(descriptions) > 1 else ""
        notes.append(f"Dropped {what[reason]} column{plural}: {', '.join(descriptions)}.")
    kept = plan.numeric + list(plan.categorical)
    if not kept:
        notes.append("No usable feature columns remain (n_features = 0).")
        return
    missing = scan.missing_cells[kept]
    if missing.sum() == 0:
        return
    share = missing.sum() / (scan.rows_with_target * len(kept))
    worst = missing[missing > 0].sort_values(ascending=False).iloc[:5] / scan.rows_with_target
    detail = ", ".join(f"{name} {value:.1%}" for name, value in worst.items())
    notes.append(
        f"{share:.1%} of feature cells are missing ({detail}); the quick fit imputes medians "
        "(numeric) and no level (categorical)."
    )


def _encode(frame: pd.DataFrame, plan: _FeaturePlan) -> np.ndarray:
    """Standardized numeric columns (median-imputed) and one-hot levels, as one float matrix."""
    blocks = []
    for name in plan.numeric:
        numbers = _as_numbers(frame[name])
        numbers = numbers.where(np.isfinite(numbers))  # infinite cells are missing, as the plan's note says
        numbers = numbers.fillna(numbers.median() if numbers.notna().any() else 0.0).to_numpy()
        spread = numbers.std()
        blocks.append((numbers - numbers.mean()) / spread if spread > 0 else np.zeros_like(numbers))
    for name, levels in plan.categorical.items():
        text = _as_text(frame[name])
        blocks.extend(text.eq(level).fillna(False).to_numpy(dtype=np.float64) for level in levels)
    if not blocks:
        return np.empty((len(frame), 0))
    matrix = np.column_stack(blocks)
    # A column constant within the fit rows carries nothing and only adds a Breusch-Pagan degree of freedom.
    return matrix[:, matrix.std(axis=0) > 0]


# ----------------------------------------------------------------------------------------------------------
# Heads


def _class_head(plan: _HeadPlan, stats: _TargetStats) -> Head:
    classes = stats.classes or []
    return Head(
        name=plan.name,
        type=plan.type,
        num_classes=len(classes),
        class_histogram=[count for _, count in classes],
        class_labels=[str(value) for value, _ in classes],
    )


def _multilabel_head(plan: _HeadPlan, scan: _Scan) -> Head:
    """A multilabel head of several 0/1 columns or of one delimited label column (its rows are every row)."""
    if plan.separator is None:
        rows = scan.rows_with_target
        labels = list(plan.columns)
        positives = [dict(scan.stats[name].classes or []).get(1, 0) for name in plan.columns]
        without_label = scan.all_zero_rows
    else:
        counts = scan.stats[plan.name].label_sets[plan.separator]
        rows = scan.rows_read
        labels = sorted(counts.labels)
        positives = [counts.labels[label] for label in labels]
        without_label = counts.blank + rows - scan.stats[plan.name].rows  # blank or missing
    return Head(
        name=plan.name,
        type="multilabel",
        num_classes=len(labels),
        class_labels=labels,
        positive_rates=[count / rows for count in positives],
        label_cardinality=sum(positives) / rows,
        no_label_share=without_label / rows,
    )


def _cardinality_note(head: Head) -> str:
    return (
        f"Target {head.name!r}: {head.num_classes} labels, {head.label_cardinality:.3g} per row on average; "
        f"{head.no_label_share:.1%} of rows have none."
    )


def _numeric_heads(
    plans: list[_HeadPlan],
    scan: _Scan,
    features: _FeaturePlan,
    rng: np.random.Generator,
    notes: list[str],
) -> dict[str, Head]:
    """Regression and count heads, with residual statistics from one robust quick fit per head."""
    numeric_plans = [plan for plan in plans if plan.type in ("regression", "count")]
    if not numeric_plans:
        return {}
    rows = len(scan.sample)
    chosen = np.sort(rng.choice(rows, size=min(rows, QUICK_FIT_ROWS), replace=False))
    fit_rows = scan.sample.iloc[chosen]
    matrix = _encode(fit_rows, features)
    limit = max(1, min(QUICK_FIT_MAX_FEATURES, len(chosen) // QUICK_FIT_ROWS_PER_FEATURE))
    if matrix.shape[1] > limit:
        kept = np.sort(rng.choice(matrix.shape[1], size=limit, replace=False))
        notes.append(f"The quick fit uses a random {limit} of {matrix.shape[1]} encoded features.")
        matrix = matrix[:, kept]
    if matrix.shape[1]:
        notes.append(
            f"Quick robust fit (Huber regression) on {len(chosen):,} sampled rows and {matrix.shape[1]} "
            "encoded features gives the outlier fraction, robust scale and Breusch-Pagan p-value."
        )
    else:
        notes.append("Without features the outlier statistics use deviations from the target median.")
    heads = {}
    # One BLAS thread: these matrices are small, and OpenBLAS threads on a busy 2-core machine made a
    # 5,000 x 100 least-squares solve take a second instead of 20 ms.
    with threadpool_limits(limits=1, user_api="blas"):
        for plan in numeric_plans:
            target = _as_numbers(fit_rows[plan.name]).to_numpy()
            residuals = _robust_residuals(matrix, target)
            stats = scan.stats[plan.name]
            summary = _numeric_summary(stats, residuals, matrix)
            heads[plan.name] = Head(name=plan.name, type=plan.type, target=summary)
            if plan.type == "count":
                notes.append(_count_note(plan.name, stats))
    return heads


def _imbalance_note(head: Head) -> str | None:
    ratio = head.imbalance_ratio
    if ratio is None:
        return None
    level = "none" if ratio < 3 else "moderate" if ratio <= 20 else "severe"
    return (
        f"Target {head.name!r}: class counts {head.class_histogram}, imbalance ratio {ratio:.1f} ({level})."
    )


def encoded(run: TabularProfile) -> ProfiledData:
    """The profile plus its sampled rows encoded as features and targets (for trial fits)."""
    sample = run.scan.sample
    targets = {}
    for plan, head in zip(run.plans, run.task.heads, strict=True):
        if plan.separator is not None:
            index = {label: i for i, label in enumerate(head.class_labels or [])}
            positions, labels = _label_pairs(_label_text(sample[plan.name]), plan.separator)
            matrix = np.zeros((len(sample), len(index)), dtype=np.float32)
            matrix[positions, [index[label] for label in labels]] = 1.0
            targets[head.name] = matrix
        elif plan.type == "multilabel":
            columns = [_as_numbers(sample[name]).to_numpy() for name in plan.columns]
            targets[head.name] = np.column_stack(columns).astype(np.float32)
        elif plan.type in ("regression", "count"):
            targets[head.name] = _as_numbers(sample[plan.name]).to_numpy(dtype=np.float32)
        else:
            stats = run.scan.stats[plan.name]
            index = {value: i for i, (value, _) in enumerate(stats.classes or [])}
            targets[head.name] = np.array(
                [index[stats._canonical(v)] for v in sample[plan.name]], dtype=np.int64
            )
    return ProfiledData(run.task, _encode(sample, run.features).astype(np.float32), targets)


@dataclass(frozen=True)
class TabularProfile:
    """A tabular profile and what it was computed from: the scan, the head plans, the feature plan."""

    task: TaskDescription
    scan: _Scan
    plans: list[_HeadPlan]
    features: _FeaturePlan


def profile_table(
    data: Any,
    target: Any,
    task: str | None,
    max_rows: int,
    random_state: int | None,
    *,
    label_separator: str | None = None,
    chunk_cells: int = CHUNK_CELLS,
) -> TabularProfile:
    """Profile tabular data (see :func:`advisor.profiling.profile` for the parameters and errors; the options
    are checked already).

    ``chunk_cells`` bounds the cells of each CSV chunk read.
    """
    notes: list[str] = []
    source = _open_source(data, target, chunk_cells=chunk_cells)
    targets = _resolve_targets(target, source, notes)
    rng = np.random.default_rng(random_state)
    separators = LABEL_SEPARATORS if label_separator is None else (label_separator,)
    scan = _scan(source, targets, max_rows, rng, separators)
    head_notes: list[str] = []
    plans = _plan_heads(scan.stats, task, head_notes, label_separator)
    if any(plan.separator is not None for plan in plans):
        scan = _with_unlabelled_rows(scan)
    notes.extend(_row_notes(scan, max_rows))
    notes.extend(head_notes)
    feature_columns = [name for name in source.columns if name not in targets]
    features = _plan_features(scan.sample, feature_columns, scan.rows_with_target, notes)
    _note_features(features, scan, notes)
    numeric = _numeric_heads(plans, scan, features, rng, notes)
    description = TaskDescription(
        heads=[_assemble_head(plan, scan, numeric, notes) for plan in plans],
        n_samples=scan.rows_with_target,
        n_features=features.n_features,
        source="data",
        notes=notes,
    )
    return TabularProfile(description, scan, plans, features)


def _profile(request: ProfileRequest) -> TabularProfile:
    return profile_table(
        request.data, request.target, request.task, request.max_rows, request.random_state,
        label_separator=request.label_separator, chunk_cells=request.chunk_cells,
    )  # fmt: skip


# The reader of the table head kinds. It takes whatever no other reader claims, so it is asked last; profiling
# alone skips encoding the sample.
READER = DataReader(
    order=2,
    claims=lambda request: True,
    read=lambda request: encoded(_profile(request)),
    task=lambda request: _profile(request).task,
)


def _assemble_head(plan: _HeadPlan, scan: _Scan, numeric: dict[str, Head], notes: list[str]) -> Head:
    """The finished head of a plan: multilabel rates, the numeric head already fitted, or class counts."""
    if plan.type == "multilabel":
        head = _multilabel_head(plan, scan)
        notes.append(_cardinality_note(head))
        return head
    if plan.name in numeric:
        return numeric[plan.name]
    head = _class_head(plan, scan.stats[plan.name])
    note = _imbalance_note(head)
    notes.extend([note] if note else [])
    return head


def _row_notes(scan: _Scan, max_rows: int) -> list[str]:
    """Notes on rows dropped for a missing target and on sampling."""
    notes = []
    dropped = scan.rows_read - scan.rows_with_target
    if dropped:
        per_target = ", ".join(
            f"{name} {int(count):,}" for name, count in scan.missing_targets.items() if count
        )
        notes.append(f"Dropped {dropped:,} of {scan.rows_read:,} rows with a missing target ({per_target}).")
    if scan.rows_with_target > max_rows:
        notes.append(
            f"Profiled a uniform sample of {len(scan.sample):,} of {scan.rows_with_target:,} rows; "
            "class counts and target moments use all rows."
        )
    return notes

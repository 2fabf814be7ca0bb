"""Profile a dataset into a :class:`~advisor.task.TaskDescription`: head types, class counts, target traits.

The traits are those of ``shared/selection.md`` ("Traits computed from a task or its data"): class histograms
(for the imbalance ratio), the outlier fraction and robust scale of a robust quick fit, count dispersion and
zero share, and a Breusch-Pagan test for heteroscedasticity.

A CSV is read in chunks, never whole: target histograms and moments are counted exactly over every row, and
everything else (column roles, the quick fit) uses a uniform bottom-k sample of at most ``max_rows`` rows.

Head types, unless the user forces one (each reason goes into ``TaskDescription.notes``):

- true/false or text values: binary with 2 distinct values, else multiclass; refused when there are over 200
  distinct values, or over 20 and more than half the rows (free text or an ID, not classes);
- numbers with a fractional part: regression;
- non-negative integers: binary with 2 distinct values, multiclass with up to 20, count above that; whole
  numbers stored as floats without missing values to explain it (``151.0``, sklearn's diabetes) with over
  20 values are taken as measurements: regression;
- integers including negatives: binary with 2 values, multiclass with up to 20, regression above that;
- several targets all 0/1: one multilabel head named ``a+b+c``; otherwise several targets give one head each.

Example::

    from advisor.profiling import profile
    task = profile("client_examples/data/churn.csv", target="churned")
    task.heads[0].class_histogram  # [2643, 357]
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as pdtypes
from threadpoolctl import threadpool_limits

from advisor._text import shorten
from advisor.errors import AdvisorError, FieldViolation
from advisor.task import Head, TargetSummary, TaskDescription

__all__ = ["FORCEABLE_TASKS", "TARGET_NAMES", "ProfileError", "ProfiledData", "profile", "profile_data"]

# Column names taken as the target when the user names none (compared case-insensitively).
TARGET_NAMES = ("target", "label", "labels", "y", "class", "outcome")
FORCEABLE_TASKS = ("regression", "binary", "multiclass", "count", "ordinal", "multilabel")

# Non-negative integer targets with at most this many distinct values are classes, above it counts.
MAX_INTEGER_CLASSES = 20
# A text target with more distinct values than this (or over 20 and over half its rows) is not classes.
MAX_TEXT_CLASSES = 200
# Distinct target values tracked while streaming; beyond this a target cannot be a classification target.
MAX_TRACKED_VALUES = 10_000
# One-hot levels per categorical feature column (the most frequent ones).
MAX_LEVELS = 20
# Rows of the robust quick fit: enough for stable residual statistics, small enough to take milliseconds.
QUICK_FIT_ROWS = 5_000
# Encoded columns of the quick fit, at most this many and one per this many rows; wider data use a seeded
# random subset, so the fit stays quick and its residuals are not shrunk by overfitting.
QUICK_FIT_MAX_FEATURES = 300
QUICK_FIT_ROWS_PER_FEATURE = 10
# selection.md: an outlier lies beyond 3.5 robust scales; 1.4826 MAD estimates sigma for normal residuals.
OUTLIER_CUTOFF = 3.5
MAD_TO_SIGMA = 1.4826
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
# Cells read per CSV chunk (rows = cells / columns): bounds memory whatever the width.
CHUNK_CELLS = 3_000_000
# Extra values treated as missing in CSVs besides pandas' defaults ("", "NA", "NaN", "null", ...).
EXTRA_NA_VALUES = ("?",)

# id, uuid, customer_id, id_customer, order.id; camelCase customerId / customerID (not "paid" or "valid").
_ID_NAME_LOWER = re.compile(r"^(id|uuid|guid)$|[_\s.-](id|uuid|guid)$|^id[_\s.-]")
_ID_NAME_CAMEL = re.compile(r"[a-z]I[dD]$")
TaskName = Literal["regression", "binary", "multiclass", "count", "ordinal", "multilabel"]


class ProfileError(AdvisorError):
    """Data that cannot be profiled: no target to use, an unreadable file, a single class, a bad option."""


def _error(field_name: str, description: str) -> ProfileError:
    return ProfileError(FieldViolation(field_name, description))


def _listing(names: Sequence[str], limit: int = 30) -> str:
    """Names for an error message, shortened when there are very many."""
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


# ----------------------------------------------------------------------------------------------------------
# Reading the data as a stream of chunks


@dataclass
class _Source:
    """Column names plus a way to stream the rows as DataFrame chunks."""

    columns: list[str]
    chunks: Iterable[pd.DataFrame]
    default_targets: list[str] | None = None  # the y columns of (X, y) data


def _open_source(data: Any, target: str | Sequence[str] | None) -> _Source:
    """Turn any supported ``data`` into a :class:`_Source`.

    Parameters
    ----------
    data : str, Path, DataFrame or tuple (X, y)
        What :func:`profile` was given.
    target : str, list of str or None
        Only used with ``(X, y)`` data, where it names the y columns.
    """
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.is_file():
            raise _error("data", f"no such file: {str(path)!r}")
        return _csv_source(path, repr(str(path)))
    if isinstance(data, io.BufferedIOBase | io.RawIOBase):
        return _csv_source(data, "the CSV bytes")
    if isinstance(data, pd.DataFrame):
        frame = data.rename(columns=str)
        _check_unique_columns(list(frame.columns))
        return _Source(list(frame.columns), [frame.reset_index(drop=True)])
    if isinstance(data, tuple | list) and len(data) == 2:
        frame, targets = _frame_from_arrays(data[0], data[1], target)
        return _Source(list(frame.columns), [frame], default_targets=targets)
    raise _error(
        "data",
        f"expected a CSV path, a pandas DataFrame or a tuple (X, y), got {type(data).__name__}",
    )


def _check_unique_columns(columns: list[str]) -> None:
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if repeated:
        raise _error("data", f"column names must be unique, repeated: {_listing(repeated)}")


# Leading bytes of binary formats people save with a .csv name (or send as CSV bytes), and what to do instead.
_BINARY_FORMATS = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive", "save it as CSV, or read it with "
     "pandas.read_excel and pass the DataFrame"),
    (b"\xd0\xcf\x11\xe0", "a legacy Excel workbook (.xls)", "save it as CSV, or read it with pandas.read_excel "
     "and pass the DataFrame"),
    (b"PAR1", "a Parquet file", "read it with pandas.read_parquet and pass the DataFrame (Arrow IPC over gRPC)"),
    (b"ARROW1", "an Arrow IPC file", "read it with pyarrow and pass the DataFrame (arrow_ipc over gRPC)"),
)  # fmt: skip
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")


def _csv_source(source: Path | IO[bytes], label: str) -> _Source:
    """Read the header now and stream the rows later, in chunks of about ``CHUNK_CELLS`` cells.

    ``source`` is a path or a binary file object (the service's uploaded bytes): both go through this one
    reader, with the same separator sniffing, missing-value markers and tolerance of stray bytes.
    """
    compressed = isinstance(source, Path) and source.suffix.lower() in _COMPRESSED
    head = b"" if compressed else _head_bytes(source)
    for magic, kind, instead in _BINARY_FORMATS:
        if head.startswith(magic):
            raise _error("data", f"{label} is {kind}, not CSV text: {instead}")
    if b"\x00" in head:
        raise _error("data", f"{label} holds NUL bytes: binary data, not CSV text")
    text = head.decode("utf-8", errors="replace")
    options: dict[str, Any] = {
        "sep": "," if compressed else _sniff_separator(text),
        "na_values": list(EXTRA_NA_VALUES),
        "skipinitialspace": True,
        "index_col": False,
        # A stray byte in a different encoding (latin-1 text) should not stop the profile of a large file.
        "encoding_errors": "replace",
    }
    try:
        header = pd.read_csv(_rewound(source), nrows=0, **options)
    except pd.errors.EmptyDataError:
        raise _error("data", f"{label} is empty: no header row and no data") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise _error("data", f"cannot read {label} as CSV: {exc}") from None
    columns = [str(name).strip() for name in header.columns]
    _check_unique_columns(columns)
    rows_per_chunk = max(1_000, CHUNK_CELLS // max(len(columns), 1))
    return _Source(columns, _csv_chunks(source, label, columns, rows_per_chunk, options))


def _head_bytes(source: Path | IO[bytes], size: int = 64 * 1024) -> bytes:
    if isinstance(source, Path):
        with source.open("rb") as handle:
            return handle.read(size)
    return _rewound(source).read(size)


def _rewound(source: Path | IO[bytes]) -> Path | IO[bytes]:
    """A path as it is; a file object back at its start (it is read once for the header, once for rows)."""
    if not isinstance(source, Path):
        source.seek(0)
    return source


def _csv_chunks(
    source: Path | IO[bytes], label: str, columns: list[str], rows: int, options: dict[str, Any]
) -> Iterator[pd.DataFrame]:
    try:
        with pd.read_csv(_rewound(source), chunksize=rows, **options) as reader:
            for chunk in reader:
                chunk.columns = columns
                yield chunk
    except pd.errors.ParserError as exc:
        raise _error("data", f"malformed CSV {label}: {exc}") from None


def _sniff_separator(text: str) -> str:
    """The most frequent of , ; tab | in the header line (',' for a single column)."""
    header = text.split("\n", 1)[0]
    counts = {separator: header.count(separator) for separator in (",", ";", "\t", "|")}
    best = max(counts, key=lambda separator: counts[separator])
    return best if counts[best] > 0 else ","


def _frame_from_arrays(
    features: Any, targets: Any, target: str | Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """One frame from ``(X, y)``; feature columns keep DataFrame names or become x0, x1, ...

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    targets : array-like of shape (n_samples,) or (n_samples, n_targets)
    target : str, list of str or None
        Names for the y columns; by default the Series/DataFrame names, else ``target`` or ``target0, ...``.
    """
    if isinstance(features, pd.DataFrame):
        feature_frame = features.rename(columns=str).reset_index(drop=True)
    else:
        array = np.asarray(features)
        if array.ndim != 2:
            raise _error("data", f"X must be 2-D (rows, features), got shape {array.shape}")
        feature_frame = pd.DataFrame(array, columns=[f"x{index}" for index in range(array.shape[1])])
    if isinstance(targets, pd.Series):
        target_frame = targets.to_frame(name=str(targets.name) if targets.name is not None else "target")
    elif isinstance(targets, pd.DataFrame):
        target_frame = targets.rename(columns=str)
    else:
        array = np.asarray(targets)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim == 1:
            target_frame = pd.DataFrame({"target": array})
        elif array.ndim == 2:
            target_frame = pd.DataFrame(array, columns=[f"target{index}" for index in range(array.shape[1])])
        else:
            raise _error("data", f"y must be 1-D or 2-D, got shape {array.shape}")
    target_frame = target_frame.reset_index(drop=True)
    if target is not None:
        names = [target] if isinstance(target, str) else list(target)
        if len(names) != target_frame.shape[1]:
            raise _error("target", f"got {len(names)} names for {target_frame.shape[1]} y columns")
        target_frame.columns = [str(name) for name in names]
    if len(feature_frame) != len(target_frame):
        raise _error("data", f"X has {len(feature_frame)} rows but y has {len(target_frame)}")
    clashes = sorted(set(feature_frame.columns) & set(target_frame.columns))
    if clashes:
        raise _error("target", f"y column names clash with X columns: {_listing(clashes)}")
    frame = pd.concat([feature_frame, target_frame], axis=1)
    _check_unique_columns(list(frame.columns))
    return frame, list(target_frame.columns)


def _resolve_targets(target: str | Sequence[str] | None, source: _Source, notes: list[str]) -> list[str]:
    """The target columns: as given, the y of (X, y), or the one column named like a target."""
    if source.default_targets is not None:
        return source.default_targets
    hint = "pass target= (Python) or --target (CLI) to name the target column"
    if target is None:
        candidates = [name for name in source.columns if name.strip().lower() in TARGET_NAMES]
        if len(candidates) != 1:
            found = (
                f"several columns are named like a target ({_listing(candidates)})"
                if candidates
                else "no column is named like a target (" + ", ".join(TARGET_NAMES) + ")"
            )
            raise _error("target", f"{found}; {hint}; columns are {_listing(source.columns)}")
        notes.append(f"Target column {candidates[0]!r} inferred from its name.")
        return candidates
    names = [target] if isinstance(target, str) else list(target)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise _error("target", f"expected a column name or a non-empty list of names, got {target!r}")
    if len(set(names)) != len(names):
        raise _error("target", f"target columns repeat: {names}")
    missing = [name for name in names if name not in source.columns]
    if missing:
        raise _error(
            "target", f"no column {_listing(missing)} in the data; columns are {_listing(source.columns)}"
        )
    return names


# ----------------------------------------------------------------------------------------------------------
# Exact streaming statistics of the targets


@dataclass
class _TargetStats:
    """Exact statistics of one target column, updated chunk by chunk (Chan's parallel moments)."""

    column: str
    rows: int = 0
    mean: float = 0.0
    sum_squared_deviations: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    zeros: int = 0
    all_numeric: bool = True
    all_bool: bool = True
    integer_valued: bool = True
    # Written as floats ("151.0", a float64 array) without missing values to explain the float dtype.
    float_stored: bool = False
    counts: Counter | None = field(default_factory=Counter)  # None once there are too many values
    _classes: list[tuple[Any, int]] | None = None

    def update(self, values: pd.Series, *, had_missing: bool = False) -> None:
        """Add the values of one chunk.

        Parameters
        ----------
        values : Series
            The chunk's target values, rows with a missing target already dropped.
        had_missing : bool
            Whether this chunk had missing targets, which alone turns integers into a float column.
        """
        kind, numbers = _target_values(values)
        self.all_bool &= kind == "bool"
        self.float_stored |= kind == "numeric" and _stored_as_float(values) and not had_missing
        if kind == "text":
            self.all_numeric = False
            self._count(values if pdtypes.is_string_dtype(values) else values.map(str))
        else:
            if not np.isfinite(numbers).all():
                raise _error("target", f"column {self.column!r} holds infinite values")
            self._add_moments(numbers)
            self._count(numbers)
        self.rows += len(values)
        self._classes = None

    def _add_moments(self, numbers: np.ndarray) -> None:
        chunk_rows = len(numbers)
        chunk_mean = float(numbers.mean())
        chunk_squares = float(((numbers - chunk_mean) ** 2).sum())
        delta = chunk_mean - self.mean
        total = self.rows + chunk_rows
        self.mean += delta * chunk_rows / total
        self.sum_squared_deviations += chunk_squares + delta**2 * self.rows * chunk_rows / total
        self.minimum = min(self.minimum, float(numbers.min()))
        self.maximum = max(self.maximum, float(numbers.max()))
        self.zeros += int((numbers == 0).sum())
        self.integer_valued &= bool((numbers == np.round(numbers)).all())

    def _count(self, values: pd.Series | np.ndarray) -> None:
        if self.counts is None:
            return
        if isinstance(values, np.ndarray):
            keys, counts = np.unique(values, return_counts=True)
            chunk_counts = zip(keys.tolist(), counts.tolist(), strict=True)
        else:
            chunk_counts = values.value_counts(sort=False).items()
        self.counts.update(dict(chunk_counts))
        if len(self.counts) > MAX_TRACKED_VALUES:
            self.counts = None

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1) of a numeric target."""
        return self.sum_squared_deviations / (self.rows - 1) if self.rows > 1 else 0.0

    @property
    def classes(self) -> list[tuple[Any, int]] | None:
        """(value, count) of every distinct value, sorted; None when there are too many to track."""
        if self.counts is None:
            return None
        if self._classes is None:
            merged: Counter = Counter()
            for key, count in self.counts.items():
                merged[self._canonical(key)] += count
            sort_key = None if self.all_numeric else str
            self._classes = sorted(
                merged.items(), key=lambda item: sort_key(item[0]) if sort_key else item[0]
            )
        return self._classes

    @property
    def distinct(self) -> int | None:
        classes = self.classes
        return None if classes is None else len(classes)

    def _canonical(self, key: Any) -> Any:
        """One key per class whatever the chunk dtypes were (1, 1.0 and '1' are the same class)."""
        if self.all_bool:
            return bool(key)
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        return key if self.all_numeric else str(key)

    @property
    def is_zero_one(self) -> bool:
        classes = self.classes
        return self.all_numeric and classes is not None and {value for value, _ in classes} <= {0, 1}


def _stored_as_float(values: pd.Series) -> bool:
    if pdtypes.is_numeric_dtype(values):
        return pdtypes.is_float_dtype(values)
    return pdtypes.infer_dtype(values, skipna=True) in ("floating", "mixed-integer-float", "decimal")


def _target_values(values: pd.Series) -> tuple[str, np.ndarray]:
    """("bool" | "numeric" | "text", the values as float64 for the first two kinds)."""
    if pdtypes.is_bool_dtype(values):
        return "bool", values.to_numpy(dtype=np.float64)
    if pdtypes.is_numeric_dtype(values):
        return "numeric", values.to_numpy(dtype=np.float64)
    inferred = pdtypes.infer_dtype(values, skipna=True)
    if inferred == "boolean":
        return "bool", values.astype(bool).to_numpy(dtype=np.float64)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric", pd.to_numeric(values).to_numpy(dtype=np.float64)
    return "text", np.empty(0)


# ----------------------------------------------------------------------------------------------------------
# Uniform sampling of a stream


class _BottomKSampler:
    """A uniform sample of at most ``capacity`` rows: each row draws a random key, the smallest keys stay.

    Parameters
    ----------
    capacity : int
        Rows kept.
    rng : numpy.random.Generator
        Source of the keys; the same seed gives the same sample.
    """

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.threshold = math.inf  # once full, only rows with a key below the kept maximum can enter
        self._frames: list[pd.DataFrame] = []
        self._keys: list[np.ndarray] = []
        self._buffered = 0

    def offer(self, chunk: pd.DataFrame) -> None:
        keys = self.rng.random(len(chunk))
        candidates = keys < self.threshold
        if not candidates.all():
            chunk, keys = chunk[candidates], keys[candidates]
        if len(chunk):
            self._frames.append(chunk)
            self._keys.append(keys)
            self._buffered += len(chunk)
        # Compact now and then rather than per chunk: concatenation is the expensive step.
        if self._buffered > self.capacity * 3 // 2:
            self._compact()

    def _compact(self) -> None:
        if len(self._frames) <= 1 and self._buffered <= self.capacity:
            return
        frame = pd.concat(self._frames) if len(self._frames) > 1 else self._frames[0]
        keys = np.concatenate(self._keys)
        if len(keys) > self.capacity:
            # Sorting the chosen positions keeps the rows in file order.
            chosen = np.sort(np.argpartition(keys, self.capacity - 1)[: self.capacity])
            frame, keys = frame.iloc[chosen], keys[chosen]
            self.threshold = float(keys.max())
        self._frames, self._keys, self._buffered = [frame], [keys], len(keys)

    def sample(self) -> pd.DataFrame:
        self._compact()
        return self._frames[0].reset_index(drop=True)


@dataclass
class _Scan:
    """What one pass over the data collects."""

    stats: dict[str, _TargetStats]
    sample: pd.DataFrame
    rows_read: int
    rows_with_target: int
    missing_targets: pd.Series  # rows lacking each target
    missing_cells: pd.Series  # per column, over rows that have every target


def _scan(source: _Source, targets: list[str], max_rows: int, rng: np.random.Generator) -> _Scan:
    """One pass: exact target statistics and missing-cell counts over all rows, plus a uniform sample."""
    stats = {name: _TargetStats(name) for name in targets}
    sampler = _BottomKSampler(max_rows, rng)
    rows_read = rows_with_target = 0
    missing_targets = pd.Series(0, index=targets)
    missing_cells = pd.Series(0, index=source.columns)
    for chunk in source.chunks:
        rows_read += len(chunk)
        absent = chunk[targets].isna()
        missing_targets += absent.sum()
        has_targets = ~absent.any(axis=1)
        if not has_targets.all():
            chunk = chunk[has_targets]
        if chunk.empty:
            continue
        rows_with_target += len(chunk)
        for name in targets:
            stats[name].update(chunk[name], had_missing=bool(absent[name].any()))
        missing_cells += chunk.isna().sum()
        sampler.offer(chunk)
    if rows_read == 0:
        raise _error("data", f"no data rows, only a header; columns are {_listing(source.columns)}")
    if rows_with_target == 0:
        raise _error("target", f"every row lacks a value for {_listing(targets)}")
    return _Scan(stats, sampler.sample(), rows_read, rows_with_target, missing_targets, missing_cells)


# ----------------------------------------------------------------------------------------------------------
# Head types


@dataclass(frozen=True)
class _HeadPlan:
    """A head to build: its name, type and target columns (several for a multilabel head)."""

    name: str
    type: str
    columns: tuple[str, ...]


def _plan_heads(stats: dict[str, _TargetStats], task: str | None, notes: list[str]) -> list[_HeadPlan]:
    """Decide each head's type (forced by ``task`` or inferred) and note the reason."""
    columns = list(stats)
    if task == "multilabel" or (
        task is None and len(columns) > 1 and all(s.is_zero_one for s in stats.values())
    ):
        return [_multilabel_plan(stats, forced=task is not None, notes=notes)]
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
        raise _error("task", "a multilabel head needs two or more 0/1 target columns; pass a list as target=")
    not_binary = [name for name, column_stats in stats.items() if not column_stats.is_zero_one]
    if not_binary:
        raise _error("task", f"multilabel targets must hold only 0/1 values; not so: {_listing(not_binary)}")
    name = "+".join(columns)
    reason = "task='multilabel' was given" if forced else f"{len(columns)} targets, all 0/1"
    notes.append(f"Targets {_listing(columns)}: {reason} -> one multilabel head {name!r}.")
    return _HeadPlan(name, "multilabel", tuple(columns))


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
# The robust quick fit


def _robust_residuals(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Residuals of a Huber regression (an intercept alone without features), in target units.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Standardized features.
    target : ndarray of shape (n_samples,)
    """
    center = float(np.median(target))
    scale = MAD_TO_SIGMA * float(np.median(np.abs(target - center))) or float(np.std(target)) or 1.0
    scaled = (target - center) / scale
    if features.shape[1] == 0:
        return target - center
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import HuberRegressor

    with warnings.catch_warnings():
        # A few more L-BFGS iterations would not change the residual statistics we read off.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = HuberRegressor(epsilon=1.35, alpha=1e-4, max_iter=300).fit(features, scaled)
    return (scaled - model.predict(features)) * scale


def _outlier_statistics(residuals: np.ndarray) -> tuple[float, float | None]:
    """(share of |r - median(r)| / s > 3.5, s) with s = 1.4826 MAD(r); s falls back to the mean deviation.

    Parameters
    ----------
    residuals : ndarray of shape (n_samples,)
    """
    deviations = np.abs(residuals - np.median(residuals))
    scale = MAD_TO_SIGMA * float(np.median(deviations))
    if scale <= 1e-12 * max(1.0, float(deviations.max())):
        # More than half the residuals equal (many identical targets): the mean deviation still scales.
        scale = math.sqrt(math.pi / 2) * float(deviations.mean())
    if scale <= 0:
        return 0.0, None
    return float(np.mean(deviations / scale > OUTLIER_CUTOFF)), scale


def _breusch_pagan_pvalue(features: np.ndarray, residuals: np.ndarray) -> float | None:
    """Koenker's Breusch-Pagan test: LM = n R^2 of squared residuals on the features, p = chi2.sf(LM, k).

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    residuals : ndarray of shape (n_samples,)

    Returns
    -------
    float or None
        The p-value; None without features or with fewer rows than the test needs.
    """
    rows = features.shape[0]
    if features.shape[1] == 0 or rows <= features.shape[1] + 2:
        return None
    from scipy.stats import chi2

    squared = residuals**2
    design = np.column_stack([np.ones(rows), features])
    coefficients, _, rank, _ = np.linalg.lstsq(design, squared, rcond=None)
    total = float(((squared - squared.mean()) ** 2).sum())
    if total == 0 or rank < 2:
        return 1.0
    r_squared = 1.0 - float(((squared - design @ coefficients) ** 2).sum()) / total
    return float(chi2.sf(rows * max(r_squared, 0.0), rank - 1))


def _numeric_summary(stats: _TargetStats, residuals: np.ndarray, features: np.ndarray) -> TargetSummary:
    outlier_fraction, robust_scale = _outlier_statistics(residuals)
    return TargetSummary(
        mean=stats.mean,
        variance=max(stats.variance, 0.0),
        minimum=stats.minimum,
        maximum=stats.maximum,
        zero_share=stats.zeros / stats.rows,
        outlier_fraction=outlier_fraction,
        robust_scale=robust_scale,
        heteroscedasticity_pvalue=_breusch_pagan_pvalue(features, residuals),
    )


def _count_note(name: str, stats: _TargetStats) -> str:
    dispersion = stats.variance / stats.mean if stats.mean > 0 else math.inf
    verdict = "Poisson-like" if dispersion <= 1.5 else "overdispersed"
    expected_zeros = math.exp(-stats.mean)
    return (
        f"Target {name!r}: variance/mean = {dispersion:.2f} ({verdict}); zeros {stats.zeros / stats.rows:.1%} "
        f"vs {expected_zeros:.1%} under a Poisson of the same mean."
    )


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


def _multilabel_head(plan: _HeadPlan, stats: dict[str, _TargetStats]) -> Head:
    rates = [dict(stats[name].classes or []).get(1, 0) / stats[name].rows for name in plan.columns]
    return Head(name=plan.name, type="multilabel", num_classes=len(plan.columns), positive_rates=rates)


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


# ----------------------------------------------------------------------------------------------------------
# The public function


def profile(
    data: str | Path | pd.DataFrame | tuple[Any, Any],
    *,
    target: str | Sequence[str] | None = None,
    task: TaskName | None = None,
    max_rows: int = 200_000,
    random_state: int | None = 0,
) -> TaskDescription:
    """Profile data into a :class:`~advisor.task.TaskDescription` (``source="data"``).

    Parameters
    ----------
    data : str, pathlib.Path, pandas.DataFrame or tuple (X, y)
        A CSV file (read in chunks, never whole; the separator is sniffed from the header), a frame, or
        arrays: X of shape (n_samples, n_features), y of shape (n_samples,) or (n_samples, n_targets).
    target : str, list of str or None
        Target column(s). None takes the one column named target, label, labels, y, class or outcome
        (case-insensitively). With (X, y) data it names the y columns instead.
    task : {"regression", "binary", "multiclass", "count", "ordinal", "multilabel"} or None
        Force the head type instead of inferring it ("ordinal" is never inferred).
    max_rows : int
        Rows sampled (uniformly) for column roles and the quick fit; class counts and target moments
        always use every row.
    random_state : int or None
        Seed of the row sample and of the quick-fit subsample; the same seed gives the same profile.

    Returns
    -------
    TaskDescription
        One head per target (one multilabel head for several 0/1 targets), with class histograms or a
        :class:`~advisor.task.TargetSummary`; ``notes`` says what was inferred, dropped and sampled.

    Raises
    ------
    ProfileError
        No obvious target, an unknown target column, an empty or unreadable file, a single-class or
        free-text target, a ``task`` the target cannot have, or a bad option. Each names its field.
    """
    return _profile(data, target, task, max_rows, random_state).task


@dataclass(frozen=True)
class ProfiledData:
    """A profile together with the sampled rows it was computed from, encoded for training.

    ``features`` are the sampled rows as standardized numeric columns and one-hot levels (float32);
    ``targets`` maps each head name to its targets for those rows: class indices into the head's
    ``class_labels``, 0/1 label columns (multilabel) or numbers.
    """

    task: TaskDescription
    features: np.ndarray
    targets: dict[str, np.ndarray]


def profile_data(
    data: str | Path | pd.DataFrame | tuple[Any, Any],
    *,
    target: str | Sequence[str] | None = None,
    task: TaskName | None = None,
    max_rows: int = 200_000,
    random_state: int | None = 0,
) -> ProfiledData:
    """:func:`profile`, plus the sampled rows encoded as features and targets (for trial fits).

    Parameters and errors as for :func:`profile`.
    """
    run = _profile(data, target, task, max_rows, random_state)
    sample = run.scan.sample
    targets = {}
    for plan, head in zip(run.plans, run.task.heads, strict=True):
        if plan.type == "multilabel":
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
class _Run:
    task: TaskDescription
    scan: _Scan
    plans: list[_HeadPlan]
    features: _FeaturePlan


def _profile(data: Any, target: Any, task: TaskName | None, max_rows: int, random_state: int | None) -> _Run:
    if task is not None and task not in FORCEABLE_TASKS:
        raise _error("task", f"unknown task {task!r}; expected one of {', '.join(FORCEABLE_TASKS)} or None")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise _error("max_rows", f"expected a positive integer, got {max_rows!r}")
    notes: list[str] = []
    source = _open_source(data, target)
    targets = _resolve_targets(target, source, notes)
    rng = np.random.default_rng(random_state)
    scan = _scan(source, targets, max_rows, rng)
    notes.extend(_row_notes(scan, max_rows))
    plans = _plan_heads(scan.stats, task, notes)
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
    return _Run(description, scan, plans, features)


def _assemble_head(plan: _HeadPlan, scan: _Scan, numeric: dict[str, Head], notes: list[str]) -> Head:
    """The finished head of a plan: multilabel rates, the numeric head already fitted, or class counts."""
    if plan.type == "multilabel":
        return _multilabel_head(plan, scan.stats)
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

"""Target statistics: exact streaming moments and counts, and the residual tests of a robust quick fit
(outlier fraction and robust scale, Breusch-Pagan heteroscedasticity)."""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdtypes

from advisor.profiling.common import _error
from advisor.task import TargetSummary

# Distinct target values tracked while streaming; beyond this a target cannot be a classification target.
MAX_TRACKED_VALUES = 10_000
# Separators of a delimited label column, in the order that breaks a tie in how many values hold them.
LABEL_SEPARATORS = ("|", ";", ",")
# Distinct values split at once while counting label sets.
LABEL_SLICE = 20_000
# selection.md: an outlier lies beyond 3.5 robust scales; 1.4826 MAD estimates sigma for normal residuals.
OUTLIER_CUTOFF = 3.5
MAD_TO_SIGMA = 1.4826


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
    # The values read as label sets, per candidate separator; None unless asked for (a single target).
    label_sets: dict[str, _LabelCounts] | None = None
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
        if self.label_sets is not None and any(c.labels is not None for c in self.label_sets.values()):
            self._count_label_sets(values, numeric=kind != "text")
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

    def _count_label_sets(self, values: pd.Series, *, numeric: bool) -> None:
        """Count the chunk's values as label sets, numbers too: a column read as numbers in one chunk may hold
        "1|2" in the next."""
        assert self.label_sets is not None
        chunk_counts = values.value_counts(sort=False)
        if numeric and len(chunk_counts) > MAX_TRACKED_VALUES:
            # Numbers hold no separator: each distinct one is a label of its own, too many to track.
            for counts in self.label_sets.values():
                counts.labels = None
            return
        text = _label_text(chunk_counts.index.to_series())
        for separator, counts in self.label_sets.items():
            counts.update(text, chunk_counts.to_numpy(), separator)

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


@dataclass
class _LabelCounts:
    """Exact counts of one target's values read as label sets split on one separator (chunk by chunk).

    A value's labels are its parts split on the separator, stripped of surrounding spaces, blanks dropped and
    repeats counted once: ``"cat| dog|cat"`` is the set {cat, dog}; a blank value is a row without labels.
    """

    with_separator: int = 0  # values that hold the separator
    labels: Counter | None = field(default_factory=Counter)  # rows per label; None past MAX_TRACKED_VALUES
    assigned: int = 0  # labels over every row (the sum of each row's label count)
    blank: int = 0  # values without a label

    def update(self, values: pd.Series, weights: np.ndarray, separator: str) -> None:
        """Add distinct ``values`` (text) seen ``weights`` times each."""
        # In slices, so that a column of IDs or free text stops being split soon after its labels overflow.
        for start in range(0, len(values), LABEL_SLICE):
            if self.labels is None:
                return
            end = start + LABEL_SLICE
            self._add(values.iloc[start:end], weights[start:end], separator)

    def _add(self, values: pd.Series, weights: np.ndarray, separator: str) -> None:
        assert self.labels is not None
        self.with_separator += int(weights[values.str.contains(separator, regex=False).to_numpy()].sum())
        positions, labels = _label_pairs(values, separator)
        pair_weights = weights[positions]
        self.labels.update(dict(pd.Series(pair_weights).groupby(labels).sum().items()))
        self.assigned += int(pair_weights.sum())
        self.blank += int(weights.sum() - weights[np.unique(positions)].sum())
        if len(self.labels) > MAX_TRACKED_VALUES:
            self.labels = None


def _label_pairs(values: pd.Series, separator: str) -> tuple[np.ndarray, np.ndarray]:
    """(position, label) of each label of each value (see :class:`_LabelCounts`); positions index ``values``,
    a missing value has no labels.

    Parameters
    ----------
    values : Series of str
    separator : str
    """
    parts = values.reset_index(drop=True).str.split(separator, regex=False).explode().str.strip()
    parts = parts[parts.notna() & (parts != "")]
    pairs = pd.DataFrame({"position": parts.index.to_numpy(), "label": parts.to_numpy(dtype=object)})
    pairs = pairs.drop_duplicates()
    return pairs["position"].to_numpy(dtype=np.int64), pairs["label"].to_numpy(dtype=object)


def _label_text(values: pd.Series) -> pd.Series:
    """Values as label text: strings as they are, whole numbers without a decimal point (``3.0`` is ``"3"``,
    as class values are canonicalised); missing values stay missing."""
    if pdtypes.is_string_dtype(values) and pdtypes.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    # As objects: a column of missing values alone would stay float, which the .str methods refuse.
    return values.map(_label_of, na_action="ignore").astype(object)


def _label_of(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


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

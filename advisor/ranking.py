"""Ranking candidates for the user's metric: means and spreads over repeats, confidence intervals, tie groups.

Repeats are paired across candidates (repeat r is the same split, batch order and initial weights for every
candidate), so two candidates are compared by their per-repeat differences: a candidate ties with the best
when the t-interval of its mean paired difference includes 0. Within a tie group the rule prior orders them
(then the mean): the data could not tell them apart, so the literature's judgement decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class RepeatValues:
    """One candidate's value in each repeat (NaN where a member diverged), repeat 0 first."""

    values: tuple[float, ...]
    higher_is_better: bool

    @property
    def finite(self) -> np.ndarray:
        array = np.asarray(self.values, dtype=float)
        return array[np.isfinite(array)]

    @property
    def mean(self) -> float | None:
        return float(self.finite.mean()) if len(self.finite) else None

    @property
    def std(self) -> float | None:
        return float(self.finite.std(ddof=1)) if len(self.finite) > 1 else (0.0 if len(self.finite) else None)

    def interval(self, level: float = 0.95) -> tuple[float, float] | None:
        """Student-t interval of the mean over repeats (a point when only one repeat survived)."""
        values = self.finite
        if not len(values):
            return None
        if len(values) == 1:
            return float(values[0]), float(values[0])
        half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
        return float(values.mean() - half), float(values.mean() + half)

    def oriented(self) -> float:
        """The mean with 'larger is better' for every metric; -inf when nothing survived."""
        mean = self.mean
        return -math.inf if mean is None else (mean if self.higher_is_better else -mean)


def _paired_differences(a: RepeatValues, b: RepeatValues) -> np.ndarray:
    """a - b over the repeats both ran (a raced-out candidate ran a prefix of the repeats)."""
    return np.array(
        [x - y for x, y in zip(a.values, b.values, strict=False) if math.isfinite(x) and math.isfinite(y)]
    )


def _half_width(differences: np.ndarray, quantile: float) -> float:
    return float(
        stats.t.ppf(quantile, len(differences) - 1) * differences.std(ddof=1) / math.sqrt(len(differences))
    )


def paired_interval(
    a: RepeatValues, b: RepeatValues, level: float = 0.95
) -> tuple[float, float, float, int] | None:
    """(mean, low, high, repeats) of the paired difference a - b, oriented so that positive means a is
    better; None with fewer than 2 shared repeats."""
    differences = _paired_differences(a, b)
    if len(differences) < 2:
        return None
    if not a.higher_is_better:
        differences = -differences
    half = 0.0 if differences.std(ddof=1) == 0 else _half_width(differences, 0.5 + level / 2)
    mean = float(differences.mean())
    return mean, mean - half, mean + half, len(differences)


def indistinguishable(a: RepeatValues, b: RepeatValues, level: float = 0.95) -> bool:
    """True when the paired t-interval of a - b over the repeats both ran includes 0 (with one repeat,
    equal values only)."""
    differences = _paired_differences(a, b)
    if not len(differences):
        return False
    if len(differences) == 1 or differences.std(ddof=1) == 0:
        return bool(np.all(differences == 0))
    return abs(differences.mean()) <= _half_width(differences, 0.5 + level / 2)


def clearly_behind(leader: RepeatValues, other: RepeatValues, level: float = 0.95) -> bool:
    """Racing's drop rule: the leader is ahead and the two-sided ``level`` paired t-interval of its advantage
    excludes 0 (at least 3 paired repeats), the same test that keeps a candidate out of the leader's tie
    group; a candidate with no surviving repeat is behind."""
    if other.mean is None:
        return True
    differences = _paired_differences(leader, other)
    if not leader.higher_is_better:
        differences = -differences
    if len(differences) < 3:
        return False
    if differences.std(ddof=1) == 0:
        return bool(differences.mean() > 0)
    return differences.mean() - _half_width(differences, 0.5 + level / 2) > 0


def tie_groups(evidence: list[RepeatValues]) -> list[int]:
    """Group 1 holds the best candidate and those indistinguishable from it; group 2 the best of the rest and
    its ties; and so on. Candidates without a surviving seed get the last group."""
    groups = [0] * len(evidence)
    remaining = sorted(range(len(evidence)), key=lambda i: -evidence[i].oriented())
    group = 0
    while remaining:
        group += 1
        leader = remaining[0]
        if evidence[leader].mean is None:
            for index in remaining:
                groups[index] = group
            break
        members = [i for i in remaining if i == leader or indistinguishable(evidence[leader], evidence[i])]
        for index in members:
            groups[index] = group
        remaining = [i for i in remaining if i not in members]
    return groups


def relative_scores(evidence: list[RepeatValues]) -> list[float]:
    """Each candidate's mean rescaled over the candidates: 1 the best, 0 the worst (0 without a value)."""
    oriented = [e.oriented() for e in evidence]
    finite = [v for v in oriented if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    return [
        0.0 if not math.isfinite(v) else 1.0 if high == low else (v - low) / (high - low) for v in oriented
    ]


def rank(evidence: list[RepeatValues], priors: list[float]) -> tuple[list[int], list[int], list[float]]:
    """Candidate indices best first, their tie groups and relative scores: ordered by tie group, then rule
    prior, then mean."""
    groups = tie_groups(evidence)
    scores = relative_scores(evidence)
    order = sorted(range(len(evidence)), key=lambda i: (groups[i], -priors[i], -scores[i], i))
    return order, groups, scores

"""Ranking candidates for the user's metric: means and spreads over seeds, confidence intervals, tie groups.

Seeds are paired across candidates (same data order, same initial weights), so two candidates are compared
by their per-seed differences: a candidate ties with the best when the t-interval of its mean paired
difference includes 0. Within a tie group the final score (mostly the metric, partly the rule prior) orders
them: the data could not tell them apart, so the literature's judgement weighs in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Evidence:
    """Trial evidence of one candidate: its metric on each seed (NaN where a member diverged)."""

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
        """Student-t interval of the mean over seeds (a point when only one seed survived)."""
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


def indistinguishable(a: Evidence, b: Evidence, level: float = 0.95) -> bool:
    """True when the paired t-interval of a - b over the seeds both ran includes 0 (with one seed, equal
    means only)."""
    pairs = [(x, y) for x, y in zip(a.values, b.values, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if not pairs:
        return False
    differences = np.array([x - y for x, y in pairs])
    if len(differences) == 1 or differences.std(ddof=1) == 0:
        return bool(np.all(differences == 0))
    half = (
        stats.t.ppf(0.5 + level / 2, len(differences) - 1)
        * differences.std(ddof=1)
        / math.sqrt(len(differences))
    )
    return abs(differences.mean()) <= half


def tie_groups(evidence: list[Evidence]) -> list[int]:
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


PRIOR_WEIGHT = 0.2


def final_scores(evidence: list[Evidence], priors: list[float]) -> list[float]:
    """(1 - w) x the metric rescaled to [0, 1] over the candidates (best 1) + w x the rule prior, w = 0.2.

    Candidates without a surviving seed score their prior share only.
    """
    oriented = [e.oriented() for e in evidence]
    finite = [v for v in oriented if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    scores = []
    for value, prior in zip(oriented, priors, strict=True):
        relative = 0.0 if not math.isfinite(value) else 1.0 if high == low else (value - low) / (high - low)
        scores.append((1 - PRIOR_WEIGHT) * relative + PRIOR_WEIGHT * prior)
    return scores


def rank(evidence: list[Evidence], priors: list[float]) -> tuple[list[int], list[int], list[float]]:
    """Candidate indices best first, their tie groups and final scores: ordered by tie group, then score."""
    groups = tie_groups(evidence)
    scores = final_scores(evidence, priors)
    order = sorted(range(len(evidence)), key=lambda i: (groups[i], -scores[i], i))
    return order, groups, scores

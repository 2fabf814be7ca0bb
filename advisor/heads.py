"""Head types and the metrics each can be judged by: plain constants shared by the catalog and the tasks."""

from __future__ import annotations

import math
from typing import Literal, get_args

HeadType = Literal[
    "regression",
    "binary",
    "multiclass",
    "multilabel",
    "ordinal",
    "count",
    "segmentation",
    "audio",
    "distribution",
]
HEAD_TYPES: tuple[str, ...] = get_args(HeadType)

Metric = Literal[
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "average_precision",
    "roc_auc",
    "log_loss",
    "brier",
    "mae",
    "rmse",
    "poisson_deviance",
    "tweedie_deviance",
    "gamma_deviance",
    "nll",
    "pinball",
    "map",
    "dice",
    "iou",
    "si_sdr",
    "snr",
    "esr",
    "kl",
]

# Metrics that fit each head type; the first is the default for balanced data.
METRICS_BY_HEAD: dict[str, tuple[str, ...]] = {
    "regression": ("rmse", "mae", "nll", "pinball", "poisson_deviance", "tweedie_deviance", "gamma_deviance"),
    "count": ("poisson_deviance", "mae", "rmse", "tweedie_deviance"),
    "binary": (
        "roc_auc",
        "average_precision",
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "log_loss",
        "brier",
    ),
    "multiclass": ("accuracy", "balanced_accuracy", "macro_f1", "log_loss"),
    "ordinal": ("mae", "accuracy", "balanced_accuracy", "macro_f1"),
    "multilabel": ("map", "macro_f1", "roc_auc", "log_loss"),
    "segmentation": ("dice", "iou"),
    "audio": ("si_sdr", "snr", "esr"),
    "distribution": ("kl",),
}
# Defaults when classes are imbalanced (imbalance ratio >= 3): accuracy-like metrics hide the minority.
IMBALANCED_DEFAULT_METRIC: dict[str, str] = {
    "binary": "average_precision",
    "multiclass": "balanced_accuracy",
    "ordinal": "mae",
}
# True where a larger value of the metric is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    metric: metric
    in {
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "average_precision",
        "roc_auc",
        "map",
        "dice",
        "iou",
        "si_sdr",
        "snr",
    }
    for metric in get_args(Metric)
}

# What kind of judgement each metric makes; rules read it as the fact ``metric_kind``.
# - class_balanced: a thresholded decision scored so that every class counts alike; it rewards rebalancing even
#   at mild imbalance (selection.md: ratio 1.5-3).
# - thresholded: a thresholded (argmax) decision scored by plain frequency (accuracy).
# - threshold_free: scores or probabilities ranked or scored as they are; a decision threshold cannot change
#   them, and neither can a logit shift of a two-class head for the ranking metrics (see RANKING_METRICS).
# - deviance: the mean deviance of a log-link family (Poisson, Tweedie, gamma); needs a non-negative target
#   (the gamma deviance a strictly positive one).
# - other: every other metric (regression errors, likelihoods, overlaps, signal ratios, KL).
MetricKind = Literal["class_balanced", "thresholded", "threshold_free", "deviance", "other"]
METRIC_KIND_CHOICES: tuple[str, ...] = get_args(MetricKind)
CLASS_BALANCED_METRICS = frozenset({"balanced_accuracy", "macro_f1"})
THRESHOLDED_METRICS = frozenset({"accuracy"})
THRESHOLD_FREE_METRICS = frozenset({"average_precision", "roc_auc", "log_loss", "brier", "map"})
# Threshold-free metrics that depend only on the order of the scores: any monotone transform (a threshold, a
# temperature, a logit shift of a two-class head) leaves them unchanged.
RANKING_METRICS = frozenset({"average_precision", "roc_auc", "map"})
DEVIANCE_METRICS = frozenset({"poisson_deviance", "tweedie_deviance", "gamma_deviance"})
# The Tweedie power p of each deviance metric (None: the head's tweedie_power, DEFAULT_TWEEDIE_POWER if unset).
DEVIANCE_POWER: dict[str, float | None] = {
    "poisson_deviance": 1.0,
    "tweedie_deviance": None,
    "gamma_deviance": 2.0,
}
DEFAULT_TWEEDIE_POWER = 1.5
# The powers a tweedie_deviance metric takes: 1 (Poisson) <= p <= 2 (gamma); scikit-learn's
# mean_tweedie_deviance needs y >= 0 for 1 <= p < 2 and y > 0 for p = 2, and predictions > 0 throughout.
TWEEDIE_POWER_RANGE = (1.0, 2.0)


def metric_kind(metric: str) -> str:
    """The :data:`MetricKind` of ``metric``."""
    if metric in CLASS_BALANCED_METRICS:
        return "class_balanced"
    if metric in THRESHOLDED_METRICS:
        return "thresholded"
    if metric in THRESHOLD_FREE_METRICS:
        return "threshold_free"
    if metric in DEVIANCE_METRICS:
        return "deviance"
    return "other"


def deviance_power(metric: str, tweedie_power: float | None = None) -> float:
    """The Tweedie power p whose mean deviance ``metric`` is (1 Poisson, 2 gamma)."""
    if metric not in DEVIANCE_METRICS:
        raise ValueError(f"{metric!r} is not a deviance metric; deviance metrics: {sorted(DEVIANCE_METRICS)}")
    fixed = DEVIANCE_POWER[metric]
    if fixed is not None:
        return fixed
    return DEFAULT_TWEEDIE_POWER if tweedie_power is None else tweedie_power


def chance_level(
    metric: str,
    *,
    class_counts: list[int] | None = None,
    positive_rates: list[float] | None = None,
    variance: float | None = None,
) -> float | None:
    """What a prediction that ignores the features scores, where it follows from the head's statistics:

    - average_precision: the positive rate (the expected value of a random ranking); map: the mean positive
      rate over labels; roc_auc: 0.5;
    - accuracy: the majority class's share (always predicting it); balanced_accuracy and macro_f1: 1/K
      (guessing with the class frequencies: each class's recall, precision and F1 equal its frequency);
    - log_loss: the entropy of the class frequencies (predicting them); brier: p (1 - p) for a binary head;
    - rmse: the target's standard deviation (predicting its mean).

    None for every other metric, or when the statistics it needs are unknown.
    """
    if metric == "roc_auc":
        return 0.5
    if metric == "map":
        return sum(positive_rates) / len(positive_rates) if positive_rates else None
    if metric == "rmse":
        return None if variance is None else variance**0.5
    if not class_counts or sum(class_counts) == 0:
        return None
    shares = [c / sum(class_counts) for c in class_counts]
    if metric == "average_precision" and len(shares) == 2:
        return shares[1]
    if metric == "brier" and len(shares) == 2:
        return shares[1] * shares[0]
    if metric == "accuracy":
        return max(shares)
    if metric in ("balanced_accuracy", "macro_f1"):
        return 1 / len(shares)
    if metric == "log_loss":
        return -sum(p * math.log(p) for p in shares if p > 0)
    return None

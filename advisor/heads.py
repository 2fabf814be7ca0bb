"""Head types and the metrics each can be judged by: plain constants shared by the catalog and the tasks."""

from __future__ import annotations

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
    "regression": ("rmse", "mae", "nll", "pinball"),
    "count": ("poisson_deviance", "mae", "rmse"),
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

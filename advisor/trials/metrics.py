"""Validation metrics: the head's metric, computed from trial predictions.

Every function takes the prediction dict an :class:`~advisor.trials.adapters.Adapter` produces ('proba',
'value', 'variance', 'quantiles', 'wave') and the validation target, and returns a float. Direction:
:data:`advisor.heads.HIGHER_IS_BETTER`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from advisor.heads import DEFAULT_TWEEDIE_POWER, DEVIANCE_METRICS, deviance_power

Predictions = dict[str, Tensor]
_EPS = 1e-12
# Deviances need strictly positive predicted means: predictions are clipped up to this floor first.
PREDICTION_FLOOR = 1e-9
_INTERVAL_LEVELS = (0.05, 0.5, 0.95)


def _np(tensor: Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _class_proba(predictions: Predictions) -> np.ndarray:
    """(N, C) class probabilities, also from a single sigmoid column."""
    proba = _np(predictions["proba"])
    if proba.ndim == 1 or proba.shape[1] == 1:
        positive = proba.reshape(-1)
        return np.stack([1 - positive, positive], axis=1)
    return proba


def _point(predictions: Predictions) -> np.ndarray:
    """The point prediction: the value, or the most likely class index of an ordinal head."""
    return _np(predictions["value"]) if "value" in predictions else _labels(predictions).astype(float)


def _labels(predictions: Predictions) -> np.ndarray:
    return _class_proba(predictions).argmax(1)


def _positive(predictions: Predictions) -> np.ndarray:
    return _class_proba(predictions)[:, 1]


def _multilabel_columns(proba: np.ndarray, target: np.ndarray) -> list[int]:
    return [j for j in range(target.shape[1]) if 0 < target[:, j].sum() < len(target)]


def _map(predictions: Predictions, target: Tensor) -> float:
    proba, y = _np(predictions["proba"]), _np(target)
    columns = _multilabel_columns(proba, y)
    return (
        float(np.mean([_binary_average_precision(y[:, j], proba[:, j]) for j in columns]))
        if columns
        else math.nan
    )


def _roc_auc(predictions: Predictions, target: Tensor) -> float:
    y = _np(target)
    if y.ndim == 2:
        proba = _np(predictions["proba"])
        columns = _multilabel_columns(proba, y)
        return (
            float(np.mean([_binary_roc_auc(y[:, j], proba[:, j]) for j in columns])) if columns else math.nan
        )
    return _binary_roc_auc(y, _positive(predictions))


def _macro_f1(predictions: Predictions, target: Tensor) -> float:
    y = _np(target)
    if y.ndim == 2:  # multilabel at threshold 0.5
        return _multilabel_macro_f1(y, (_np(predictions["proba"]) > 0.5).astype(float))
    return _single_label_macro_f1(y.astype(int), _labels(predictions))


def _log_loss(predictions: Predictions, target: Tensor) -> float:
    y = _np(target)
    if y.ndim == 2:
        p = np.clip(_np(predictions["proba"]), _EPS, 1 - _EPS)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    proba = np.clip(_class_proba(predictions), _EPS, 1.0)
    return float(-np.mean(np.log(proba[np.arange(len(y)), y.astype(int)])))


def _gaussian_nll(predictions: Predictions, target: Tensor) -> float:
    y, mean = _np(target), _np(predictions["value"])
    variance = (
        _np(predictions["variance"])
        if "variance" in predictions
        else np.full_like(y, np.mean((y - mean) ** 2))
    )
    variance = np.maximum(variance, _EPS)
    return float(np.mean(0.5 * (np.log(2 * np.pi * variance) + (y - mean) ** 2 / variance)))


def _pinball(predictions: Predictions, target: Tensor) -> float:
    """Mean pinball loss at the 5%, 50% and 95% levels (from quantile heads, a variance head, or the point)."""
    y, mean = _np(target), _np(predictions["value"])
    if "quantiles" in predictions and predictions["quantiles"].shape[1] == 3:
        columns = _np(predictions["quantiles"]).T
    elif "variance" in predictions:
        sd = np.sqrt(_np(predictions["variance"]))
        columns = [mean - 1.6449 * sd, mean, mean + 1.6449 * sd]
    else:
        columns = [mean, mean, mean]
    losses = [
        np.mean(np.maximum(q * (y - c), (q - 1) * (y - c)))
        for q, c in zip(_INTERVAL_LEVELS, columns, strict=True)
    ]
    return float(np.mean(losses))


def _deviance(predictions: Predictions, target: Tensor, power: float) -> float:
    """Mean Tweedie deviance of power ``power`` (1 Poisson, 2 gamma) of the predicted means, clipped up to
    :data:`PREDICTION_FLOOR`; NaN when the target does not fit the power (negative, or not positive for p = 2)."""
    y, mean = _np(target).reshape(-1), np.maximum(_np(predictions["value"]).reshape(-1), PREDICTION_FLOOR)
    if (y <= 0).any() if power == 2.0 else (y < 0).any():
        return math.nan
    if power == 1.0:
        positive = y > 0  # y log(y / mu) is taken as 0 at y = 0
        y_log_ratio = np.zeros_like(y)
        y_log_ratio[positive] = y[positive] * np.log(y[positive] / mean[positive])
        deviance = y_log_ratio - y + mean
    elif power == 2.0:
        deviance = np.log(mean / y) + y / mean - 1
    else:
        deviance = (
            y ** (2 - power) / ((1 - power) * (2 - power)) - y * mean ** (1 - power) / (1 - power)
            + mean ** (2 - power) / (2 - power)
        )  # fmt: skip
    return float(2 * np.mean(deviance))


def _class_masks(predictions: Predictions, target: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true masks (N, classes, pixels) of every scored class.

    A target shaped like the probabilities is (N, K, H, W) 0/1 channels of overlapping classes: every channel is
    a foreground class, predicted where its own probability exceeds 0.5. Class indices (N, H, W) score the
    foreground classes 1..C-1, C the output channels (2 for one sigmoid channel), predicted by argmax (one
    channel: p > 0.5).
    """
    proba, truth = _np(predictions["proba"]), _np(target)
    n = len(truth)
    if truth.shape == proba.shape:
        return (proba > 0.5).reshape(n, proba.shape[1], -1), (truth > 0.5).reshape(n, truth.shape[1], -1)
    predicted = (proba[:, 0] > 0.5).astype(int) if proba.shape[1] == 1 else proba.argmax(1)
    classes = np.arange(1, max(proba.shape[1], 2))[None, :, None]
    return predicted.reshape(n, 1, -1) == classes, truth.astype(int).reshape(n, 1, -1) == classes


def overlap_per_class(predictions: Predictions, target: Tensor, *, jaccard: bool) -> np.ndarray:
    """Dice (or IoU) of each scored class, averaged over the images: the foreground classes 1..C-1 of class-index
    targets (C the output channels), or every channel of overlapping (N, K, H, W) targets (:func:`_class_masks`).

    Per image and class: 2|P & T| / (|P| + |T|) (IoU: |P & T| / |P | T|), 1 when the class is absent from both
    the prediction and the target. The head's ``dice`` / ``iou`` metric is the mean of these values.
    """
    predicted, truth = _class_masks(predictions, target)
    inter, total = (predicted & truth).sum(2), predicted.sum(2) + truth.sum(2)
    overlap = inter / np.maximum(total - inter, 1) if jaccard else 2 * inter / np.maximum(total, 1)
    return np.where(total == 0, 1.0, overlap).mean(0)


def _si_sdr(predictions: Predictions, target: Tensor) -> float:
    x, y = _np(predictions["wave"]), _np(target)
    x, y = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    alpha = (x * y).sum(-1, keepdims=True) / ((y**2).sum(-1, keepdims=True) + _EPS)
    signal, noise = alpha * y, alpha * y - x
    return float(np.mean(10 * np.log10(((signal**2).sum(-1) + _EPS) / ((noise**2).sum(-1) + _EPS))))


def _snr(predictions: Predictions, target: Tensor) -> float:
    x, y = _np(predictions["wave"]), _np(target)
    return float(np.mean(10 * np.log10(((y**2).sum(-1) + _EPS) / (((y - x) ** 2).sum(-1) + _EPS))))


def _esr(predictions: Predictions, target: Tensor) -> float:
    x, y = _np(predictions["wave"]), _np(target)
    return float(np.mean(((y - x) ** 2).sum(-1) / ((y**2).sum(-1) + _EPS)))


def _kl(predictions: Predictions, target: Tensor) -> float:
    q, t = np.clip(_np(predictions["proba"]), _EPS, 1.0), _np(target)
    return float(np.mean(np.sum(np.where(t > 0, t * (np.log(np.maximum(t, _EPS)) - np.log(q)), 0.0), axis=1)))


# Every metric rated after a trial epoch is computed with numpy from its definition (as scikit-learn defines
# it, ties included; tests compare them with scikit-learn or hand-written formulas): scikit-learn's input
# validation cost about 4 ms a call, nearly half of a trial's time, and importing it 0.5 s.


def _confusion(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    classes = int(max(y.max(initial=0), predicted.max(initial=0))) + 1
    return np.bincount(y * classes + predicted, minlength=classes * classes).reshape(classes, classes)


def _balanced_accuracy(predictions: Predictions, target: Tensor) -> float:
    """Mean recall over the classes present in the target."""
    confusion = _confusion(_np(target).astype(int), _labels(predictions))
    present = confusion.sum(1) > 0
    return float(np.mean(np.diag(confusion)[present] / confusion.sum(1)[present]))


def _single_label_macro_f1(y: np.ndarray, predicted: np.ndarray) -> float:
    """Mean F1 over the classes present in the target or the predictions (0 where undefined)."""
    confusion = _confusion(y, predicted)
    true_positive = np.diag(confusion)
    denominator = confusion.sum(0) + confusion.sum(1)  # 2 TP + FP + FN
    present = denominator > 0
    return float(np.mean(2 * true_positive[present] / denominator[present]))


def _multilabel_macro_f1(y: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over labels of 2 TP / (2 TP + FP + FN), 0 for a label neither present nor predicted."""
    true_positive = (y * predicted).sum(0)
    denominator = y.sum(0) + predicted.sum(0)  # 2 TP + FP + FN
    return float(np.mean(np.where(denominator > 0, 2 * true_positive / np.maximum(denominator, 1), 0.0)))


def _distinct_last(scores: np.ndarray) -> np.ndarray:
    """Indices of the last of each run of equal values of a sorted array."""
    return np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]


def _binary_average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Sum over score thresholds of (R_n - R_(n-1)) P_n, tied scores forming one threshold; NaN without
    positives."""
    order = np.argsort(-score, kind="stable")
    y, score = y[order], score[order]
    last = _distinct_last(-score)
    true_positives, false_positives = np.cumsum(y)[last], np.cumsum(1 - y)[last]
    if not true_positives[-1]:
        return math.nan
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _binary_roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos n_neg) with average ranks for ties; NaN with one class only."""
    positives = y.sum()
    negatives = len(y) - positives
    if not positives or not negatives:
        return math.nan
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    last = _distinct_last(sorted_scores)
    first = np.r_[0, last[:-1] + 1]
    ranks[order] = np.repeat((first + last) / 2 + 1, last - first + 1)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


# Metrics that are the mean of per-class values: the values of each class, in class order.
PER_CLASS: dict[str, Callable[[Predictions, Tensor], np.ndarray]] = {
    "dice": lambda p, y: overlap_per_class(p, y, jaccard=False),
    "iou": lambda p, y: overlap_per_class(p, y, jaccard=True),
}

METRICS: dict[str, Callable[[Predictions, Tensor], float]] = {
    "accuracy": lambda p, y: float(np.mean(_labels(p) == _np(y))),
    "balanced_accuracy": _balanced_accuracy,
    "macro_f1": _macro_f1,
    "average_precision": lambda p, y: _binary_average_precision(_np(y), _positive(p)),
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "brier": lambda p, y: float(np.mean((_positive(p) - _np(y)) ** 2)),
    "mae": lambda p, y: float(np.mean(np.abs(_point(p) - _np(y)))),
    "rmse": lambda p, y: float(np.sqrt(np.mean((_np(p["value"]) - _np(y)) ** 2))),
    "nll": _gaussian_nll,
    "pinball": _pinball,
    "map": _map,
    **{  # dice and iou: the mean of their per-class values (the default argument binds each one's function)
        name: lambda p, y, by_class=by_class: float(np.mean(by_class(p, y)))
        for name, by_class in PER_CLASS.items()
    },
    "si_sdr": _si_sdr,
    "snr": _snr,
    "esr": _esr,
    "kl": _kl,
}


def score(
    metric: str, predictions: Predictions, target: Tensor, *, tweedie_power: float = DEFAULT_TWEEDIE_POWER
) -> float:
    """The value of ``metric`` for ``predictions`` against ``target`` (NaN where undefined on this split).

    ``tweedie_power`` is the power p of ``tweedie_deviance`` (1 <= p <= 2; pass ``head.tweedie_power or 1.5``);
    other metrics ignore it.
    """
    with torch.no_grad():
        if metric in DEVIANCE_METRICS:
            return _deviance(predictions, target, deviance_power(metric, tweedie_power))
        return METRICS[metric](predictions, target)


def score_per_class(metric: str, predictions: Predictions, target: Tensor) -> list[float] | None:
    """The per-class values whose mean is ``metric`` (:data:`PER_CLASS`: Dice and IoU), None for the others."""
    by_class = PER_CLASS.get(metric)
    if by_class is None:
        return None
    with torch.no_grad():
        return [float(v) for v in by_class(predictions, target)]

"""The trial side of the table head kinds (regression, count, binary, multiclass, ordinal, multilabel,
distribution): one feature row per sample, a stacked MLP, and per kind its output adapter, synthetic generator
and feature-blind prediction (:class:`advisor.trials.kinds.KindTrials`).

The generators follow the stated statistics: class histogram and feature count, label noise at the stated
rate, regression outliers at the stated fraction and heteroscedastic noise when stated, counts with the stated
mean, dispersion and zero share, multilabel positive rates. Deterministic for a given seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from advisor.heads import DEVIANCE_METRICS
from advisor.spec import LossSpec
from advisor.task import Head, TargetSummary, TaskDescription
from advisor.trials.adapters import SIGMOID_LOSSES, Adapter
from advisor.trials.data import TrialData
from advisor.trials.kinds import KindTrials
from advisor.trials.synthetic import synthetic_rows
from advisor.trials.trainer import ModelFactory, TrainConfig, mlp_factory

_LOG_LINK_LOSSES = {"tweedie"}


def mlp(data: TrialData, config: TrainConfig) -> ModelFactory:
    """Stacked two-layer MLPs over the feature columns."""
    return mlp_factory(data.x.shape[1], config)


def _features(task: TaskDescription) -> int:
    return int(min(max(task.n_features or 16, 4), 64))


# Output adapters: the loss's documented input from the raw output, and predictions for the metric.


def _sigmoid_or_softmax(spec: LossSpec, labels: int) -> Adapter:
    """One logit per label for a sigmoid-family loss, else a two-class softmax."""
    if spec.loss in SIGMOID_LOSSES:
        return Adapter("sigmoid", labels, float_target=True)
    return Adapter("softmax", 2, log_probs_input=spec.loss == "nll")


def binary_adapter(head: Head, spec: LossSpec) -> Adapter:
    """One logit (sigmoid losses) or two classes."""
    return _sigmoid_or_softmax(spec, 1)


def multilabel_adapter(head: Head, spec: LossSpec) -> Adapter:
    """One logit per label (sigmoid losses) or two classes."""
    return _sigmoid_or_softmax(spec, head.num_classes or 2)


def class_adapter(head: Head, spec: LossSpec) -> Adapter:
    """A softmax over the classes (multiclass, ordinal)."""
    return Adapter("softmax", head.num_classes or 2, log_probs_input=spec.loss == "nll")


def value_adapter(head: Head, spec: LossSpec) -> Adapter:
    """Regression and count outputs: a point, a mean with a log-variance, quantiles, or a (log) rate."""
    loss, params = spec.loss, spec.params
    if loss in ("gaussian_nll", "beta_nll"):
        return Adapter("mean_log_var", 2)
    if loss == "quantile":
        return Adapter("quantiles", len(params["quantiles"]), quantiles=tuple(params["quantiles"]))
    if loss in _LOG_LINK_LOSSES or (loss == "poisson_nll" and params.get("log_input", True)):
        return Adapter("log_rate", 1)
    if loss == "poisson_nll":
        return Adapter("rate", 1)
    return Adapter("point", 1)


def distribution_adapter(head: Head, spec: LossSpec) -> Adapter:
    """Logits over the classes, log-softmaxed for a loss that reads log-probabilities."""
    return Adapter(
        "distribution", head.num_classes or 2, log_probs_input=spec.params.get("input_format") == "log_probs"
    )


# Feature-blind predictions, whose score is a head's chance level in joint trials.


def class_frequencies(data: TrialData) -> dict[str, Tensor]:
    """The class frequencies of the rows, for every row."""
    counts = torch.bincount(data.y, minlength=data.head.num_classes or 2).double()
    return {"proba": (counts / data.rows).expand(data.rows, -1)}


def mean_target(data: TrialData) -> dict[str, Tensor]:
    """The label rates (multilabel) or the mean distribution, for every row."""
    return {"proba": data.y.double().mean(0).expand(data.rows, -1)}


def target_moments(data: TrialData) -> dict[str, Tensor]:
    """The target's mean with its variance (the variance feeds nll and the pinball interval)."""
    target = data.y.double()
    return {
        "value": target.mean().expand(data.rows),
        "variance": target.var(unbiased=False).expand(data.rows),
    }


# Synthetic generators: (inputs, targets) matching a head's description.


def _class_labels(histogram: list[int], rows: int, rng: np.random.Generator) -> np.ndarray:
    """Labels with the histogram's proportions (every present class at least twice, so it can be split)."""
    shares = np.asarray(histogram, dtype=float) / sum(histogram)
    counts = np.floor(shares * rows).astype(int)
    counts[(np.asarray(histogram) > 0) & (counts < 2)] = 2
    counts[np.argmax(counts)] += rows - counts.sum()
    return rng.permutation(np.repeat(np.arange(len(histogram)), counts))


def _flip(labels: np.ndarray, classes: int, head: Head, rng: np.random.Generator) -> np.ndarray:
    """Flip the stated share of labels: to a random other class (symmetric) or to the next (asymmetric)."""
    if head.label_noise is None or head.label_noise.rate == 0:
        return labels
    flipped = labels.copy()
    chosen = rng.random(len(labels)) < head.label_noise.rate
    if head.label_noise.kind == "asymmetric":
        flipped[chosen] = (labels[chosen] + 1) % classes
    else:
        flipped[chosen] = (labels[chosen] + rng.integers(1, classes, chosen.sum())) % classes
    return flipped


def _class_clusters(
    head: Head, task: TaskDescription, limit: int, seed: int, *, ordered: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian class clusters (``ordered``: their centres along a line) with the stated histogram and noise."""
    rng = np.random.default_rng(seed)
    classes = head.num_classes or 2
    histogram = head.class_histogram or [1] * classes
    labels = _class_labels(histogram, synthetic_rows(task, limit), rng)
    dim = _features(task)
    if ordered:
        direction = rng.normal(size=dim) / math.sqrt(dim)
        centres = np.outer(np.arange(classes) - (classes - 1) / 2, direction) * 2.0
    else:
        centres = rng.normal(size=(classes, dim)) * 1.2 / math.sqrt(dim) * 2
    x = centres[labels] + rng.normal(size=(len(labels), dim))
    return x.astype(np.float32), _flip(labels, classes, head, rng)


def classification(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian class clusters with the stated histogram and noise."""
    return _class_clusters(head, task, limit, seed, ordered=False)


def ordinal(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian class clusters along a line, in class order, with the stated histogram and noise."""
    return _class_clusters(head, task, limit, seed, ordered=True)


def multilabel(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels from thresholded noisy linear scores, thresholds set to give each label its positive rate."""
    rng = np.random.default_rng(seed)
    rates = head.positive_rates or [0.3] * (head.num_classes or 2)
    rows, dim = synthetic_rows(task, limit), _features(task)
    x = rng.normal(size=(rows, dim))
    scores = x @ rng.normal(size=(dim, len(rates))) / math.sqrt(dim) + 0.5 * rng.normal(
        size=(rows, len(rates))
    )
    thresholds = [np.quantile(scores[:, j], 1 - max(min(r, 0.999), 0.001)) for j, r in enumerate(rates)]
    labels = (scores > np.asarray(thresholds)).astype(np.float32)
    return x.astype(np.float32), labels


def regression(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth nonlinear signal plus noise (heteroscedastic when stated) and gross outliers at the stated
    fraction, rescaled to the stated mean and variance."""
    rng = np.random.default_rng(seed)
    summary = head.target
    rows, dim = synthetic_rows(task, limit), _features(task)
    x = rng.normal(size=(rows, dim))
    w = rng.normal(size=dim) / math.sqrt(dim)
    signal = x @ w + 0.5 * np.sin(2 * x[:, 0]) + 0.3 * x[:, 1] * x[:, 2 % dim]
    if head.metric in DEVIANCE_METRICS or (summary is not None and (summary.minimum or -1.0) >= 0):
        return x.astype(np.float32), _non_negative(signal, summary, rng).astype(np.float32)
    heteroscedastic = summary is not None and (summary.heteroscedasticity_pvalue or 1.0) < 0.05
    noise_scale = 0.3 * (1 + 1.5 * np.abs(x[:, 0])) if heteroscedastic else 0.3
    y = signal + noise_scale * rng.normal(size=rows)
    fraction = (summary.outlier_fraction or 0.0) if summary else 0.0
    outliers = rng.random(rows) < fraction
    y[outliers] += rng.choice([-1, 1], outliers.sum()) * rng.uniform(6, 12, outliers.sum()) * y.std()
    mean = summary.mean if summary and summary.mean is not None else 0.0
    sd = math.sqrt(summary.variance) if summary and summary.variance else 1.0
    y = (y - y.mean()) / (y.std() + 1e-12) * sd + mean
    return x.astype(np.float32), y.astype(np.float32)


def _non_negative(signal: np.ndarray, summary: TargetSummary | None, rng: np.random.Generator) -> np.ndarray:
    """A skewed positive target (log-linear mean, gamma noise) with exact zeros at the stated share,
    rescaled to the stated mean."""
    y = np.exp(0.7 * signal) * rng.gamma(2.0, 0.5, len(signal))
    zero_share = (summary.zero_share or 0.0) if summary else 0.0
    y[rng.random(len(y)) < zero_share] = 0.0
    mean = summary.mean if summary and summary.mean else 1.0
    return y / (y.mean() + 1e-12) * mean


def counts(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-linear rates; negative-binomial noise for the stated dispersion; zero inflation for the stated
    zero share."""
    rng = np.random.default_rng(seed)
    summary = head.target
    rows, dim = synthetic_rows(task, limit), _features(task)
    x = rng.normal(size=(rows, dim))
    mean = summary.mean if summary and summary.mean else 3.0
    dispersion = summary.variance / mean if summary and summary.variance and mean > 0 else 1.0
    zero_share = summary.zero_share if summary and summary.zero_share is not None else None
    expected_zeros = math.exp(-mean)
    inflate = 0.0 if zero_share is None else max(0.0, (zero_share - expected_zeros) / (1 - expected_zeros))
    base_mean = mean / max(1 - inflate, 1e-6)
    linear = x @ (rng.normal(size=dim) * 0.5 / math.sqrt(dim))
    rate = base_mean * np.exp(linear - linear.mean()) / np.mean(np.exp(linear - linear.mean()))
    if dispersion > 1.05:
        shape = base_mean / (dispersion - 1)
        rate = rng.gamma(shape, rate / shape)
    y = rng.poisson(rate).astype(np.float32)
    y[rng.random(rows) < inflate] = 0
    return x.astype(np.float32), y


def distribution(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft targets: a softmax of noisy linear scores."""
    rng = np.random.default_rng(seed)
    classes, rows, dim = head.num_classes or 4, synthetic_rows(task, limit), _features(task)
    x = rng.normal(size=(rows, dim))
    scores = x @ rng.normal(size=(dim, classes)) / math.sqrt(dim) * 2 + 0.3 * rng.normal(size=(rows, classes))
    target = np.exp(scores - scores.max(1, keepdims=True))
    return x.astype(np.float32), (target / target.sum(1, keepdims=True)).astype(np.float32)


REGRESSION = KindTrials(adapter=value_adapter, generate=regression, model=mlp, blind=target_moments)
COUNT = KindTrials(adapter=value_adapter, generate=counts, model=mlp, blind=target_moments)
BINARY = KindTrials(adapter=binary_adapter, generate=classification, model=mlp, blind=class_frequencies)
MULTICLASS = KindTrials(adapter=class_adapter, generate=classification, model=mlp, blind=class_frequencies)
ORDINAL = KindTrials(adapter=class_adapter, generate=ordinal, model=mlp, blind=class_frequencies)
MULTILABEL = KindTrials(adapter=multilabel_adapter, generate=multilabel, model=mlp, blind=mean_target)
DISTRIBUTION = KindTrials(adapter=distribution_adapter, generate=distribution, model=mlp, blind=mean_target)

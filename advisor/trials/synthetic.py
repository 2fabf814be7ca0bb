"""Synthetic trial data that matches a head's description, for description-only requests.

Each generator follows the stated statistics: class histogram and feature count, label noise at the stated
rate, regression outliers at the stated fraction and heteroscedastic noise when stated, counts with the
stated mean, dispersion and zero share, multilabel positive rates, segmentation masks with the stated
foreground shares, audio clips at the stated sample rate. Deterministic for a given seed.
"""

from __future__ import annotations

import math

import numpy as np

from advisor.heads import DEVIANCE_METRICS
from advisor.task import Head, TargetSummary, TaskDescription

DEFAULT_ROWS = 4000
IMAGE_SIZE = 24
AUDIO_SECONDS = 0.128
DEFAULT_SAMPLE_RATE = 16_000  # Hz, of an audio head that states none
# Dense heads train a small conv net per member; these row caps keep a trial within seconds on two cores.
MAX_IMAGES = 600
MAX_CLIPS = 128


def _rows(task: TaskDescription, limit: int) -> int:
    return int(min(task.n_samples or DEFAULT_ROWS, limit))


def _features(task: TaskDescription) -> int:
    return int(min(max(task.n_features or 16, 4), 64))


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


def classification(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian class clusters (along a line for ordinal heads) with the stated histogram and noise."""
    rng = np.random.default_rng(seed)
    classes = head.num_classes or 2
    histogram = head.class_histogram or [1] * classes
    labels = _class_labels(histogram, _rows(task, limit), rng)
    dim = _features(task)
    if head.type == "ordinal":
        direction = rng.normal(size=dim) / math.sqrt(dim)
        centres = np.outer(np.arange(classes) - (classes - 1) / 2, direction) * 2.0
    else:
        centres = rng.normal(size=(classes, dim)) * 1.2 / math.sqrt(dim) * 2
    x = centres[labels] + rng.normal(size=(len(labels), dim))
    return x.astype(np.float32), _flip(labels, classes, head, rng)


def multilabel(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels from thresholded noisy linear scores, thresholds set to give each label its positive rate."""
    rng = np.random.default_rng(seed)
    rates = head.positive_rates or [0.3] * (head.num_classes or 2)
    rows, dim = _rows(task, limit), _features(task)
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
    rows, dim = _rows(task, limit), _features(task)
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
    rows, dim = _rows(task, limit), _features(task)
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
    classes, rows, dim = head.num_classes or 4, _rows(task, limit), _features(task)
    x = rng.normal(size=(rows, dim))
    scores = x @ rng.normal(size=(dim, classes)) / math.sqrt(dim) * 2 + 0.3 * rng.normal(size=(rows, classes))
    target = np.exp(scores - scores.max(1, keepdims=True))
    return x.astype(np.float32), (target / target.sum(1, keepdims=True)).astype(np.float32)


def segmentation(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images with elliptic blobs per foreground class covering the stated share of pixels, on noise."""
    rng = np.random.default_rng(seed)
    classes = head.num_classes or 2
    shares = head.foreground_shares or [0.1] * (classes - 1)
    rows, size = min(_rows(task, limit), MAX_IMAGES), IMAGE_SIZE
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((rows, size, size), dtype=np.int64)
    for c, share in enumerate(shares, start=1):
        area = max(share, 1.0 / size**2) * size * size
        radius = np.sqrt(area / math.pi) * rng.uniform(0.7, 1.3, rows)
        centres = rng.uniform(radius[:, None], size - radius[:, None], (rows, 2))
        inside = ((yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2) <= radius[
            :, None, None
        ] ** 2
        masks[inside] = c
    intensity = np.linspace(0.0, 1.5, classes)[masks]
    images = intensity + 0.6 * rng.normal(size=masks.shape)
    return images[:, None].astype(np.float32), masks


def audio(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Denoising clips at the stated sample rate: harmonic tones with envelopes, plus noise at about 5 dB."""
    rng = np.random.default_rng(seed)
    rate = head.sample_rate or DEFAULT_SAMPLE_RATE
    rows, length = min(_rows(task, limit), MAX_CLIPS), int(rate * AUDIO_SECONDS)
    t = np.arange(length) / rate
    base = rng.uniform(110, min(2000, rate / 8), (rows, 1))
    clean = sum(
        np.sin(2 * math.pi * base * k * t + rng.uniform(0, 2 * math.pi, (rows, 1))) / k for k in (1, 2, 3)
    )
    clean *= np.exp(-t * rng.uniform(1, 8, (rows, 1)))
    noisy = clean + rng.normal(size=clean.shape) * clean.std() * 10 ** (-5 / 20)
    return noisy[:, None].astype(np.float32), clean[:, None].astype(np.float32)


GENERATORS = {
    "binary": classification,
    "multiclass": classification,
    "ordinal": classification,
    "multilabel": multilabel,
    "regression": regression,
    "count": counts,
    "distribution": distribution,
    "segmentation": segmentation,
    "audio": audio,
}


def generate(head: Head, task: TaskDescription, *, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) for ``head`` with at most ``rows`` rows."""
    return GENERATORS[head.type](head, task, rows, seed)

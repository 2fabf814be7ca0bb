"""Facts: the flat, named quantities about one head that rule conditions compare.

Every fact is derived from a :class:`~advisor.task.TaskDescription` and one of its heads; a fact is ``None``
when the description does not say (and any comparison on it is then false, except ``is_set: false``).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor.heads import RANKING_METRICS, HeadType, Metric, MetricKind, metric_kind
from advisor.task import IMBALANCE_THRESHOLD, Head, TaskDescription

Share = Annotated[float, Field(ge=0, le=1)]
SEVERE_IMBALANCE = 20.0
# Counts are overdispersed above this variance / mean (selection.md: <= 1.5 is Poisson-like).
OVERDISPERSION_THRESHOLD = 1.5
# Segmentation objects whose median area is below this share of the image are small (the 1% line selection.md
# draws for foreground shares); a class with at least this share of its pixels on a boundary is thin when its
# objects are not small: a line w pixels wide has about 2 / w of its pixels on a boundary, a disc of radius r
# about 2 / r, so 0.5 means lines up to about 4 pixels wide.
SMALL_OBJECT_SHARE = 0.01
THIN_BOUNDARY_SHARE = 0.5


class Facts(BaseModel):
    """The facts rules may name. Field descriptions are the documentation ``advisor-cli rules facts`` shows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    head_type: HeadType = Field(description="Type of the head.")
    metric: Metric = Field(description="Metric the head is judged by.")
    metric_kind: MetricKind = Field(
        description="What the metric judges: class_balanced (balanced_accuracy, macro_f1), thresholded "
        "(accuracy), threshold_free (average_precision, roc_auc, log_loss, brier, map), deviance "
        "(poisson_deviance, tweedie_deviance, gamma_deviance) or other."
    )
    ranking_metric: bool = Field(
        description="The metric depends only on the order of the scores (average_precision, roc_auc, map): "
        "no threshold, temperature or two-class logit shift can change it."
    )
    n_heads: int = Field(ge=1, description="Number of heads in the task.")
    n_samples: int | None = Field(None, ge=1, description="Training rows.")
    n_features: int | None = Field(None, ge=0, description="Encoded input features.")
    num_classes: int | None = Field(None, ge=2, description="Classes, or labels of a multilabel head.")
    imbalance_ratio: float | None = Field(None, ge=1, description="n_max / n_min over the class histogram.")
    imbalance: Literal["none", "moderate", "severe"] | None = Field(
        None, description="Imbalance level: ratio < 3 none, 3-20 moderate, > 20 severe."
    )
    long_tail: bool | None = Field(
        None, description="At least 10 classes and an imbalance ratio of at least 10."
    )
    min_class_count: int | None = Field(None, ge=0, description="Smallest class count.")
    minority_share: Share | None = Field(None, description="Share of the smallest class.")
    label_noise_rate: Share | None = Field(None, description="Known share of wrong labels.")
    label_noise_kind: Literal["symmetric", "asymmetric", "unknown"] | None = Field(
        None, description="Kind of known label noise."
    )
    calibration_needed: bool = Field(description="Calibrated probabilities are needed.")
    intervals_needed: bool = Field(description="Prediction intervals are needed.")
    outputs_log_probs: bool = Field(description="The classification head ends in log_softmax, not logits.")
    outlier_fraction: Share | None = Field(
        None, description="Share of robust-fit residuals beyond 3.5 scales."
    )
    heteroscedastic: bool | None = Field(None, description="Breusch-Pagan p < 0.05 on quick-fit residuals.")
    dispersion: float | None = Field(None, ge=0, description="Variance / mean of a count target.")
    overdispersed: bool | None = Field(None, description="Count dispersion above 1.5.")
    zero_share: Share | None = Field(None, description="Share of targets exactly 0.")
    excess_zeros: bool | None = Field(
        None, description="Zero share clearly above the Poisson expectation exp(-mean)."
    )
    non_negative: bool | None = Field(None, description="The target is never below 0.")
    min_positive_rate: Share | None = Field(
        None, description="Smallest per-label positive rate (multilabel)."
    )
    label_imbalance: float | None = Field(
        None, ge=0, description="Largest negatives / positives ratio over labels (multilabel)."
    )
    label_cardinality: float | None = Field(
        None,
        ge=0,
        description="Mean number of labels per row (multilabel): stated, or the sum of the positive rates.",
    )
    no_label_share: Share | None = Field(None, description="Share of rows without any label (multilabel).")
    min_foreground_share: Share | None = Field(
        None, description="Smallest foreground class share (segmentation)."
    )
    max_absent_share: Share | None = Field(
        None,
        description="Largest share of images in which a foreground class is absent (segmentation; high: many "
        "empty masks).",
    )
    min_object_share: Share | None = Field(
        None,
        description="Smallest median object area over the foreground classes, as a share of the image "
        f"(segmentation; small objects below {SMALL_OBJECT_SHARE:g}).",
    )
    max_boundary_share: Share | None = Field(
        None, description="Largest share of a foreground class's pixels on its boundary (segmentation)."
    )
    thin_structures: bool | None = Field(
        None,
        description=f"A foreground class has at least {THIN_BOUNDARY_SHARE:g} of its pixels on a boundary and "
        f"objects that are not small (median area at least {SMALL_OBJECT_SHARE:g} of the image, when known): "
        "lines or vessels a few pixels wide (segmentation).",
    )
    overlapping_classes: bool = Field(
        description="Segmentation classes overlap (multi-label masks, one 0/1 channel per class, no background): "
        "every loss must be a per-channel sigmoid on (N, K, H, W) targets; false for every other head."
    )
    sample_rate: int | None = Field(None, gt=0, description="Audio sample rate in Hz.")
    input_snr_db: float | None = Field(
        None,
        description="Median SNR of the input clips against their targets in dB (audio, profiled): low for noisy "
        "mixtures (enhancement, separation), high when the input is nearly the target.",
    )


def _imbalance_level(ratio: float | None) -> str | None:
    if ratio is None:
        return None
    return "none" if ratio < IMBALANCE_THRESHOLD else "moderate" if ratio <= SEVERE_IMBALANCE else "severe"


def _thin_structures(head: Head) -> bool | None:
    """Whether a foreground class is mostly boundary without being small (None without boundary shares)."""
    if not head.boundary_shares:
        return None
    sizes = head.median_object_shares or [None] * len(head.boundary_shares)
    return any(
        boundary >= THIN_BOUNDARY_SHARE and (size is None or size >= SMALL_OBJECT_SHARE)
        for boundary, size in zip(head.boundary_shares, sizes, strict=True)
    )


def facts_for(task: TaskDescription, head: Head) -> Facts:
    """The facts of ``head`` within ``task``."""
    histogram, summary, rates = head.class_histogram, head.target, head.positive_rates
    ratio = head.imbalance_ratio
    mean = summary.mean if summary else None
    counted = head.kind.counts and summary is not None and summary.variance is not None
    dispersion = summary.variance / mean if counted and mean is not None and mean > 0 else None
    zero_share = summary.zero_share if summary else None
    excess_zeros = None
    if head.kind.counts and zero_share is not None and mean is not None and mean >= 0:
        expected = math.exp(-mean)
        excess_zeros = zero_share > 1.5 * expected and zero_share - expected > 0.05
    pvalue = summary.heteroscedasticity_pvalue if summary else None
    # A multilabel head's mean labels per row is the sum of its positive rates when it does not state it.
    cardinality = head.label_cardinality
    if cardinality is None and rates:
        cardinality = sum(rates)
    return Facts(
        head_type=head.type,
        metric=head.metric,
        metric_kind=metric_kind(head.metric),
        ranking_metric=head.metric in RANKING_METRICS,
        n_heads=len(task.heads),
        n_samples=task.n_samples,
        n_features=task.n_features,
        num_classes=head.num_classes,
        imbalance_ratio=ratio,
        imbalance=_imbalance_level(ratio),
        long_tail=None if ratio is None else (head.num_classes or 0) >= 10 and ratio >= 10,
        min_class_count=min(histogram) if histogram else None,
        minority_share=min(histogram) / sum(histogram) if histogram else None,
        label_noise_rate=head.label_noise.rate if head.label_noise else None,
        label_noise_kind=head.label_noise.kind if head.label_noise else None,
        calibration_needed=head.calibration_needed,
        intervals_needed=head.intervals_needed,
        outputs_log_probs=head.outputs_log_probs,
        outlier_fraction=summary.outlier_fraction if summary else None,
        heteroscedastic=None if pvalue is None else pvalue < 0.05,
        dispersion=dispersion,
        overdispersed=None if dispersion is None else dispersion > OVERDISPERSION_THRESHOLD,
        zero_share=zero_share,
        excess_zeros=excess_zeros,
        non_negative=None if not summary or summary.minimum is None else summary.minimum >= 0,
        min_positive_rate=min(rates) if rates else None,
        label_imbalance=max((1 - p) / max(p, 1e-12) for p in rates) if rates and max(rates) > 0 else None,
        label_cardinality=cardinality,
        no_label_share=head.no_label_share,
        min_foreground_share=min(head.foreground_shares) if head.foreground_shares else None,
        max_absent_share=max(head.absent_shares) if head.absent_shares else None,
        min_object_share=min(head.median_object_shares) if head.median_object_shares else None,
        max_boundary_share=max(head.boundary_shares) if head.boundary_shares else None,
        thin_structures=_thin_structures(head),
        overlapping_classes=head.overlapping_classes,
        sample_rate=head.sample_rate,
        input_snr_db=head.input_snr_db,
    )

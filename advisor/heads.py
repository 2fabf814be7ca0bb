"""Head types and the metrics each can be judged by: plain constants shared by the catalog and the tasks.

Each head type is a :class:`HeadKind`, the one place for what the advisor knows about it apart from the losses
that serve it (those are the catalog's): its metrics and default metric, which :class:`~advisor.task.Head`
statistics apply, what its targets are, its data layout, and by reference its trial side (output adapter,
synthetic generator, trial net, data preparation: :class:`advisor.trials.kinds.KindTrials`) and its profiling
reader (:class:`advisor.profiling.common.DataReader`). The references are loaded on first use, so this module
imports neither torch nor numpy. A new head type is one :func:`register_kind` call plus the modules its
references name; task validation, the trials and profiling then pick it up.
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

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

DataLayout = Literal["table", "image", "waveform"]


@dataclass(frozen=True, kw_only=True)
class HeadKind:
    """What the advisor knows about one head type (see the module docstring).

    ``trials`` and ``reader`` are ``"module:attribute"`` references, loaded with :func:`resolve` when first
    needed (trials import torch, readers pandas).
    """

    name: str
    # The metrics that fit; the first is the default for balanced data.
    metrics: tuple[str, ...]
    # The default when classes are imbalanced (ratio >= 3): accuracy-like metrics hide the minority.
    imbalanced_metric: str | None = None
    # The Head statistics and traits that apply (a Head field beside name, type, num_classes and metric); one
    # stated for a head type it does not apply to is an error, not ignored.
    fields: tuple[str, ...] = ()
    classes: int | None = None  # a fixed number of classes (binary: 2)
    needs_classes: bool = False  # num_classes must be stated or follow from a histogram, rates or shares
    # One class index per row: splits stratify on it, logit adjustment reads its priors, and its chance level
    # predicts the class frequencies.
    class_labels: bool = False
    integer_targets: bool = False  # targets are class indices (of rows or of pixels), kept as int64
    counts: bool = False  # targets count events: rules read their dispersion and zero share against a Poisson
    # Trials standardise the target (and parameters in target units with it); the result says so.
    rescaled_target: bool = False
    # What one input is: a feature row, an image (C, H, W) or a waveform (C, T). Image and waveform heads are
    # dense: a row costs far more, so they train in small batches, and joint multi-task trials take tables only.
    layout: DataLayout = "table"
    # Whether people commonly stop this head type's training early on a validation metric: the default
    # protocols then rank under early stopping as well as the best epoch of the budget. Segmentation nets
    # train a fixed budget and keep the best checkpoint (nnU-Net 1,000 epochs; MONAI's tutorials), and a
    # loss that starts slowly (Dice + CE on small objects, flat for 10 epochs) is not wrongly ranked last.
    early_stopping: bool = True
    trials: str  # an advisor.trials.kinds.KindTrials: adapter, synthetic data, trial net, trial rows
    reader: str | None = None  # an advisor.profiling.common.DataReader; None: the head type is only described

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in get_args(Metric)]
        if not self.metrics or unknown:
            raise ValueError(f"head kind {self.name!r}: metrics {list(self.metrics)} must be known metrics")
        if self.imbalanced_metric is not None and self.imbalanced_metric not in self.metrics:
            raise ValueError(f"head kind {self.name!r}: imbalanced_metric must be one of its metrics")
        if self.layout not in get_args(DataLayout):
            raise ValueError(
                f"head kind {self.name!r}: layout {self.layout!r} is not one of {get_args(DataLayout)}"
            )

    @property
    def dense(self) -> bool:
        """Images or waveforms rather than feature rows: the batch size class of its trials."""
        return self.layout != "table"


_KINDS: dict[str, HeadKind] = {}


def register_kind(kind: HeadKind) -> HeadKind:
    """Make ``kind`` a head type that task validation, the trials and profiling pick up; returns it."""
    if kind.name in _KINDS:
        raise ValueError(f"head kind {kind.name!r} is registered already")
    _KINDS[kind.name] = kind
    return kind


def head_kind(name: str) -> HeadKind:
    """The registered kind named ``name`` (KeyError for an unknown one)."""
    return _KINDS[name]


def head_kinds() -> tuple[HeadKind, ...]:
    """Every registered kind: the built-ins first, in the order of the gRPC HeadType enum."""
    return tuple(_KINDS.values())


@functools.cache
def resolve(reference: str) -> Any:
    """The object a ``"module:attribute"`` reference names, its module imported on first use."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


_TABLE = "advisor.profiling.tabular:READER"
# Per-foreground-class statistics of a segmentation head: one value per class, background left out (one per
# channel when the head's classes overlap: multi-label masks have no background class).
SEGMENTATION_STATISTICS = ("foreground_shares", "absent_shares", "median_object_shares", "boundary_shares")
_CLASS_FIELDS = ("class_histogram", "class_labels", "label_noise")
_TARGET_FIELDS = ("target", "intervals_needed", "tweedie_power")
# The built-in kinds, in the order of the gRPC HeadType enum (listings by head type follow it): new ones go last.
for _kind in (
    HeadKind(
        name="regression",
        metrics=("rmse", "mae", "nll", "pinball", "poisson_deviance", "tweedie_deviance", "gamma_deviance"),
        fields=_TARGET_FIELDS,
        rescaled_target=True,
        trials="advisor.trials.tabular:REGRESSION",
        reader=_TABLE,
    ),
    HeadKind(
        name="binary",
        metrics=(
            "roc_auc",
            "average_precision",
            "accuracy",
            "balanced_accuracy",
            "macro_f1",
            "log_loss",
            "brier",
        ),
        imbalanced_metric="average_precision",
        fields=(*_CLASS_FIELDS, "calibration_needed"),
        classes=2,
        class_labels=True,
        integer_targets=True,
        trials="advisor.trials.tabular:BINARY",
        reader=_TABLE,
    ),
    HeadKind(
        name="multiclass",
        metrics=("accuracy", "balanced_accuracy", "macro_f1", "log_loss"),
        imbalanced_metric="balanced_accuracy",
        fields=(*_CLASS_FIELDS, "calibration_needed", "outputs_log_probs"),
        needs_classes=True,
        class_labels=True,
        integer_targets=True,
        trials="advisor.trials.tabular:MULTICLASS",
        reader=_TABLE,
    ),
    HeadKind(
        name="multilabel",
        metrics=("map", "macro_f1", "roc_auc", "log_loss"),
        fields=(
            "positive_rates",
            "class_labels",
            "label_cardinality",
            "no_label_share",
            "label_noise",
            "calibration_needed",
        ),
        needs_classes=True,
        trials="advisor.trials.tabular:MULTILABEL",
        reader=_TABLE,
    ),
    HeadKind(
        name="ordinal",
        metrics=("mae", "accuracy", "balanced_accuracy", "macro_f1"),
        imbalanced_metric="mae",
        fields=(*_CLASS_FIELDS, "outputs_log_probs"),
        needs_classes=True,
        class_labels=True,
        integer_targets=True,
        trials="advisor.trials.tabular:ORDINAL",
        reader=_TABLE,
    ),
    HeadKind(
        name="count",
        metrics=("poisson_deviance", "mae", "rmse", "tweedie_deviance"),
        fields=_TARGET_FIELDS,
        counts=True,
        trials="advisor.trials.tabular:COUNT",
        reader=_TABLE,
    ),
    HeadKind(
        name="segmentation",
        metrics=("dice", "iou"),
        fields=(*SEGMENTATION_STATISTICS, "overlapping_classes", "label_noise", "outputs_log_probs"),
        needs_classes=True,
        integer_targets=True,
        layout="image",
        early_stopping=False,
        trials="advisor.trials.segmentation:SEGMENTATION",
        reader="advisor.profiling.images:READER",
    ),
    HeadKind(
        name="audio",
        metrics=("si_sdr", "snr", "esr"),
        fields=(
            "sample_rate",
            "median_duration_s",
            "rms_dbfs",
            "input_snr_db",
            "spectral_centroid_hz",
            "spectral_bandwidth_hz",
        ),
        layout="waveform",
        trials="advisor.trials.audio:AUDIO",
        reader="advisor.profiling.audio:READER",
    ),
    HeadKind(
        name="distribution", metrics=("kl",), needs_classes=True, trials="advisor.trials.tabular:DISTRIBUTION"
    ),
):
    register_kind(_kind)

# The built-in head types (what the catalog's losses and the gRPC enum name) and their metrics, by name.
HEAD_TYPES: tuple[str, ...] = tuple(_KINDS)
HeadType = Literal[HEAD_TYPES]  # type: ignore[valid-type]  # the rules' head_type fact: a choice of these
METRICS_BY_HEAD: dict[str, tuple[str, ...]] = {kind.name: kind.metrics for kind in head_kinds()}
# Audio trial clips are at least this long, and synthetic ones exactly: the STFT losses pad each frame by half an
# FFT, which must be shorter than the clip, and the largest FFT the rules derive is about 0.12 s at any rate. The
# profiler crops the user's clips to it, the trials generate theirs with it.
AUDIO_TRIAL_SECONDS = 0.128

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

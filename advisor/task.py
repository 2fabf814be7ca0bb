"""What the user tells us about the task: output heads, their statistics, metric and known traits.

A :class:`TaskDescription` comes from the user directly (Python, JSON, gRPC) or from profiling their data
(:func:`advisor.profile`). Everything is validated here, at the boundary; the rest of the advisor trusts it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from advisor.errors import AdvisorError
from advisor.heads import (
    DEFAULT_TWEEDIE_POWER,
    DEVIANCE_METRICS,
    SEGMENTATION_STATISTICS,
    TWEEDIE_POWER_RANGE,
    HeadKind,
    Metric,
    deviance_power,
    head_kind,
    head_kinds,
)
from advisor.spec import check_depth, loads_json, violations_from_pydantic

# Limits on what a description may state, so every request's work is bounded (each violation names its limit).
MAX_CLASSES = 10_000
MAX_HEADS = 64
MAX_NAME_LENGTH = 256
MAX_SAMPLE_RATE = 768_000  # Hz: the highest rate audio interfaces offer
# Bounds of profiled audio levels in dB: float32 rounding alone leaves a residual about 150 dB below a signal, and
# a silent clip (or an exact match) is stated as the bound rather than as an infinite ratio.
MAX_SNR_DB = 200.0
MIN_DBFS, MAX_DBFS = -200.0, 200.0
MAX_COUNT = 2**53  # counts stay exact as floats
MAX_NOTES = 1_000
# How far a stated label cardinality may stray from the sum of the stated positive rates, per label: rates
# rounded to two decimals.
RATE_ROUNDING = 0.005

Share = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Name = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
# An imbalance ratio at or above this is "imbalanced" (selection.md: < 3 none, 3-20 moderate, > 20 severe).
IMBALANCE_THRESHOLD = 3.0


class TaskError(AdvisorError):
    """A task description that does not validate; each violation names the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LabelNoise(_Model):
    """Known label noise of a classification head."""

    rate: Share = Field(description="Estimated share of wrong labels.")
    kind: Literal["symmetric", "asymmetric", "unknown"] = Field(
        "unknown", description="Symmetric: flips to any class alike; asymmetric: to similar classes."
    )


class TargetSummary(_Model):
    """Statistics of a numeric (regression or count) target."""

    mean: float | None = Field(None, description="Mean of the target.")
    variance: float | None = Field(None, ge=0, description="Variance of the target.")
    minimum: float | None = Field(None, description="Smallest target value.")
    maximum: float | None = Field(None, description="Largest target value.")
    zero_share: Share | None = Field(None, description="Share of targets exactly 0.")
    outlier_fraction: Share | None = Field(
        None, description="Share of robust-fit residuals beyond 3.5 robust scales from their median."
    )
    robust_scale: float | None = Field(
        None, gt=0, description="1.4826 x median absolute deviation of robust-fit residuals, in target units."
    )
    heteroscedasticity_pvalue: Share | None = Field(
        None,
        description="Breusch-Pagan p-value of the quick-fit residuals (small: variance depends on inputs).",
    )

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> TargetSummary:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} exceeds maximum {self.maximum}")
        return self


def _check_deviance_target(
    metric: str, head_type: str, target: TargetSummary | None, tweedie_power: float | None
) -> None:
    """A deviance metric needs a non-negative target, and the gamma deviance (p = 2) a strictly positive one;
    a summary that shows otherwise is an error (no summary: nothing to check)."""
    if target is None:
        return
    power = deviance_power(metric, tweedie_power)
    where = f"metric {metric!r}" + (f" (tweedie_power {power:g})" if metric == "tweedie_deviance" else "")
    if target.minimum is not None and target.minimum < 0:
        raise ValueError(
            f"{where} needs a non-negative target, but the target summary has minimum {target.minimum:g}; "
            f"choose one of {', '.join(m for m in head_kind(head_type).metrics if m not in DEVIANCE_METRICS)} "
            "for a target that can be negative"
        )
    if power >= 2:
        problem = None
        if target.zero_share is not None and target.zero_share > 0:
            problem = f"zero_share {target.zero_share:g}"
        elif target.minimum is not None and target.minimum <= 0:
            problem = f"minimum {target.minimum:g}"
        if problem:
            raise ValueError(
                f"{where} needs a strictly positive target (zero_share 0 and minimum > 0), but the target "
                f"summary has {problem}; poisson_deviance or tweedie_deviance with 1 <= tweedie_power < 2 "
                "allow exact zeros"
            )


# The fields every head has; each other field applies to the head types whose kind lists it (HeadKind.fields).
COMMON_FIELDS = ("name", "type", "num_classes", "metric")


def _literal_choices(names: tuple[str, ...]) -> str:
    """``'a', 'b' or 'c'``, as pydantic lists a Literal's values."""
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


class Head(_Model):
    """One output head: its type, statistics, the metric it is judged by, and known traits."""

    name: str = Field(
        "target",
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Head name (a target column for profiled data).",
    )
    type: str = Field(description="What the head predicts: a registered head kind (advisor.heads).")
    num_classes: int | None = Field(
        None, ge=2, le=MAX_CLASSES, description="Classes (labels for multilabel); from the histogram."
    )
    class_histogram: list[Count] | None = Field(
        None, min_length=2, max_length=MAX_CLASSES, description="Count of each class, by index."
    )
    class_labels: list[Name] | None = Field(
        None, max_length=MAX_CLASSES, description="Display name of each class, by index."
    )
    positive_rates: list[Share] | None = Field(
        None, min_length=1, max_length=MAX_CLASSES, description="Share of positives per label."
    )
    label_cardinality: float | None = Field(
        None,
        ge=0,
        le=MAX_CLASSES,
        description="Mean number of labels per row (multilabel), at most num_classes: the sum of the positive "
        "rates.",
    )
    no_label_share: Share | None = Field(None, description="Share of rows without any label (multilabel).")
    target: TargetSummary | None = Field(None, description="Summary of a numeric target.")
    foreground_shares: list[Share] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CLASSES,
        description="Mean pixel share of each foreground class (background excluded).",
    )
    absent_shares: list[Share] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CLASSES,
        description="Share of images in which each foreground class has no pixel (empty masks).",
    )
    median_object_shares: list[Share] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CLASSES,
        description="Median area of each foreground class's objects (4-connected components), as a share of "
        "the image area (0 for a class without objects).",
    )
    boundary_shares: list[Share] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CLASSES,
        description="Share of each foreground class's pixels on its boundary (next to a pixel of another "
        "class): 1 for lines one or two pixels wide, small for large compact objects.",
    )
    overlapping_classes: bool = Field(
        False,
        description="Segmentation classes may overlap (multi-label masks, (N, K, H, W) 0/1 channels of which a "
        "pixel may be on in several): num_classes is the number of channels K, every channel is a foreground "
        "class (no background), each statistic has one value per channel, and every loss is a per-channel "
        "sigmoid on K output channels.",
    )
    sample_rate: int | None = Field(None, gt=0, le=MAX_SAMPLE_RATE, description="Audio sample rate in Hz.")
    median_duration_s: float | None = Field(
        None, gt=0, description="Median clip duration in seconds (audio)."
    )
    rms_dbfs: float | None = Field(
        None,
        ge=MIN_DBFS,
        le=MAX_DBFS,
        description="Median RMS level of the input clips in dB relative to full scale 1.0 (a full-scale sine is "
        "-3 dBFS).",
    )
    input_snr_db: float | None = Field(
        None,
        ge=-MAX_SNR_DB,
        le=MAX_SNR_DB,
        description="Median over clips of the input's SNR against its target, 10 log10(|target|^2 / |input - "
        "target|^2) in dB: low for noisy mixtures (enhancement, separation), high when the input is nearly the "
        "target.",
    )
    spectral_centroid_hz: float | None = Field(
        None,
        ge=0,
        description="Median spectral centroid of the target clips (magnitude-weighted mean frequency), Hz.",
    )
    spectral_bandwidth_hz: float | None = Field(
        None,
        ge=0,
        description="Median spectral bandwidth of the target clips (magnitude-weighted standard deviation of the "
        "frequency about the centroid), Hz.",
    )
    tweedie_power: float | None = Field(
        None,
        description=f"Tweedie power p, 1 <= p <= 2 (1 Poisson, 2 gamma), of the tweedie_deviance metric and of "
        f"Tweedie loss candidates; unset means {DEFAULT_TWEEDIE_POWER}.",
    )
    metric: Metric | None = Field(None, description="The metric the head is judged by; a default per type.")
    label_noise: LabelNoise | None = Field(None, description="Known label noise.")
    calibration_needed: bool = Field(False, description="Calibrated probabilities are needed.")
    intervals_needed: bool = Field(False, description="Prediction intervals are needed.")
    outputs_log_probs: bool = Field(
        False, description="The model's classification head already ends in log_softmax (not logits)."
    )

    @field_validator("type", mode="before")
    @classmethod
    def _registered_type(cls, value: Any) -> Any:
        """The head kinds are registered at run time, so the type is checked against the registry (with the
        message pydantic gives for a Literal)."""
        names = tuple(kind.name for kind in head_kinds())
        if not isinstance(value, str) or value not in names:
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": _literal_choices(names)}
            )
        return value

    @field_validator("*")
    @classmethod
    def _statistic_fits_type(cls, value: Any, info: ValidationInfo) -> Any:
        """A statistic or trait given for a head type it does not apply to is an error, not ignored."""
        head_type, field = info.data.get("type"), info.field_name
        given = value is not None and value is not False
        if given and head_type is not None and field not in (*COMMON_FIELDS, *head_kind(head_type).fields):
            allowed = [kind.name for kind in head_kinds() if field in kind.fields]
            raise ValueError(f"applies to {', '.join(allowed)} heads, not to a {head_type} head")
        return value

    @field_validator("tweedie_power")
    @classmethod
    def _tweedie_power_in_range(cls, power: float | None) -> float | None:
        low, high = TWEEDIE_POWER_RANGE
        if power is not None and not low <= power <= high:  # NaN fails too
            raise ValueError(
                f"tweedie_power {power!r} is outside [{low:g}, {high:g}]; allowed: a Tweedie power p with "
                f"{low:g} <= p <= {high:g} ({low:g} Poisson, {low:g} < p < {high:g} compound Poisson-gamma, "
                f"{high:g} gamma), or unset for {DEFAULT_TWEEDIE_POWER}"
            )
        return power

    @field_validator("metric")
    @classmethod
    def _metric_fits_type(cls, metric: str | None, info: ValidationInfo) -> str | None:
        head_type = info.data.get("type")
        if metric is not None and head_type is not None and metric not in head_kind(head_type).metrics:
            allowed = ", ".join(head_kind(head_type).metrics)
            raise ValueError(f"metric {metric!r} does not fit a {head_type} head; allowed: {allowed}")
        if metric in DEVIANCE_METRICS and head_type is not None:
            _check_deviance_target(metric, head_type, info.data.get("target"), info.data.get("tweedie_power"))
        return metric

    @model_validator(mode="after")
    def _frequencies_below_nyquist(self) -> Head:
        """A sampled signal holds no frequency above half its sample rate."""
        for name in ("spectral_centroid_hz", "spectral_bandwidth_hz"):
            value = getattr(self, name)
            if value is not None and self.sample_rate is not None and value > self.sample_rate / 2:
                raise ValueError(
                    f"{name} {value:g} exceeds the Nyquist frequency {self.sample_rate / 2:g} Hz of sample_rate "
                    f"{self.sample_rate}"
                )
        return self

    @model_validator(mode="after")
    def _consistent_sizes_and_defaults(self) -> Head:
        background = 0 if self.overlapping_classes else 1  # overlapping classes have no background class
        sizes = {
            "class_histogram": len(self.class_histogram or []) or None,
            "class_labels": len(self.class_labels or []) or None,
            "positive_rates": len(self.positive_rates or []) or None,
            # One value per foreground class: the background is left out.
            **{
                name: len(values) + background if (values := getattr(self, name)) else None
                for name in SEGMENTATION_STATISTICS
            },
        }
        known = {field: size for field, size in sizes.items() if size is not None}
        num_classes = self.num_classes or next(iter(known.values()), None)
        kind = self.kind
        if kind.classes is not None:
            num_classes = num_classes or kind.classes
            if num_classes != kind.classes:
                raise ValueError(f"a {self.type} head has {kind.classes} classes, got {num_classes}")
        for field, size in known.items():
            if size != num_classes:
                raise ValueError(f"{field} implies {size} classes but num_classes is {num_classes}")
        if kind.needs_classes and num_classes is None:
            raise ValueError(
                f"a {self.type} head needs num_classes or a histogram/rates/shares to derive it from"
            )
        if self.overlapping_classes and num_classes is not None and num_classes < 2:
            raise ValueError(
                f"overlapping_classes needs at least 2 classes (channels), got {num_classes}; allowed: 2 or more "
                "channels, or overlapping_classes false (one 0/1 channel is a binary mask, classes 0 and 1)"
            )
        if self.class_histogram is not None and sum(self.class_histogram) == 0:
            raise ValueError("class_histogram counts are all 0")
        object.__setattr__(self, "num_classes", num_classes)
        if self.metric is None:
            imbalanced = (self.imbalance_ratio or 1.0) >= IMBALANCE_THRESHOLD
            default = kind.imbalanced_metric if imbalanced else None
            object.__setattr__(self, "metric", default or kind.metrics[0])
        return self

    @model_validator(mode="after")
    def _label_counts_agree(self) -> Head:
        """Label cardinality, rows without a label and positive rates describe the same rows: a row has from 1
        to num_classes labels unless it has none, and the mean labels per row is the sum of the rates."""
        cardinality, empty, rates = self.label_cardinality, self.no_label_share, self.positive_rates
        labels = self.num_classes
        slack = RATE_ROUNDING * (labels or 1)
        if cardinality is not None and labels is not None and cardinality > labels:
            raise ValueError(f"label_cardinality {cardinality:g} exceeds num_classes {labels}: a row has at "
                             "most one of each label")  # fmt: skip
        if cardinality is not None and rates and abs(cardinality - sum(rates)) > slack:
            raise ValueError(
                f"label_cardinality {cardinality:g} disagrees with the sum {sum(rates):g} of positive_rates: the "
                "mean labels per row is that sum"
            )
        if empty is not None and cardinality is not None and cardinality < 1 - empty - slack:
            raise ValueError(
                f"label_cardinality {cardinality:g} is below 1 - no_label_share = {1 - empty:g}: every row with "
                "a label has at least one"
            )
        if empty is not None and rates and empty > 1 - max(rates) + RATE_ROUNDING:
            raise ValueError(
                f"no_label_share {empty:g} exceeds 1 - max(positive_rates) = {1 - max(rates):g}: the rows of the "
                "most frequent label have a label"
            )
        return self

    @property
    def kind(self) -> HeadKind:
        """What the advisor knows about this head's type (:class:`advisor.heads.HeadKind`)."""
        return head_kind(self.type)

    @property
    def imbalance_ratio(self) -> float | None:
        """n_max / n_min over the classes (a zero count counts as 1, so the ratio stays finite)."""
        if not self.class_histogram:
            return None
        return max(self.class_histogram) / max(min(self.class_histogram), 1)


class TaskDescription(_Model):
    """A task: one or more named heads, plus the data size when known.

    Parameters
    ----------
    heads : list of Head
        The model's output heads; names must be unique.
    n_samples, n_features : int, optional
        Rows and input features of the training data.
    source : {"description", "data"}
        Whether the statistics were stated by the user or profiled from data.
    notes : list of str
        What profiling did that the user should know (sampling, dropped columns, rows without a target).
    """

    heads: list[Head] = Field(min_length=1, max_length=MAX_HEADS, description="The model's output heads.")
    n_samples: int | None = Field(None, ge=1, le=MAX_COUNT, description="Training rows.")
    n_features: int | None = Field(None, ge=0, le=MAX_COUNT, description="Input features after encoding.")
    source: Literal["description", "data"] = Field("description", description="Stated or profiled.")
    notes: list[str] = Field(
        default_factory=list,
        max_length=MAX_NOTES,
        description="What profiling did (sampling, dropped columns).",
    )

    @field_validator("heads")
    @classmethod
    def _unique_names(cls, heads: list[Head]) -> list[Head]:
        counts = Counter(head.name for head in heads)
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"head names must be unique, repeated: {duplicates}")
        return heads

    def head(self, name: str) -> Head:
        for head in self.heads:
            if head.name == name:
                return head
        raise TaskError(f"heads: no head named {name!r}; heads are {[h.name for h in self.heads]}")


TaskLike = TaskDescription | Mapping[str, Any] | str


def parse_task(task: TaskLike, *, field: str = "") -> TaskDescription:
    """A :class:`TaskDescription` from itself, a mapping or JSON text; :class:`TaskError` names bad fields."""
    if isinstance(task, TaskDescription):
        return task
    if isinstance(task, str | bytes):
        task = loads_json(task, field=field or "task", error=TaskError)
    check_depth(task, field=field or "task", error=TaskError)
    try:
        return TaskDescription.model_validate(task)
    except ValidationError as exc:
        raise TaskError(violations_from_pydantic(exc, prefix=field)) from None

import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.longrunning import operations_pb2 as _operations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HeadType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEAD_TYPE_UNSPECIFIED: _ClassVar[HeadType]
    HEAD_TYPE_REGRESSION: _ClassVar[HeadType]
    HEAD_TYPE_BINARY: _ClassVar[HeadType]
    HEAD_TYPE_MULTICLASS: _ClassVar[HeadType]
    HEAD_TYPE_MULTILABEL: _ClassVar[HeadType]
    HEAD_TYPE_ORDINAL: _ClassVar[HeadType]
    HEAD_TYPE_COUNT: _ClassVar[HeadType]
    HEAD_TYPE_SEGMENTATION: _ClassVar[HeadType]
    HEAD_TYPE_AUDIO: _ClassVar[HeadType]
    HEAD_TYPE_DISTRIBUTION: _ClassVar[HeadType]

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    METRIC_ACCURACY: _ClassVar[Metric]
    METRIC_BALANCED_ACCURACY: _ClassVar[Metric]
    METRIC_MACRO_F1: _ClassVar[Metric]
    METRIC_AVERAGE_PRECISION: _ClassVar[Metric]
    METRIC_ROC_AUC: _ClassVar[Metric]
    METRIC_LOG_LOSS: _ClassVar[Metric]
    METRIC_BRIER: _ClassVar[Metric]
    METRIC_MAE: _ClassVar[Metric]
    METRIC_RMSE: _ClassVar[Metric]
    METRIC_POISSON_DEVIANCE: _ClassVar[Metric]
    METRIC_TWEEDIE_DEVIANCE: _ClassVar[Metric]
    METRIC_GAMMA_DEVIANCE: _ClassVar[Metric]
    METRIC_NLL: _ClassVar[Metric]
    METRIC_PINBALL: _ClassVar[Metric]
    METRIC_MAP: _ClassVar[Metric]
    METRIC_DICE: _ClassVar[Metric]
    METRIC_IOU: _ClassVar[Metric]
    METRIC_SI_SDR: _ClassVar[Metric]
    METRIC_SNR: _ClassVar[Metric]
    METRIC_ESR: _ClassVar[Metric]
    METRIC_KL: _ClassVar[Metric]

class StopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_REASON_UNSPECIFIED: _ClassVar[StopReason]
    STOP_REASON_EPOCHS: _ClassVar[StopReason]
    STOP_REASON_EARLY_STOPPING: _ClassVar[StopReason]
    STOP_REASON_TIME: _ClassVar[StopReason]
    STOP_REASON_CANCELLED: _ClassVar[StopReason]
    STOP_REASON_DIVERGED: _ClassVar[StopReason]
    STOP_REASON_NOT_RUN: _ClassVar[StopReason]

class EvidenceSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVIDENCE_SOURCE_UNSPECIFIED: _ClassVar[EvidenceSource]
    EVIDENCE_SOURCE_DATA: _ClassVar[EvidenceSource]
    EVIDENCE_SOURCE_SYNTHETIC: _ClassVar[EvidenceSource]
    EVIDENCE_SOURCE_RULES: _ClassVar[EvidenceSource]

class TaskSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_SOURCE_UNSPECIFIED: _ClassVar[TaskSource]
    TASK_SOURCE_DESCRIPTION: _ClassVar[TaskSource]
    TASK_SOURCE_DATA: _ClassVar[TaskSource]

class RecipeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECIPE_KIND_UNSPECIFIED: _ClassVar[RecipeKind]
    RECIPE_KIND_LOGIT_ADJUSTMENT: _ClassVar[RecipeKind]
    RECIPE_KIND_THRESHOLD: _ClassVar[RecipeKind]
    RECIPE_KIND_TEMPERATURE: _ClassVar[RecipeKind]

class Activation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVATION_UNSPECIFIED: _ClassVar[Activation]
    ACTIVATION_SOFTMAX: _ClassVar[Activation]
    ACTIVATION_SIGMOID: _ClassVar[Activation]
HEAD_TYPE_UNSPECIFIED: HeadType
HEAD_TYPE_REGRESSION: HeadType
HEAD_TYPE_BINARY: HeadType
HEAD_TYPE_MULTICLASS: HeadType
HEAD_TYPE_MULTILABEL: HeadType
HEAD_TYPE_ORDINAL: HeadType
HEAD_TYPE_COUNT: HeadType
HEAD_TYPE_SEGMENTATION: HeadType
HEAD_TYPE_AUDIO: HeadType
HEAD_TYPE_DISTRIBUTION: HeadType
METRIC_UNSPECIFIED: Metric
METRIC_ACCURACY: Metric
METRIC_BALANCED_ACCURACY: Metric
METRIC_MACRO_F1: Metric
METRIC_AVERAGE_PRECISION: Metric
METRIC_ROC_AUC: Metric
METRIC_LOG_LOSS: Metric
METRIC_BRIER: Metric
METRIC_MAE: Metric
METRIC_RMSE: Metric
METRIC_POISSON_DEVIANCE: Metric
METRIC_TWEEDIE_DEVIANCE: Metric
METRIC_GAMMA_DEVIANCE: Metric
METRIC_NLL: Metric
METRIC_PINBALL: Metric
METRIC_MAP: Metric
METRIC_DICE: Metric
METRIC_IOU: Metric
METRIC_SI_SDR: Metric
METRIC_SNR: Metric
METRIC_ESR: Metric
METRIC_KL: Metric
STOP_REASON_UNSPECIFIED: StopReason
STOP_REASON_EPOCHS: StopReason
STOP_REASON_EARLY_STOPPING: StopReason
STOP_REASON_TIME: StopReason
STOP_REASON_CANCELLED: StopReason
STOP_REASON_DIVERGED: StopReason
STOP_REASON_NOT_RUN: StopReason
EVIDENCE_SOURCE_UNSPECIFIED: EvidenceSource
EVIDENCE_SOURCE_DATA: EvidenceSource
EVIDENCE_SOURCE_SYNTHETIC: EvidenceSource
EVIDENCE_SOURCE_RULES: EvidenceSource
TASK_SOURCE_UNSPECIFIED: TaskSource
TASK_SOURCE_DESCRIPTION: TaskSource
TASK_SOURCE_DATA: TaskSource
RECIPE_KIND_UNSPECIFIED: RecipeKind
RECIPE_KIND_LOGIT_ADJUSTMENT: RecipeKind
RECIPE_KIND_THRESHOLD: RecipeKind
RECIPE_KIND_TEMPERATURE: RecipeKind
ACTIVATION_UNSPECIFIED: Activation
ACTIVATION_SOFTMAX: Activation
ACTIVATION_SIGMOID: Activation

class RecommendRequest(_message.Message):
    __slots__ = ("task", "dataset", "options")
    TASK_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    task: TaskDescription
    dataset: Dataset
    options: Options
    def __init__(self, task: _Optional[_Union[TaskDescription, _Mapping]] = ..., dataset: _Optional[_Union[Dataset, _Mapping]] = ..., options: _Optional[_Union[Options, _Mapping]] = ...) -> None: ...

class TaskDescription(_message.Message):
    __slots__ = ("heads", "n_samples", "n_features", "source", "task_source", "notes")
    HEADS_FIELD_NUMBER: _ClassVar[int]
    N_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    N_FEATURES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TASK_SOURCE_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    heads: _containers.RepeatedCompositeFieldContainer[Head]
    n_samples: int
    n_features: int
    source: str
    task_source: TaskSource
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, heads: _Optional[_Iterable[_Union[Head, _Mapping]]] = ..., n_samples: _Optional[int] = ..., n_features: _Optional[int] = ..., source: _Optional[str] = ..., task_source: _Optional[_Union[TaskSource, str]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class Head(_message.Message):
    __slots__ = ("name", "type", "head_type", "num_classes", "class_histogram", "class_labels", "positive_rates", "label_cardinality", "no_label_share", "target", "foreground_shares", "absent_shares", "median_object_shares", "boundary_shares", "overlapping_classes", "sample_rate", "median_duration", "rms_dbfs", "input_snr_db", "spectral_centroid_hz", "spectral_bandwidth_hz", "metric", "eval_metric", "label_noise", "calibration_needed", "intervals_needed", "outputs_log_probs", "tweedie_power")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HEAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CLASS_HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    CLASS_LABELS_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_RATES_FIELD_NUMBER: _ClassVar[int]
    LABEL_CARDINALITY_FIELD_NUMBER: _ClassVar[int]
    NO_LABEL_SHARE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FOREGROUND_SHARES_FIELD_NUMBER: _ClassVar[int]
    ABSENT_SHARES_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_OBJECT_SHARES_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_SHARES_FIELD_NUMBER: _ClassVar[int]
    OVERLAPPING_CLASSES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_DURATION_FIELD_NUMBER: _ClassVar[int]
    RMS_DBFS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SNR_DB_FIELD_NUMBER: _ClassVar[int]
    SPECTRAL_CENTROID_HZ_FIELD_NUMBER: _ClassVar[int]
    SPECTRAL_BANDWIDTH_HZ_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    EVAL_METRIC_FIELD_NUMBER: _ClassVar[int]
    LABEL_NOISE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_NEEDED_FIELD_NUMBER: _ClassVar[int]
    INTERVALS_NEEDED_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_LOG_PROBS_FIELD_NUMBER: _ClassVar[int]
    TWEEDIE_POWER_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    head_type: HeadType
    num_classes: int
    class_histogram: _containers.RepeatedScalarFieldContainer[int]
    class_labels: _containers.RepeatedScalarFieldContainer[str]
    positive_rates: _containers.RepeatedScalarFieldContainer[float]
    label_cardinality: float
    no_label_share: float
    target: TargetSummary
    foreground_shares: _containers.RepeatedScalarFieldContainer[float]
    absent_shares: _containers.RepeatedScalarFieldContainer[float]
    median_object_shares: _containers.RepeatedScalarFieldContainer[float]
    boundary_shares: _containers.RepeatedScalarFieldContainer[float]
    overlapping_classes: bool
    sample_rate: int
    median_duration: _duration_pb2.Duration
    rms_dbfs: float
    input_snr_db: float
    spectral_centroid_hz: float
    spectral_bandwidth_hz: float
    metric: str
    eval_metric: Metric
    label_noise: LabelNoise
    calibration_needed: bool
    intervals_needed: bool
    outputs_log_probs: bool
    tweedie_power: float
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., head_type: _Optional[_Union[HeadType, str]] = ..., num_classes: _Optional[int] = ..., class_histogram: _Optional[_Iterable[int]] = ..., class_labels: _Optional[_Iterable[str]] = ..., positive_rates: _Optional[_Iterable[float]] = ..., label_cardinality: _Optional[float] = ..., no_label_share: _Optional[float] = ..., target: _Optional[_Union[TargetSummary, _Mapping]] = ..., foreground_shares: _Optional[_Iterable[float]] = ..., absent_shares: _Optional[_Iterable[float]] = ..., median_object_shares: _Optional[_Iterable[float]] = ..., boundary_shares: _Optional[_Iterable[float]] = ..., overlapping_classes: _Optional[bool] = ..., sample_rate: _Optional[int] = ..., median_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., rms_dbfs: _Optional[float] = ..., input_snr_db: _Optional[float] = ..., spectral_centroid_hz: _Optional[float] = ..., spectral_bandwidth_hz: _Optional[float] = ..., metric: _Optional[str] = ..., eval_metric: _Optional[_Union[Metric, str]] = ..., label_noise: _Optional[_Union[LabelNoise, _Mapping]] = ..., calibration_needed: _Optional[bool] = ..., intervals_needed: _Optional[bool] = ..., outputs_log_probs: _Optional[bool] = ..., tweedie_power: _Optional[float] = ...) -> None: ...

class TargetSummary(_message.Message):
    __slots__ = ("mean", "variance", "minimum", "maximum", "zero_share", "outlier_fraction", "robust_scale", "heteroscedasticity_pvalue")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    VARIANCE_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    ZERO_SHARE_FIELD_NUMBER: _ClassVar[int]
    OUTLIER_FRACTION_FIELD_NUMBER: _ClassVar[int]
    ROBUST_SCALE_FIELD_NUMBER: _ClassVar[int]
    HETEROSCEDASTICITY_PVALUE_FIELD_NUMBER: _ClassVar[int]
    mean: float
    variance: float
    minimum: float
    maximum: float
    zero_share: float
    outlier_fraction: float
    robust_scale: float
    heteroscedasticity_pvalue: float
    def __init__(self, mean: _Optional[float] = ..., variance: _Optional[float] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., zero_share: _Optional[float] = ..., outlier_fraction: _Optional[float] = ..., robust_scale: _Optional[float] = ..., heteroscedasticity_pvalue: _Optional[float] = ...) -> None: ...

class LabelNoise(_message.Message):
    __slots__ = ("rate", "kind")
    RATE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    rate: float
    kind: str
    def __init__(self, rate: _Optional[float] = ..., kind: _Optional[str] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("csv", "arrow_ipc", "npz", "target_columns", "task_type", "head_type", "sample_rate", "label_separator")
    CSV_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    NPZ_FIELD_NUMBER: _ClassVar[int]
    TARGET_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    HEAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    LABEL_SEPARATOR_FIELD_NUMBER: _ClassVar[int]
    csv: bytes
    arrow_ipc: bytes
    npz: bytes
    target_columns: _containers.RepeatedScalarFieldContainer[str]
    task_type: str
    head_type: HeadType
    sample_rate: int
    label_separator: str
    def __init__(self, csv: _Optional[bytes] = ..., arrow_ipc: _Optional[bytes] = ..., npz: _Optional[bytes] = ..., target_columns: _Optional[_Iterable[str]] = ..., task_type: _Optional[str] = ..., head_type: _Optional[_Union[HeadType, str]] = ..., sample_rate: _Optional[int] = ..., label_separator: _Optional[str] = ...) -> None: ...

class Options(_message.Message):
    __slots__ = ("budget_s", "budget", "repeats", "epochs", "max_rows", "trials", "device", "metric", "eval_metric", "training", "race", "cache")
    BUDGET_S_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    EVAL_METRIC_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    RACE_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    budget_s: float
    budget: _duration_pb2.Duration
    repeats: int
    epochs: int
    max_rows: int
    trials: bool
    device: str
    metric: str
    eval_metric: Metric
    training: Training
    race: bool
    cache: bool
    def __init__(self, budget_s: _Optional[float] = ..., budget: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., repeats: _Optional[int] = ..., epochs: _Optional[int] = ..., max_rows: _Optional[int] = ..., trials: _Optional[bool] = ..., device: _Optional[str] = ..., metric: _Optional[str] = ..., eval_metric: _Optional[_Union[Metric, str]] = ..., training: _Optional[_Union[Training, _Mapping]] = ..., race: _Optional[bool] = ..., cache: _Optional[bool] = ...) -> None: ...

class Training(_message.Message):
    __slots__ = ("epochs", "early_stopping_patience", "lr", "batch_size")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    EARLY_STOPPING_PATIENCE_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    epochs: int
    early_stopping_patience: int
    lr: float
    batch_size: int
    def __init__(self, epochs: _Optional[int] = ..., early_stopping_patience: _Optional[int] = ..., lr: _Optional[float] = ..., batch_size: _Optional[int] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("task", "heads", "multi_task", "settings", "timings", "notes", "stage_durations", "cache", "multi_task_trials")
    class TimingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class StageDurationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _duration_pb2.Duration
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
    TASK_FIELD_NUMBER: _ClassVar[int]
    HEADS_FIELD_NUMBER: _ClassVar[int]
    MULTI_TASK_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    STAGE_DURATIONS_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    MULTI_TASK_TRIALS_FIELD_NUMBER: _ClassVar[int]
    task: TaskDescription
    heads: _containers.RepeatedCompositeFieldContainer[HeadResult]
    multi_task: _containers.RepeatedCompositeFieldContainer[Candidate]
    settings: Settings
    timings: _containers.ScalarMap[str, float]
    notes: _containers.RepeatedScalarFieldContainer[str]
    stage_durations: _containers.MessageMap[str, _duration_pb2.Duration]
    cache: CacheInfo
    multi_task_trials: MultiTaskTrials
    def __init__(self, task: _Optional[_Union[TaskDescription, _Mapping]] = ..., heads: _Optional[_Iterable[_Union[HeadResult, _Mapping]]] = ..., multi_task: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., settings: _Optional[_Union[Settings, _Mapping]] = ..., timings: _Optional[_Mapping[str, float]] = ..., notes: _Optional[_Iterable[str]] = ..., stage_durations: _Optional[_Mapping[str, _duration_pb2.Duration]] = ..., cache: _Optional[_Union[CacheInfo, _Mapping]] = ..., multi_task_trials: _Optional[_Union[MultiTaskTrials, _Mapping]] = ...) -> None: ...

class MultiTaskTrials(_message.Message):
    __slots__ = ("verdict", "combined", "heads", "stop_reason", "epochs_completed", "trial_duration", "train_rows", "score_rows", "repeats", "member_epochs", "protocols", "skipped")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    COMBINED_FIELD_NUMBER: _ClassVar[int]
    HEADS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TRIAL_DURATION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    SCORE_ROWS_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    verdict: str
    combined: str
    heads: _containers.RepeatedCompositeFieldContainer[JointHeadReference]
    stop_reason: StopReason
    epochs_completed: int
    trial_duration: _duration_pb2.Duration
    train_rows: int
    score_rows: int
    repeats: int
    member_epochs: int
    protocols: _containers.RepeatedScalarFieldContainer[str]
    skipped: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, verdict: _Optional[str] = ..., combined: _Optional[str] = ..., heads: _Optional[_Iterable[_Union[JointHeadReference, _Mapping]]] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., epochs_completed: _Optional[int] = ..., trial_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., train_rows: _Optional[int] = ..., score_rows: _Optional[int] = ..., repeats: _Optional[int] = ..., member_epochs: _Optional[int] = ..., protocols: _Optional[_Iterable[str]] = ..., skipped: _Optional[_Iterable[str]] = ...) -> None: ...

class JointHeadReference(_message.Message):
    __slots__ = ("head", "eval_metric", "higher_is_better", "chance", "single_head", "in_combined")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    EVAL_METRIC_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    CHANCE_FIELD_NUMBER: _ClassVar[int]
    SINGLE_HEAD_FIELD_NUMBER: _ClassVar[int]
    IN_COMBINED_FIELD_NUMBER: _ClassVar[int]
    head: str
    eval_metric: Metric
    higher_is_better: bool
    chance: float
    single_head: float
    in_combined: bool
    def __init__(self, head: _Optional[str] = ..., eval_metric: _Optional[_Union[Metric, str]] = ..., higher_is_better: _Optional[bool] = ..., chance: _Optional[float] = ..., single_head: _Optional[float] = ..., in_combined: _Optional[bool] = ...) -> None: ...

class CacheInfo(_message.Message):
    __slots__ = ("hit", "key", "created_at", "stored")
    HIT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    hit: bool
    key: str
    created_at: _timestamp_pb2.Timestamp
    stored: bool
    def __init__(self, hit: _Optional[bool] = ..., key: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stored: _Optional[bool] = ...) -> None: ...

class HeadResult(_message.Message):
    __slots__ = ("head", "type", "head_type", "metric", "eval_metric", "higher_is_better", "candidates", "verdict", "caveats", "explanation", "evidence_source", "evidence_basis", "stopped_by", "stop_reason", "epochs_completed", "trial_seconds", "trial_duration", "train_rows", "score_rows", "repeats", "protocols", "member_epochs", "cut_short")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HEAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    EVAL_METRIC_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    CAVEATS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_BASIS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_BY_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TRIAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TRIAL_DURATION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    SCORE_ROWS_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    CUT_SHORT_FIELD_NUMBER: _ClassVar[int]
    head: str
    type: str
    head_type: HeadType
    metric: str
    eval_metric: Metric
    higher_is_better: bool
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    verdict: str
    caveats: _containers.RepeatedScalarFieldContainer[str]
    explanation: str
    evidence_source: str
    evidence_basis: EvidenceSource
    stopped_by: str
    stop_reason: StopReason
    epochs_completed: int
    trial_seconds: float
    trial_duration: _duration_pb2.Duration
    train_rows: int
    score_rows: int
    repeats: int
    protocols: _containers.RepeatedScalarFieldContainer[str]
    member_epochs: int
    cut_short: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, head: _Optional[str] = ..., type: _Optional[str] = ..., head_type: _Optional[_Union[HeadType, str]] = ..., metric: _Optional[str] = ..., eval_metric: _Optional[_Union[Metric, str]] = ..., higher_is_better: _Optional[bool] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., verdict: _Optional[str] = ..., caveats: _Optional[_Iterable[str]] = ..., explanation: _Optional[str] = ..., evidence_source: _Optional[str] = ..., evidence_basis: _Optional[_Union[EvidenceSource, str]] = ..., stopped_by: _Optional[str] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., epochs_completed: _Optional[int] = ..., trial_seconds: _Optional[float] = ..., trial_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., train_rows: _Optional[int] = ..., score_rows: _Optional[int] = ..., repeats: _Optional[int] = ..., protocols: _Optional[_Iterable[str]] = ..., member_epochs: _Optional[int] = ..., cut_short: _Optional[_Iterable[str]] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("rank", "head", "spec_json", "spec", "post_hoc", "prior", "score", "tie_group", "rule_id", "title", "rationale", "references", "evidence", "summary", "also_proposed_by")
    RANK_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    POST_HOC_FIELD_NUMBER: _ClassVar[int]
    PRIOR_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TIE_GROUP_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ALSO_PROPOSED_BY_FIELD_NUMBER: _ClassVar[int]
    rank: int
    head: str
    spec_json: str
    spec: _struct_pb2.Struct
    post_hoc: PostHoc
    prior: float
    score: float
    tie_group: int
    rule_id: str
    title: str
    rationale: str
    references: _containers.RepeatedScalarFieldContainer[str]
    evidence: Evidence
    summary: str
    also_proposed_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rank: _Optional[int] = ..., head: _Optional[str] = ..., spec_json: _Optional[str] = ..., spec: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., post_hoc: _Optional[_Union[PostHoc, _Mapping]] = ..., prior: _Optional[float] = ..., score: _Optional[float] = ..., tie_group: _Optional[int] = ..., rule_id: _Optional[str] = ..., title: _Optional[str] = ..., rationale: _Optional[str] = ..., references: _Optional[_Iterable[str]] = ..., evidence: _Optional[_Union[Evidence, _Mapping]] = ..., summary: _Optional[str] = ..., also_proposed_by: _Optional[_Iterable[str]] = ...) -> None: ...

class PostHoc(_message.Message):
    __slots__ = ("kind", "recipe_kind", "tau", "threshold", "temperature", "class_priors", "activation", "description")
    KIND_FIELD_NUMBER: _ClassVar[int]
    RECIPE_KIND_FIELD_NUMBER: _ClassVar[int]
    TAU_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    CLASS_PRIORS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    recipe_kind: RecipeKind
    tau: float
    threshold: float
    temperature: float
    class_priors: _containers.RepeatedScalarFieldContainer[float]
    activation: Activation
    description: str
    def __init__(self, kind: _Optional[str] = ..., recipe_kind: _Optional[_Union[RecipeKind, str]] = ..., tau: _Optional[float] = ..., threshold: _Optional[float] = ..., temperature: _Optional[float] = ..., class_priors: _Optional[_Iterable[float]] = ..., activation: _Optional[_Union[Activation, str]] = ..., description: _Optional[str] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("metric", "eval_metric", "per_repeat", "mean", "std", "ci_low", "ci_high", "diverged_repeats", "curves", "post_hoc_values", "protocols", "repeats", "dropped_after", "per_head", "per_class")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    EVAL_METRIC_FIELD_NUMBER: _ClassVar[int]
    PER_REPEAT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    DIVERGED_REPEATS_FIELD_NUMBER: _ClassVar[int]
    CURVES_FIELD_NUMBER: _ClassVar[int]
    POST_HOC_VALUES_FIELD_NUMBER: _ClassVar[int]
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_AFTER_FIELD_NUMBER: _ClassVar[int]
    PER_HEAD_FIELD_NUMBER: _ClassVar[int]
    PER_CLASS_FIELD_NUMBER: _ClassVar[int]
    metric: str
    eval_metric: Metric
    per_repeat: _containers.RepeatedScalarFieldContainer[float]
    mean: float
    std: float
    ci_low: float
    ci_high: float
    diverged_repeats: int
    curves: _containers.RepeatedCompositeFieldContainer[Curve]
    post_hoc_values: _containers.RepeatedScalarFieldContainer[float]
    protocols: _containers.RepeatedCompositeFieldContainer[ProtocolEvidence]
    repeats: int
    dropped_after: int
    per_head: _containers.RepeatedCompositeFieldContainer[HeadShare]
    per_class: _containers.RepeatedCompositeFieldContainer[ClassScores]
    def __init__(self, metric: _Optional[str] = ..., eval_metric: _Optional[_Union[Metric, str]] = ..., per_repeat: _Optional[_Iterable[float]] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., diverged_repeats: _Optional[int] = ..., curves: _Optional[_Iterable[_Union[Curve, _Mapping]]] = ..., post_hoc_values: _Optional[_Iterable[float]] = ..., protocols: _Optional[_Iterable[_Union[ProtocolEvidence, _Mapping]]] = ..., repeats: _Optional[int] = ..., dropped_after: _Optional[int] = ..., per_head: _Optional[_Iterable[_Union[HeadShare, _Mapping]]] = ..., per_class: _Optional[_Iterable[_Union[ClassScores, _Mapping]]] = ...) -> None: ...

class ClassScores(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class HeadShare(_message.Message):
    __slots__ = ("head", "eval_metric", "higher_is_better", "per_repeat", "mean", "share")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    EVAL_METRIC_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    PER_REPEAT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    head: str
    eval_metric: Metric
    higher_is_better: bool
    per_repeat: _containers.RepeatedScalarFieldContainer[float]
    mean: float
    share: float
    def __init__(self, head: _Optional[str] = ..., eval_metric: _Optional[_Union[Metric, str]] = ..., higher_is_better: _Optional[bool] = ..., per_repeat: _Optional[_Iterable[float]] = ..., mean: _Optional[float] = ..., share: _Optional[float] = ...) -> None: ...

class ProtocolEvidence(_message.Message):
    __slots__ = ("name", "description", "per_repeat", "mean", "epochs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PER_REPEAT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    per_repeat: _containers.RepeatedScalarFieldContainer[float]
    mean: float
    epochs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., per_repeat: _Optional[_Iterable[float]] = ..., mean: _Optional[float] = ..., epochs: _Optional[_Iterable[int]] = ...) -> None: ...

class Curve(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class Settings(_message.Message):
    __slots__ = ("budget_s", "budget", "repeats", "epochs", "max_rows", "device", "trials", "training", "race")
    BUDGET_S_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TRIALS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    RACE_FIELD_NUMBER: _ClassVar[int]
    budget_s: float
    budget: _duration_pb2.Duration
    repeats: int
    epochs: int
    max_rows: int
    device: str
    trials: bool
    training: Training
    race: bool
    def __init__(self, budget_s: _Optional[float] = ..., budget: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., repeats: _Optional[int] = ..., epochs: _Optional[int] = ..., max_rows: _Optional[int] = ..., device: _Optional[str] = ..., trials: _Optional[bool] = ..., training: _Optional[_Union[Training, _Mapping]] = ..., race: _Optional[bool] = ...) -> None: ...

class RecommendEvent(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: RecommendResponse
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[RecommendResponse, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("head", "epoch", "epochs", "alive", "members", "best_so_far", "elapsed_s", "elapsed")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    BEST_SO_FAR_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    head: str
    epoch: int
    epochs: int
    alive: int
    members: int
    best_so_far: float
    elapsed_s: float
    elapsed: _duration_pb2.Duration
    def __init__(self, head: _Optional[str] = ..., epoch: _Optional[int] = ..., epochs: _Optional[int] = ..., alive: _Optional[int] = ..., members: _Optional[int] = ..., best_so_far: _Optional[float] = ..., elapsed_s: _Optional[float] = ..., elapsed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RecommendMetadata(_message.Message):
    __slots__ = ("state", "create_time", "update_time", "progress", "expire_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[RecommendMetadata.State]
        QUEUED: _ClassVar[RecommendMetadata.State]
        RUNNING: _ClassVar[RecommendMetadata.State]
        SUCCEEDED: _ClassVar[RecommendMetadata.State]
        FAILED: _ClassVar[RecommendMetadata.State]
        CANCELLED: _ClassVar[RecommendMetadata.State]
    STATE_UNSPECIFIED: RecommendMetadata.State
    QUEUED: RecommendMetadata.State
    RUNNING: RecommendMetadata.State
    SUCCEEDED: RecommendMetadata.State
    FAILED: RecommendMetadata.State
    CANCELLED: RecommendMetadata.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    state: RecommendMetadata.State
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    progress: Progress
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[RecommendMetadata.State, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListLossesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListLossesResponse(_message.Message):
    __slots__ = ("losses",)
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    losses: _containers.RepeatedCompositeFieldContainer[LossEntry]
    def __init__(self, losses: _Optional[_Iterable[_Union[LossEntry, _Mapping]]] = ...) -> None: ...

class LossEntry(_message.Message):
    __slots__ = ("name", "summary", "heads", "input", "target", "reference", "params_schema", "head_types")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    HEADS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    HEAD_TYPES_FIELD_NUMBER: _ClassVar[int]
    name: str
    summary: str
    heads: _containers.RepeatedScalarFieldContainer[str]
    input: str
    target: str
    reference: str
    params_schema: _struct_pb2.Struct
    head_types: _containers.RepeatedScalarFieldContainer[HeadType]
    def __init__(self, name: _Optional[str] = ..., summary: _Optional[str] = ..., heads: _Optional[_Iterable[str]] = ..., input: _Optional[str] = ..., target: _Optional[str] = ..., reference: _Optional[str] = ..., params_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., head_types: _Optional[_Iterable[_Union[HeadType, str]]] = ...) -> None: ...

class ValidateSpecRequest(_message.Message):
    __slots__ = ("spec_json",)
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    spec_json: str
    def __init__(self, spec_json: _Optional[str] = ...) -> None: ...

class ValidateSpecResponse(_message.Message):
    __slots__ = ("valid", "normalized_spec_json", "errors")
    VALID_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    normalized_spec_json: str
    errors: _containers.RepeatedCompositeFieldContainer[FieldError]
    def __init__(self, valid: _Optional[bool] = ..., normalized_spec_json: _Optional[str] = ..., errors: _Optional[_Iterable[_Union[FieldError, _Mapping]]] = ...) -> None: ...

class FieldError(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

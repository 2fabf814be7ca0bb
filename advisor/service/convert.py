"""Conversions between the protobuf messages and the core's pydantic models (both directions).

The service converts requests with :func:`task_from_proto`, :func:`options_from_proto`,
:func:`dataset_head_type` and :func:`dataset_label_separator`, and answers with :func:`response_to_proto`, :func:`progress_to_proto` and
:func:`loss_entry_to_proto`; the Python client turns responses back with :func:`recommendation_from_proto`.

Closed sets travel twice, as an enum (``HeadType head_type``) and as the deprecated string beside it (``type``);
times as a ``google.protobuf.Duration`` (``budget``) beside the deprecated seconds (``budget_s``). Outputs fill
both. Inputs take either: the new field wins when set, and a request whose two fields disagree is refused
with a violation naming both. Enum values are the Python values in upper case behind the enum's prefix:
``lossadvisor.v1.HeadType.HEAD_TYPE_BINARY`` is ``"binary"`` (a test checks every enum against its Python set).
"""

from __future__ import annotations

import json
import math
import re
from datetime import timezone
from typing import TYPE_CHECKING, Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2

from advisor.errors import AdvisorError, FieldViolation
from advisor.recommendation import CacheInfo, MultiTaskTrials, Recommendation
from advisor.task import TaskDescription, TaskError, parse_task
from lossadvisor.v1 import advisor_pb2 as pb

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

# The largest dataset a request may carry by default (RecommendRequest.dataset, `--dataset-limit-mb`).
DATASET_LIMIT_BYTES = 8 * 1024 * 1024
# Seconds and a Duration "agree" when they differ by at most this (a double cannot hold every nanosecond).
DURATION_TOLERANCE_S = 1e-6
# google.protobuf.Duration's range (about 10,000 years) and nanosecond bound.
_MAX_DURATION_SECONDS = 315_576_000_000
_MAX_NANOS = 999_999_999


class RequestError(AdvisorError):
    """Request fields that contradict each other (a field and its deprecated twin) or hold no valid value."""


# ---------------------------------------------------------------------------------------------- enums


def _prefix(enum: EnumTypeWrapper) -> str:
    """The value prefix of an enum: HeadType -> HEAD_TYPE_."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.DESCRIPTOR.name).upper() + "_"


def enum_number(enum: EnumTypeWrapper, value: str | None) -> int:
    """The enum number of a Python value; 0 (UNSPECIFIED) for None, "" or a value the enum lacks."""
    if not value:
        return 0
    try:
        return enum.Value(_prefix(enum) + value.upper())
    except ValueError:
        return 0


def enum_value(enum: EnumTypeWrapper, number: int) -> str | None:
    """The Python value of an enum number; None for UNSPECIFIED and for numbers this build does not know."""
    if number == 0:
        return None
    try:
        return enum.Name(number).removeprefix(_prefix(enum)).lower()
    except ValueError:
        return None


def enum_values(enum: EnumTypeWrapper) -> list[str]:
    """Every Python value of an enum (UNSPECIFIED left out), in declaration order."""
    return [enum_value(enum, v.number) for v in enum.DESCRIPTOR.values if v.number != 0]


def _pick_enum(
    message: Any, text_field: str, enum_field: str, enum: EnumTypeWrapper, where: str,
    problems: list[FieldViolation],
) -> str | None:  # fmt: skip
    """The value a request gives in ``enum_field`` or in its deprecated string twin ``text_field``."""
    text, number = getattr(message, text_field), getattr(message, enum_field)
    if number == 0:
        return text or None
    value = enum_value(enum, number)
    if value is None:
        allowed = ", ".join(v.name for v in enum.DESCRIPTOR.values if v.number != 0)
        problems.append(FieldViolation(f"{where}{enum_field}", f"got {number}, not a {enum.DESCRIPTOR.name}; "
                                       f"allowed: {allowed}"))  # fmt: skip
        return None
    if text and text != value:
        problems.append(_disagree(where, enum_field, enum.Name(number), text_field, repr(text)))
    return value


def _disagree(where: str, new: str, new_value: str, old: str, old_value: str) -> FieldViolation:
    return FieldViolation(
        f"{where}{new}",
        f"{new_value} disagrees with {where}{old} {old_value}; set {where}{new} alone ({old} is deprecated)",
    )


# ---------------------------------------------------------------------------------------------- durations


def duration(seconds: float | None) -> duration_pb2.Duration | None:
    """A Duration of ``seconds`` (nanosecond resolution); None for None, a non-finite number, or one outside
    a Duration's range (about 10,000 years: only the deprecated seconds field can carry it)."""
    if seconds is None or not math.isfinite(seconds) or abs(seconds) > _MAX_DURATION_SECONDS:
        return None
    message = duration_pb2.Duration()
    message.FromNanoseconds(round(seconds * 1e9))
    return message


def _seconds(message: duration_pb2.Duration) -> float:
    # One correctly rounded division: a value with at most 9 decimals (a profiled duration) comes back exactly.
    return message.ToNanoseconds() / 1e9


def _duration_problem(message: duration_pb2.Duration) -> str | None:
    """Why a Duration is not a valid one (google/protobuf/duration.proto's rules), or None."""
    seconds, nanos = message.seconds, message.nanos
    if abs(seconds) > _MAX_DURATION_SECONDS or abs(nanos) > _MAX_NANOS:
        return f"seconds {seconds}, nanos {nanos} is out of range (|seconds| <= {_MAX_DURATION_SECONDS:,}, |nanos| <= {_MAX_NANOS:,})"
    if (seconds > 0 and nanos < 0) or (seconds < 0 and nanos > 0):
        return f"seconds {seconds} and nanos {nanos} have different signs"
    return None


def _pick_duration(
    message: Any, seconds_field: str, duration_field: str, where: str, problems: list[FieldViolation]
) -> float | None:
    """The seconds a request gives in ``duration_field`` or in its deprecated twin ``seconds_field``."""
    seconds = getattr(message, seconds_field) if message.HasField(seconds_field) else None
    if not message.HasField(duration_field):
        return seconds
    given = getattr(message, duration_field)
    problem = _duration_problem(given)
    if problem:
        problems.append(FieldViolation(f"{where}{duration_field}", f"not a valid Duration: {problem}"))
        return None
    value = _seconds(given)
    if seconds is not None and not abs(seconds - value) <= DURATION_TOLERANCE_S:  # NaN disagrees too
        problems.append(_disagree(where, duration_field, f"{value:g} s", seconds_field, f"{seconds!r}"))
    return value


def _seconds_from(message: Any, seconds_field: str, duration_field: str) -> float:
    """An output's seconds: its Duration when set (it wins), else the deprecated seconds (older servers)."""
    if message.HasField(duration_field):
        return _seconds(getattr(message, duration_field))
    return getattr(message, seconds_field)


# ---------------------------------------------------------------------------------------------- requests


def _message_dict(message: Any) -> dict[str, Any]:
    """The fields a message sets, by their .proto names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _full_dict(message: Any) -> dict[str, Any]:
    """Every field of a message, defaults included, by their .proto names."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def task_from_proto(task: pb.TaskDescription) -> TaskDescription:
    """The validated task; :class:`TaskError` violations name request fields (``task.heads.0.head_type``)."""
    durations = _median_durations(task)
    sent = pb.TaskDescription()
    sent.CopyFrom(task)
    for head in sent.heads:
        head.ClearField("median_duration")  # read above: an invalid Duration has no JSON form
    data = _message_dict(sent)
    for name in ("source", "task_source", "notes"):  # output only: what the client describes is a description
        data.pop(name, None)
    problems: list[FieldViolation] = []
    renamed: dict[str, str] = {}  # core field -> the request field that set it
    for index, (message, head) in enumerate(zip(task.heads, data.get("heads", []), strict=True)):
        where = f"task.heads.{index}."
        head.pop("head_type", None)
        head.pop("eval_metric", None)
        if index in durations:
            head["median_duration_s"] = durations[index]
            renamed[f"{where}median_duration_s"] = f"{where}median_duration"
        head_type = _pick_enum(message, "type", "head_type", pb.HeadType, where, problems)
        metric = _pick_enum(message, "metric", "eval_metric", pb.Metric, where, problems)
        if head_type is None and not message.type and not message.head_type:
            problems.append(FieldViolation(f"{where}head_type", "required: what the head predicts (one of "
                                           f"{', '.join(enum_values(pb.HeadType))})"))  # fmt: skip
        if head_type is not None:
            head["type"] = head_type
        if metric is not None:
            head["metric"] = metric
        if message.head_type:
            renamed[f"{where}type"] = f"{where}head_type"
        if message.eval_metric:
            renamed[f"{where}metric"] = f"{where}eval_metric"
    if problems:
        raise TaskError(problems)
    try:
        return parse_task(data, field="task")
    except TaskError as exc:
        violations = [FieldViolation(renamed.get(v.field, v.field), v.description) for v in exc.violations]
        raise TaskError(violations) from None


def _median_durations(task: pb.TaskDescription) -> dict[int, float]:
    """Seconds of each head's median_duration by head index; :class:`TaskError` for an invalid Duration."""
    found, problems = {}, []
    for index, head in enumerate(task.heads):
        if head.HasField("median_duration"):
            problem = _duration_problem(head.median_duration)
            if problem:
                problems.append(
                    FieldViolation(f"task.heads.{index}.median_duration", f"not a valid Duration: {problem}")
                )
            found[index] = _seconds(head.median_duration)
    if problems:
        raise TaskError(problems)
    return found


def stated_traits(task: pb.TaskDescription) -> dict[str, dict[str, Any]]:
    """Per head name, the traits a request states beside a dataset (see RecommendRequest.task)."""
    from advisor.core import TRAIT_FIELDS

    found = {}
    for head in task.heads:
        fields = {k: v for k, v in _message_dict(head).items() if k in TRAIT_FIELDS}
        if fields:
            found[head.name or "target"] = fields
    return found


def options_from_proto(options: pb.Options) -> dict[str, Any]:
    """Keyword arguments of ``recommend()`` that the request sets (unset fields keep the defaults).

    Raises :class:`RequestError` when ``budget`` and ``budget_s``, or ``eval_metric`` and ``metric``, disagree.
    """
    problems: list[FieldViolation] = []
    found: dict[str, Any] = {}
    budget = _pick_duration(options, "budget_s", "budget", "options.", problems)
    if budget is not None:
        found["budget_s"] = budget
    for name in ("repeats", "epochs", "max_rows", "trials", "race", "cache"):
        if options.HasField(name):
            found[name] = getattr(options, name)
    if options.device:
        found["device"] = options.device
    metric = _pick_enum(options, "metric", "eval_metric", pb.Metric, "options.", problems)
    if metric is not None:
        found["metric"] = metric
    if options.HasField("training"):
        found["training"] = _message_dict(options.training)
    if problems:
        raise RequestError(problems)
    return found


def option_field(options: pb.Options, name: str) -> str:
    """The request field that set ``recommend()``'s option ``name`` (for naming it in a violation)."""
    if name == "budget_s" and options.HasField("budget"):
        return "budget"
    if name == "metric" and options.eval_metric:
        return "eval_metric"
    return name


def dataset_head_type(dataset: pb.Dataset) -> str:
    """The head type a dataset request forces ("" to infer); :class:`RequestError` when its fields disagree."""
    problems: list[FieldViolation] = []
    head_type = _pick_enum(dataset, "task_type", "head_type", pb.HeadType, "dataset.", problems)
    if problems:
        raise RequestError(problems)
    return head_type or ""


def dataset_label_separator(dataset: pb.Dataset, head_type: str) -> str | None:
    """The separator of a delimited label column a dataset request sets, or None (the profiler sniffs it);
    :class:`RequestError` naming ``dataset.label_separator`` for a value the profiler refuses, beside a
    ``head_type`` other than multilabel, or with npz content (arrays hold no label column)."""
    if not dataset.HasField("label_separator"):
        return None
    if dataset.WhichOneof("content") == "npz":
        raise RequestError(FieldViolation("dataset.label_separator", "splits a table's label column; an npz "
                                          "holds arrays (images and masks, or audio clips)"))  # fmt: skip
    # The profiler's own check, here so that a bad value is refused before any work starts.
    from advisor.profiling.common import check_label_separator

    try:
        check_label_separator(dataset.label_separator, head_type or None)
    except AdvisorError as exc:
        raise RequestError(
            [FieldViolation(f"dataset.{v.field}", v.description) for v in exc.violations]
        ) from None
    return dataset.label_separator


# ---------------------------------------------------------------------------------------------- responses


def task_to_proto(task: TaskDescription) -> pb.TaskDescription:
    """The task message: every field of the model, the median clip duration as a Duration."""
    data = task.model_dump(mode="json", exclude_none=True)
    for head in data["heads"]:
        head.pop("median_duration_s", None)  # a Duration, set below
    message = json_format.ParseDict(data, pb.TaskDescription())
    message.task_source = enum_number(pb.TaskSource, task.source)
    for head, sent in zip(task.heads, message.heads, strict=True):
        sent.head_type = enum_number(pb.HeadType, head.type)
        sent.eval_metric = enum_number(pb.Metric, head.metric)
        if (median := duration(head.median_duration_s)) is not None:
            sent.median_duration.CopyFrom(median)
    return message


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _present(**fields: Any) -> dict[str, Any]:
    """Keyword arguments without the unset (None) ones, for message constructors."""
    return {key: value for key, value in fields.items() if value is not None}


def _evidence(evidence: Any) -> pb.Evidence | None:
    if evidence is None:
        return None
    protocols = [
        pb.ProtocolEvidence(
            name=p.name, description=p.description, per_repeat=_nan_for_none(p.per_repeat),
            epochs=[0 if v is None else v for v in p.epochs], **_present(mean=p.mean),
        )
        for p in evidence.protocols
    ]  # fmt: skip
    per_head = [
        pb.HeadShare(
            head=s.head, eval_metric=enum_number(pb.Metric, s.metric), higher_is_better=s.higher_is_better,
            per_repeat=_nan_for_none(s.per_repeat), **_present(mean=s.mean, share=s.share),
        )
        for s in evidence.per_head or []
    ]  # fmt: skip
    return pb.Evidence(
        metric=evidence.metric,
        eval_metric=enum_number(pb.Metric, evidence.metric),
        per_repeat=_nan_for_none(evidence.per_repeat),
        diverged_repeats=evidence.diverged_repeats,
        curves=[pb.Curve(values=curve) for curve in evidence.curves],
        post_hoc_values=evidence.post_hoc_values or [],
        protocols=protocols,
        repeats=evidence.repeats,
        per_head=per_head,
        per_class=[pb.ClassScores(values=values or []) for values in evidence.per_class or []],
        **_present(
            mean=evidence.mean, std=evidence.std, ci_low=evidence.ci_low, ci_high=evidence.ci_high,
            dropped_after=evidence.dropped_after,
        ),
    )  # fmt: skip


def _nan_for_none(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _none_for_nan(values: Any) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]


def _recipe(recipe: Any) -> pb.PostHoc | None:
    """A candidate's prediction-time recipe (:class:`advisor.recipes.Recipe`) with its tuned values."""
    if recipe is None:
        return None
    return pb.PostHoc(
        kind=recipe.kind,
        recipe_kind=enum_number(pb.RecipeKind, recipe.kind),
        class_priors=recipe.class_priors or [],
        activation=enum_number(pb.Activation, recipe.activation),
        description=recipe.describe(),
        **_present(tau=recipe.tau, threshold=recipe.threshold, temperature=recipe.temperature),
    )


def _candidate(candidate: Any) -> pb.Candidate:
    spec = candidate.spec.model_dump(mode="json")
    return pb.Candidate(
        rank=candidate.rank,
        head=candidate.head,
        spec_json=json.dumps(spec),
        spec=_struct(spec),
        prior=candidate.prior,
        score=candidate.score,
        tie_group=candidate.tie_group,
        rule_id=candidate.rule_id,
        also_proposed_by=candidate.also_proposed_by,
        title=candidate.title,
        rationale=candidate.rationale,
        references=candidate.references,
        summary=candidate.summary or "",
        **_present(post_hoc=_recipe(candidate.post_hoc), evidence=_evidence(candidate.evidence)),
    )


def _head_result(h: Any) -> pb.HeadResult:
    return pb.HeadResult(
        head=h.head,
        type=h.type,
        head_type=enum_number(pb.HeadType, h.type),
        metric=h.metric,
        eval_metric=enum_number(pb.Metric, h.metric),
        higher_is_better=h.higher_is_better,
        candidates=[_candidate(c) for c in h.candidates],
        verdict=h.verdict,
        caveats=h.caveats,
        explanation=h.explanation,
        evidence_source=h.evidence_source,
        evidence_basis=enum_number(pb.EvidenceSource, h.evidence_source),
        stopped_by=h.stopped_by,
        stop_reason=enum_number(pb.StopReason, h.stopped_by),
        epochs_completed=h.epochs_completed,
        trial_seconds=h.trial_seconds,
        train_rows=h.train_rows,
        score_rows=h.score_rows,
        repeats=h.repeats,
        protocols=h.protocols,
        member_epochs=h.member_epochs,
        cut_short=h.cut_short,
        **_present(trial_duration=duration(h.trial_seconds)),
    )


def _cache_info(info: CacheInfo | None) -> pb.CacheInfo | None:
    """The result-cache facts of a reply; the server's cache path stays on the server."""
    if info is None:
        return None
    created = timestamp_pb2.Timestamp()
    created.FromDatetime(info.created_at)
    return pb.CacheInfo(hit=info.hit, key=info.key, created_at=created, stored=info.stored)


def _multi_task_trials(trials: MultiTaskTrials | None) -> pb.MultiTaskTrials | None:
    """How joint trials measured the multi_task candidates (None when they are in the rules' order)."""
    if trials is None:
        return None
    heads = [
        pb.JointHeadReference(
            head=h.head, eval_metric=enum_number(pb.Metric, h.metric), higher_is_better=h.higher_is_better,
            chance=h.chance, single_head=h.single_head, in_combined=h.in_combined,
        )
        for h in trials.heads
    ]  # fmt: skip
    return pb.MultiTaskTrials(
        verdict=trials.verdict,
        combined=trials.combined,
        heads=heads,
        stop_reason=enum_number(pb.StopReason, trials.stopped_by),
        epochs_completed=trials.epochs_completed,
        train_rows=trials.train_rows,
        score_rows=trials.score_rows,
        repeats=trials.repeats,
        member_epochs=trials.member_epochs,
        protocols=trials.protocols,
        skipped=trials.skipped,
        **_present(trial_duration=duration(trials.trial_seconds)),
    )


def response_to_proto(recommendation: Recommendation) -> pb.RecommendResponse:
    """The response message of a recommendation."""
    settings = recommendation.settings
    stages = {
        name: d for name, seconds in recommendation.timings.items() if (d := duration(seconds)) is not None
    }
    return pb.RecommendResponse(
        task=task_to_proto(recommendation.task),
        heads=[_head_result(h) for h in recommendation.heads],
        multi_task=[_candidate(c) for c in recommendation.multi_task],
        settings=pb.Settings(
            budget_s=settings.budget_s,
            epochs=settings.epochs,
            max_rows=settings.max_rows,
            device=settings.device,
            trials=settings.trials,
            race=settings.race,
            **_present(
                budget=duration(settings.budget_s),
                repeats=settings.repeats,
                training=None if settings.training is None else pb.Training(**settings.training),
            ),
        ),
        timings=recommendation.timings,
        stage_durations=stages,
        notes=recommendation.notes,
        **_present(
            cache=_cache_info(recommendation.cache),
            multi_task_trials=_multi_task_trials(recommendation.multi_task_trials),
        ),
    )


def progress_to_proto(event: dict[str, Any]) -> pb.Progress:
    """A progress event (a worker's dict: head, epoch, epochs, alive, members, best_so_far, elapsed_s)."""
    message = json_format.ParseDict(event, pb.Progress())
    if (elapsed := duration(event.get("elapsed_s"))) is not None:
        message.elapsed.CopyFrom(elapsed)
    return message


def loss_entry_to_proto(info: Any) -> pb.LossEntry:
    """A catalog entry (:class:`advisor.losses.LossInfo`) with its parameter schema as a Struct."""
    return pb.LossEntry(
        name=info.name,
        summary=info.summary,
        heads=list(info.heads),
        head_types=[enum_number(pb.HeadType, head) for head in info.heads],
        input=info.input,
        target=info.target,
        reference=info.reference,
        params_schema=_struct(json.loads(json.dumps(info.params_schema()))),
    )


# ---------------------------------------------------------------------------------------------- back


def _recipe_from_proto(message: pb.PostHoc) -> dict[str, Any]:
    optional = {name: getattr(message, name) if message.HasField(name) else None
                for name in ("tau", "threshold", "temperature")}  # fmt: skip
    return {
        "kind": enum_value(pb.RecipeKind, message.recipe_kind) or message.kind,
        **optional,
        "class_priors": list(message.class_priors) or None,
        "activation": enum_value(pb.Activation, message.activation) or "softmax",
    }


def _candidate_from_proto(message: pb.Candidate) -> dict[str, Any]:
    data = _full_dict(message)
    data.pop("spec_json")
    data["spec"] = json.loads(message.spec_json)
    data["post_hoc"] = _recipe_from_proto(message.post_hoc) if message.HasField("post_hoc") else None
    if not message.HasField("evidence"):
        data["evidence"] = None
    else:
        evidence = data["evidence"]
        evidence.pop("eval_metric", None)
        evidence["metric"] = enum_value(pb.Metric, message.evidence.eval_metric) or message.evidence.metric
        evidence["per_repeat"] = _none_for_nan(message.evidence.per_repeat)
        evidence["curves"] = [list(curve.values) for curve in message.evidence.curves]
        for name in ("mean", "std", "ci_low", "ci_high", "dropped_after"):
            evidence[name] = getattr(message.evidence, name) if message.evidence.HasField(name) else None
        for protocol, sent in zip(evidence["protocols"], message.evidence.protocols, strict=True):
            protocol["per_repeat"] = _none_for_nan(sent.per_repeat)
            protocol["epochs"] = [None if v == 0 else v for v in sent.epochs]
            protocol["mean"] = sent.mean if sent.HasField("mean") else None
        if not message.evidence.post_hoc_values:
            evidence["post_hoc_values"] = None
        evidence["per_head"] = [
            {"head": s.head, "metric": enum_value(pb.Metric, s.eval_metric), "higher_is_better": s.higher_is_better,
             "per_repeat": _none_for_nan(s.per_repeat), "mean": s.mean if s.HasField("mean") else None,
             "share": s.share if s.HasField("share") else None}
            for s in message.evidence.per_head
        ] or None  # fmt: skip
        # A repeat without per-class values travels as an empty list.
        evidence["per_class"] = [list(s.values) or None for s in message.evidence.per_class] or None
    data["summary"] = message.summary or None
    return data


def _head_from_proto(message: pb.HeadResult) -> dict[str, Any]:
    data = _full_dict(message)
    for name in ("head_type", "eval_metric", "evidence_basis", "stop_reason", "trial_duration"):
        data.pop(name, None)
    data["type"] = enum_value(pb.HeadType, message.head_type) or message.type
    data["metric"] = enum_value(pb.Metric, message.eval_metric) or message.metric
    data["evidence_source"] = enum_value(pb.EvidenceSource, message.evidence_basis) or message.evidence_source
    data["stopped_by"] = enum_value(pb.StopReason, message.stop_reason) or message.stopped_by or "not_run"
    data["trial_seconds"] = _seconds_from(message, "trial_seconds", "trial_duration")
    data["candidates"] = [_candidate_from_proto(c) for c in message.candidates]
    return data


def _task_from_response(message: pb.TaskDescription) -> dict[str, Any]:
    data = _message_dict(message)
    data.pop("task_source", None)
    data["source"] = enum_value(pb.TaskSource, message.task_source) or message.source or "description"
    for sent, head in zip(message.heads, data.get("heads", []), strict=True):
        head.pop("head_type", None)
        head.pop("eval_metric", None)
        if head.pop("median_duration", None) is not None:
            head["median_duration_s"] = _seconds(sent.median_duration)
        head["type"] = enum_value(pb.HeadType, sent.head_type) or sent.type
        metric = enum_value(pb.Metric, sent.eval_metric) or sent.metric
        if metric:
            head["metric"] = metric
    return data


def recommendation_from_proto(response: pb.RecommendResponse) -> Recommendation:
    """The :class:`Recommendation` a response carries (the client's side of :func:`response_to_proto`).

    It reads responses of older servers too (the deprecated strings and seconds alone)."""
    sent = response.settings
    settings = _full_dict(sent)
    settings.pop("budget", None)
    settings["budget_s"] = _seconds_from(sent, "budget_s", "budget")
    settings["repeats"] = sent.repeats if sent.HasField("repeats") else None
    settings["training"] = _message_dict(sent.training) if sent.HasField("training") else None
    if response.stage_durations:
        timings = {name: _seconds(value) for name, value in response.stage_durations.items()}
    else:
        timings = dict(response.timings)
    return Recommendation.model_validate(
        {
            "task": _task_from_response(response.task),
            "heads": [_head_from_proto(head) for head in response.heads],
            "multi_task": [_candidate_from_proto(c) for c in response.multi_task],
            "settings": {**settings, "rule_dirs": []},
            "timings": timings,
            "notes": list(response.notes),
            "cache": _cache_info_from_proto(response.cache) if response.HasField("cache") else None,
            "multi_task_trials": (
                _multi_task_trials_from_proto(response.multi_task_trials)
                if response.HasField("multi_task_trials") else None
            ),
        }
    )  # fmt: skip


def _multi_task_trials_from_proto(message: pb.MultiTaskTrials) -> dict[str, Any]:
    heads = [
        {"head": h.head, "metric": enum_value(pb.Metric, h.eval_metric), "higher_is_better": h.higher_is_better,
         "chance": h.chance, "single_head": h.single_head, "in_combined": h.in_combined}
        for h in message.heads
    ]  # fmt: skip
    return {
        "verdict": message.verdict,
        "combined": message.combined,
        "heads": heads,
        "stopped_by": enum_value(pb.StopReason, message.stop_reason),
        "epochs_completed": message.epochs_completed,
        "trial_seconds": _seconds(message.trial_duration),
        "train_rows": message.train_rows,
        "score_rows": message.score_rows,
        "repeats": message.repeats,
        "member_epochs": message.member_epochs,
        "protocols": list(message.protocols),
        "skipped": list(message.skipped),
    }


def _cache_info_from_proto(message: pb.CacheInfo) -> dict[str, Any]:
    created = message.created_at.ToDatetime(tzinfo=timezone.utc)
    return {"hit": message.hit, "key": message.key, "created_at": created, "stored": message.stored}


def violations_to_proto(violations: list[FieldViolation]) -> list[pb.FieldError]:
    return [pb.FieldError(field=v.field, description=v.description) for v in violations]

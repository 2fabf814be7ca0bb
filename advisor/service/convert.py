"""Conversions between the protobuf messages and the core's pydantic models (both directions).

The service converts requests with :func:`task_from_proto` and :func:`options_from_proto`, and answers with
:func:`response_to_proto`; the Python client turns responses back with :func:`recommendation_from_proto`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf import json_format, struct_pb2

from advisor.errors import FieldViolation
from advisor.recommendation import Recommendation
from advisor.task import TaskDescription, TaskError, parse_task
from lossadvisor.v1 import advisor_pb2 as pb


def _message_dict(message: Any) -> dict[str, Any]:
    """The fields a message sets, by their .proto names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _full_dict(message: Any) -> dict[str, Any]:
    """Every field of a message, defaults included, by their .proto names."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def task_from_proto(task: pb.TaskDescription) -> TaskDescription:
    """The validated task; :class:`TaskError` violations are prefixed with ``task.``."""
    data = _message_dict(task)
    data.pop("source", None)  # output only: what the client describes is a description
    try:
        return parse_task(data, field="task")
    except TaskError as exc:
        raise TaskError(exc.violations) from None


def stated_traits(task: pb.TaskDescription) -> dict[str, dict[str, Any]]:
    """Per head name, the traits a request states beside a dataset (see RecommendRequest.task)."""
    from advisor.core import TRAIT_FIELDS

    found = {}
    for head in task.heads:
        fields = {k: v for k, v in _message_dict(head).items() if k in TRAIT_FIELDS}
        if fields:
            found[head.name or "target"] = fields
    return found


def task_to_proto(task: TaskDescription) -> pb.TaskDescription:
    data = task.model_dump(mode="json", exclude_none=True, exclude={"notes"})
    return json_format.ParseDict(data, pb.TaskDescription())


def options_from_proto(options: pb.Options) -> dict[str, Any]:
    """Keyword arguments of ``recommend()`` that the request sets (unset fields keep the defaults)."""
    found: dict[str, Any] = {}
    for name in ("budget_s", "repeats", "epochs", "max_rows", "trials", "race"):
        if options.HasField(name):
            found[name] = getattr(options, name)
    for name in ("device", "metric"):
        if getattr(options, name):
            found[name] = getattr(options, name)
    if options.HasField("training"):
        found["training"] = _message_dict(options.training)
    return found


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
    return pb.Evidence(
        metric=evidence.metric,
        per_repeat=_nan_for_none(evidence.per_repeat),
        diverged_repeats=evidence.diverged_repeats,
        curves=[pb.Curve(values=curve) for curve in evidence.curves],
        post_hoc_values=evidence.post_hoc_values or [],
        protocols=protocols,
        repeats=evidence.repeats,
        **_present(
            mean=evidence.mean, std=evidence.std, ci_low=evidence.ci_low, ci_high=evidence.ci_high,
            dropped_after=evidence.dropped_after,
        ),
    )  # fmt: skip


def _nan_for_none(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _none_for_nan(values: Any) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]


def _candidate(candidate: Any) -> pb.Candidate:
    spec = candidate.spec.model_dump(mode="json")
    post_hoc = candidate.post_hoc
    return pb.Candidate(
        rank=candidate.rank,
        head=candidate.head,
        spec_json=json.dumps(spec),
        spec=_struct(spec),
        prior=candidate.prior,
        score=candidate.score,
        tie_group=candidate.tie_group,
        rule_id=candidate.rule_id,
        title=candidate.title,
        rationale=candidate.rationale,
        references=candidate.references,
        **_present(
            post_hoc=None
            if post_hoc is None
            else pb.PostHoc(kind=post_hoc.kind, **_present(tau=post_hoc.tau)),
            evidence=_evidence(candidate.evidence),
        ),
    )


def response_to_proto(recommendation: Recommendation) -> pb.RecommendResponse:
    """The response message of a recommendation."""
    settings = recommendation.settings
    return pb.RecommendResponse(
        task=task_to_proto(recommendation.task),
        heads=[
            pb.HeadResult(
                head=h.head,
                type=h.type,
                metric=h.metric,
                higher_is_better=h.higher_is_better,
                candidates=[_candidate(c) for c in h.candidates],
                explanation=h.explanation,
                evidence_source=h.evidence_source,
                stopped_by=h.stopped_by,
                epochs_completed=h.epochs_completed,
                trial_seconds=h.trial_seconds,
                train_rows=h.train_rows,
                score_rows=h.score_rows,
                repeats=h.repeats,
                protocols=h.protocols,
                member_epochs=h.member_epochs,
                cut_short=h.cut_short,
            )
            for h in recommendation.heads
        ],
        multi_task=[_candidate(c) for c in recommendation.multi_task],
        settings=pb.Settings(
            budget_s=settings.budget_s,
            epochs=settings.epochs,
            max_rows=settings.max_rows,
            device=settings.device,
            trials=settings.trials,
            race=settings.race,
            **_present(
                repeats=settings.repeats,
                training=None if settings.training is None else pb.Training(**settings.training),
            ),
        ),
        timings=recommendation.timings,
        notes=recommendation.notes,
    )


def _candidate_from_proto(message: pb.Candidate) -> dict[str, Any]:
    data = _full_dict(message)
    data.pop("spec_json")
    data["spec"] = json.loads(message.spec_json)
    if not message.HasField("post_hoc"):
        data["post_hoc"] = None
    if not message.HasField("evidence"):
        data["evidence"] = None
    else:
        evidence = data["evidence"]
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
    return data


def recommendation_from_proto(response: pb.RecommendResponse) -> Recommendation:
    """The :class:`Recommendation` a response carries (the client's side of :func:`response_to_proto`)."""
    heads = []
    for head in response.heads:
        data = _full_dict(head)
        data["candidates"] = [_candidate_from_proto(c) for c in head.candidates]
        heads.append(data)
    settings = _full_dict(response.settings)
    settings["repeats"] = response.settings.repeats if response.settings.HasField("repeats") else None
    settings["training"] = (
        _message_dict(response.settings.training) if response.settings.HasField("training") else None
    )
    return Recommendation.model_validate(
        {
            "task": _message_dict(response.task),
            "heads": heads,
            "multi_task": [_candidate_from_proto(c) for c in response.multi_task],
            "settings": {**settings, "rule_dirs": []},
            "timings": dict(response.timings),
            "notes": list(response.notes),
        }
    )


def violations_to_proto(violations: list[FieldViolation]) -> list[pb.FieldError]:
    return [pb.FieldError(field=v.field, description=v.description) for v in violations]

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
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def task_from_proto(task: pb.TaskDescription) -> TaskDescription:
    """The validated task; :class:`TaskError` violations are prefixed with ``task.``."""
    data = _message_dict(task)
    data.pop("source", None)  # output only: what the client describes is a description
    try:
        return parse_task(data, field="task")
    except TaskError as exc:
        raise TaskError(exc.violations) from None


def task_to_proto(task: TaskDescription) -> pb.TaskDescription:
    data = task.model_dump(mode="json", exclude_none=True, exclude={"notes"})
    return json_format.ParseDict(data, pb.TaskDescription())


def options_from_proto(options: pb.Options) -> dict[str, Any]:
    """Keyword arguments of ``recommend()`` that the request sets (unset fields keep the defaults)."""
    found: dict[str, Any] = {}
    for name in ("budget_s", "seeds", "epochs", "max_rows", "trials"):
        if options.HasField(name):
            found[name] = getattr(options, name)
    for name in ("device", "metric"):
        if getattr(options, name):
            found[name] = getattr(options, name)
    return found


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _candidate(candidate: dict[str, Any]) -> dict[str, Any]:
    spec = candidate.pop("spec")
    candidate["spec_json"] = json.dumps(spec)
    evidence = candidate.get("evidence")
    if evidence is not None:
        evidence["per_seed"] = [math.nan if v is None else v for v in evidence["per_seed"]]
        evidence["best_epochs"] = [0 if v is None else v for v in evidence["best_epochs"]]
        evidence["curves"] = [{"values": curve} for curve in evidence["curves"]]
    return {key: value for key, value in candidate.items() if value is not None}


def response_to_proto(recommendation: Recommendation) -> pb.RecommendResponse:
    """The response message of a recommendation."""
    data = recommendation.model_dump(mode="json")
    heads = []
    for head in data["heads"]:
        head["candidates"] = [_candidate(c) for c in head["candidates"]]
        heads.append(head)
    response = pb.RecommendResponse(
        task=task_to_proto(recommendation.task),
        settings=json_format.ParseDict(data["settings"], pb.Settings(), ignore_unknown_fields=True),
        timings=data["timings"],
        notes=data["notes"],
    )
    for head in heads:
        message = json_format.ParseDict(head, pb.HeadResult())
        response.heads.append(message)
    for candidate in data["multi_task"]:
        response.multi_task.append(json_format.ParseDict(_candidate(candidate), pb.Candidate()))
    _attach_structs(response, recommendation)
    return response


def _attach_structs(response: pb.RecommendResponse, recommendation: Recommendation) -> None:
    """Fill each candidate's Struct spec beside its JSON text."""
    for message, head in zip(response.heads, recommendation.heads, strict=True):
        for candidate_message, candidate in zip(message.candidates, head.candidates, strict=True):
            candidate_message.spec.CopyFrom(_struct(candidate.spec.model_dump(mode="json")))
    for candidate_message, candidate in zip(response.multi_task, recommendation.multi_task, strict=True):
        candidate_message.spec.CopyFrom(_struct(candidate.spec.model_dump(mode="json")))


def _candidate_from_proto(message: pb.Candidate) -> dict[str, Any]:
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    data.pop("spec_json")
    data["spec"] = json.loads(message.spec_json)
    if not message.HasField("post_hoc"):
        data["post_hoc"] = None
    if not message.HasField("evidence"):
        data["evidence"] = None
    else:
        evidence = data["evidence"]
        evidence["per_seed"] = [None if math.isnan(v) else v for v in message.evidence.per_seed]
        evidence["best_epochs"] = [None if v == 0 else v for v in message.evidence.best_epochs]
        evidence["curves"] = [list(curve.values) for curve in message.evidence.curves]
        for name in ("mean", "std", "ci_low", "ci_high"):
            evidence[name] = getattr(message.evidence, name) if message.evidence.HasField(name) else None
        if not message.evidence.post_hoc_values:
            evidence["post_hoc_values"] = None
    return data


def recommendation_from_proto(response: pb.RecommendResponse) -> Recommendation:
    """The :class:`Recommendation` a response carries (the client's side of :func:`response_to_proto`)."""
    heads = []
    for head in response.heads:
        data = json_format.MessageToDict(
            head, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        data["candidates"] = [_candidate_from_proto(c) for c in head.candidates]
        heads.append(data)
    settings = json_format.MessageToDict(
        response.settings, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
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

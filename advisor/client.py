"""A Python client of the LossAdvisor gRPC service (what ``advisor-cli recommend --server`` uses).

Example::

    from advisor.client import AdvisorClient
    with AdvisorClient("127.0.0.1:50051") as client:
        result = client.recommend({"heads": [{"type": "binary", "class_histogram": [900, 100]}]})
        result.best().spec
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from grpc_status import rpc_status

from advisor.errors import AdvisorError, FieldViolation
from advisor.recommendation import Recommendation
from advisor.service.convert import recommendation_from_proto, task_to_proto
from advisor.spec import LossSpec
from advisor.task import parse_task
from lossadvisor.v1 import advisor_pb2 as pb
from lossadvisor.v1 import advisor_pb2_grpc

# gRPC's own retries (A6): a shed call (RESOURCE_EXHAUSTED, the server is busy) or a lost worker or draining
# server (UNAVAILABLE) is tried again with backoff; other languages can use the same service config.
SERVICE_CONFIG = json.dumps({
    "methodConfig": [{
        "name": [{"service": "lossadvisor.v1.LossAdvisor"}],
        "retryPolicy": {
            "maxAttempts": 5, "initialBackoff": "1s", "maxBackoff": "8s", "backoffMultiplier": 2,
            "retryableStatusCodes": ["RESOURCE_EXHAUSTED", "UNAVAILABLE"],
        },
    }]
})  # fmt: skip


class ServiceError(AdvisorError):
    """The service refused a call; ``code`` is the gRPC status, ``violations`` the BadRequest details."""

    def __init__(self, code: grpc.StatusCode, violations: list[FieldViolation]) -> None:
        super().__init__(violations)
        self.code = code


def _service_error(error: grpc.RpcError) -> ServiceError:
    status = rpc_status.from_call(error)
    violations = []
    if status is not None:
        from google.rpc import error_details_pb2

        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    if not violations:
        violations = [FieldViolation("", f"{error.code().name}: {error.details()}")]
    return ServiceError(error.code(), violations)


def build_request(
    data_or_task: Any, *, target: str | list[str] | None = None, task: str | None = None, **options: Any
) -> pb.RecommendRequest:
    """A RecommendRequest from a task description (dict, JSON, TaskDescription), a CSV file path or a pandas
    DataFrame (sent as CSV bytes, which the service reads with the same reader as files)."""
    request = pb.RecommendRequest(options=json_format.ParseDict(options, pb.Options()))
    is_text = isinstance(data_or_task, str)
    if (
        isinstance(data_or_task, Mapping)
        or (is_text and data_or_task.lstrip().startswith("{"))
        or hasattr(data_or_task, "heads")
    ):
        request.task.CopyFrom(task_to_proto(parse_task(data_or_task)))
        return request
    targets = [target] if isinstance(target, str) else list(target or [])
    if hasattr(data_or_task, "to_csv"):  # a DataFrame: no pandas import here for the other inputs
        content = data_or_task.to_csv(index=False).encode("utf-8")
        request.dataset.CopyFrom(pb.Dataset(csv=content, target_columns=targets, task_type=task or ""))
        return request
    if not isinstance(data_or_task, str | Path):
        raise AdvisorError(
            FieldViolation(
                "data",
                f"got {type(data_or_task).__name__}; a task description, a CSV path or a pandas DataFrame",
            )
        )
    path = Path(data_or_task)
    if not path.is_file():
        raise AdvisorError(FieldViolation("data", f"no such file: {path}"))
    request.dataset.CopyFrom(pb.Dataset(csv=path.read_bytes(), target_columns=targets, task_type=task or ""))
    return request


class AdvisorClient:
    """A channel to the service with typed calls; errors become :class:`ServiceError`."""

    def __init__(
        self, target: str, *, token: str | None = None, root_certificates: bytes | None = None,
        timeout: float | None = None,
    ) -> None:  # fmt: skip
        options = [("grpc.max_receive_message_length", 16 * 1024 * 1024),
                   ("grpc.max_send_message_length", 16 * 1024 * 1024),
                   ("grpc.enable_retries", 1), ("grpc.service_config", SERVICE_CONFIG)]  # fmt: skip
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates)
            self.channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.stub = advisor_pb2_grpc.LossAdvisorStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout

    def __enter__(self) -> AdvisorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method: Callable, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as error:
            raise _service_error(error) from None

    def recommend(self, data_or_task: Any, **options: Any) -> Recommendation:
        """As :func:`advisor.recommend`, served remotely (task descriptions or CSV files)."""
        request = build_request(data_or_task, **options)
        return recommendation_from_proto(self._call(self.stub.Recommend, request))

    def recommend_stream(
        self, data_or_task: Any, *, on_progress: Callable[[pb.Progress], None] | None = None, **options: Any
    ) -> Recommendation:
        """As :meth:`recommend`, calling ``on_progress`` for every progress event."""
        request = build_request(data_or_task, **options)
        try:
            events: Iterator[pb.RecommendEvent] = self.stub.RecommendStream(
                request, timeout=self.timeout, metadata=self.metadata
            )
            for event in events:
                if event.HasField("result"):
                    return recommendation_from_proto(event.result)
                if on_progress is not None:
                    on_progress(event.progress)
        except grpc.RpcError as error:
            raise _service_error(error) from None
        raise ServiceError(grpc.StatusCode.UNKNOWN, [FieldViolation("", "the stream ended without a result")])

    def list_losses(self) -> list[dict[str, Any]]:
        response = self._call(self.stub.ListLosses, pb.ListLossesRequest())
        return [
            json_format.MessageToDict(entry, preserving_proto_field_name=True) for entry in response.losses
        ]

    def validate_spec(self, spec: LossSpec | Mapping[str, Any] | str) -> LossSpec:
        """The normalised spec; :class:`ServiceError` with the field errors when it does not build."""
        text = (
            spec.to_json()
            if isinstance(spec, LossSpec)
            else spec
            if isinstance(spec, str)
            else json.dumps(spec)
        )
        response = self._call(self.stub.ValidateSpec, pb.ValidateSpecRequest(spec_json=text))
        if not response.valid:
            violations = [FieldViolation(e.field, e.description) for e in response.errors]
            raise ServiceError(grpc.StatusCode.INVALID_ARGUMENT, violations)
        return LossSpec.model_validate_json(response.normalized_spec_json)

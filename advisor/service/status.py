"""Rich gRPC errors (google.rpc.Status with details), as grpc.aio handlers raise them."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from advisor._text import shorten
from advisor.errors import FieldViolation

DOMAIN = "lossadvisor"
MAX_MESSAGE = 1_000  # characters of the status message
MAX_VIOLATIONS = 20


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


async def abort(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    reason: str,
    *,
    violations: list[FieldViolation] | None = None,
    retry_after_s: float | None = None,
) -> None:
    """Abort the call with ``code``, ErrorInfo(reason), and BadRequest / RetryInfo details when given.

    Violations come shortened (:class:`FieldViolation`); at most :data:`MAX_VIOLATIONS` are sent and the message
    is cut too, so the trailer stays under gRPC's 16 KB metadata limit whatever the request held (a longer one
    fails as RESOURCE_EXHAUSTED).
    """
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN))]
    message = shorten(message, MAX_MESSAGE)
    if violations:
        shown = violations[:MAX_VIOLATIONS]
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in shown
            ]
        )
        if len(violations) > len(shown):
            bad_request.field_violations.add(
                field="request", description=f"and {len(violations) - len(shown)} more violations"
            )
        details.append(_pack(bad_request))
    pushback: tuple[tuple[str, str], ...] = ()
    if retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after_s * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        # gRPC clients with a retry policy wait exactly this long (gRFC A6 server pushback).
        pushback = (("grpc-retry-pushback-ms", str(int(retry_after_s * 1000))),)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    rich = rpc_status.to_status(status)
    await context.abort(rich.code, rich.details, (*rich.trailing_metadata, *pushback))


async def invalid(context: grpc.aio.ServicerContext, violations: list[FieldViolation], reason: str) -> None:
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:3])
    await abort(context, grpc.StatusCode.INVALID_ARGUMENT, summary, reason, violations=violations)

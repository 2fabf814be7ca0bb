"""Rich gRPC errors (google.rpc.Status with details), as grpc.aio handlers raise them and as long-running
operations keep them (google.longrunning.Operation.error)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
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


class Failure(Exception):
    """A call's failure as a rich status: raised where no call context is at hand (a background operation's
    work), then aborted on a call (:meth:`abort`) or kept as an operation's error (:meth:`status`)."""

    def __init__(
        self, code: grpc.StatusCode, message: str, reason: str, *,
        violations: list[FieldViolation] | None = None, retry_after_s: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason
        self.violations, self.retry_after_s = violations, retry_after_s

    def status(self) -> status_pb2.Status:
        """The google.rpc.Status: ErrorInfo(reason), and BadRequest / RetryInfo details when given.

        Violations come shortened (:class:`FieldViolation`); at most :data:`MAX_VIOLATIONS` are sent and the
        message is cut too, so the trailer stays under gRPC's 16 KB metadata limit whatever the request held (a
        longer one fails as RESOURCE_EXHAUSTED).
        """
        details = [_pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN))]
        if self.violations:
            shown = self.violations[:MAX_VIOLATIONS]
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in shown
                ]
            )
            if len(self.violations) > len(shown):
                bad_request.field_violations.add(
                    field="request", description=f"and {len(self.violations) - len(shown)} more violations"
                )
            details.append(_pack(bad_request))
        if self.retry_after_s is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after_s * 1e9))
            details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        return status_pb2.Status(
            code=getattr(code_pb2, self.code.name),
            message=shorten(self.message, MAX_MESSAGE),
            details=details,
        )

    async def abort(self, context: grpc.aio.ServicerContext) -> None:
        """Abort the call with this status."""
        pushback: tuple[tuple[str, str], ...] = ()
        if self.retry_after_s is not None:
            # gRPC clients with a retry policy wait exactly this long (gRFC A6 server pushback).
            pushback = (("grpc-retry-pushback-ms", str(int(self.retry_after_s * 1000))),)
        rich = rpc_status.to_status(self.status())
        await context.abort(rich.code, rich.details, (*rich.trailing_metadata, *pushback))


def invalid_argument(violations: list[FieldViolation], reason: str) -> Failure:
    """INVALID_ARGUMENT with BadRequest ``violations``; the message names the first few."""
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:3])
    return Failure(grpc.StatusCode.INVALID_ARGUMENT, summary, reason, violations=violations)


async def abort(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    reason: str,
    *,
    violations: list[FieldViolation] | None = None,
    retry_after_s: float | None = None,
) -> None:
    """Abort the call with ``code``, ErrorInfo(reason), and BadRequest / RetryInfo details when given."""
    await Failure(code, message, reason, violations=violations, retry_after_s=retry_after_s).abort(context)


async def invalid(context: grpc.aio.ServicerContext, violations: list[FieldViolation], reason: str) -> None:
    await invalid_argument(violations, reason).abort(context)


async def parse(raw: bytes, message: type, context: grpc.aio.ServicerContext) -> Any:
    """``message`` parsed from a request's raw bytes; garbage bytes abort with INVALID_ARGUMENT (a deserializer
    that raised would surface as UNKNOWN with a traceback)."""
    try:
        return message.FromString(raw)
    except DecodeError as exc:
        violation = FieldViolation("request", f"not a valid {message.__name__} message: {exc}")
        await invalid(context, [violation], "MALFORMED_REQUEST")

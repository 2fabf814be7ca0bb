"""Start a real server process on a free port for service tests (never grpc_testing)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from lossadvisor.v1 import advisor_pb2_grpc


class ServerProcess:
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "advisor", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.process.stdout.readline()
        if not line.startswith("listening on"):
            self.process.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.process.stderr.read()}")
        self.address = line.split()[-1]
        self.channel = grpc.insecure_channel(self.address)
        self.stub = advisor_pb2_grpc.LossAdvisorStub(self.channel)

    def stop(self, timeout: float = 60) -> int:
        self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(timeout=timeout)
        self.process.kill()
        return self.process.wait()


def details(error: grpc.RpcError) -> dict:
    """ErrorInfo reason, BadRequest fields and RetryInfo delay of a rich error."""
    status = rpc_status.from_call(error)
    found: dict = {"fields": {}}
    for detail in status.details if status else ():
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                if kind is error_details_pb2.ErrorInfo:
                    found["reason"] = message.reason
                elif kind is error_details_pb2.BadRequest:
                    found["fields"] = {v.field: v.description for v in message.field_violations}
                else:
                    found["retry_s"] = message.retry_delay.ToNanoseconds() / 1e9
    return found


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False

"""Start a real server process on a free port for service tests (never grpc_testing)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from lossadvisor.v1 import advisor_pb2_grpc


class ServerProcess:
    def __init__(self, *args: str) -> None:
        """``advisor-cli serve --port 0 ARGS``."""
        self.args = args
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

    def restart(self) -> int:
        """Stop the server (SIGTERM) and start it again with the same arguments (on a new port); the old one's
        exit code."""
        code = self.stop()
        self.__init__(*self.args)
        return code

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
    return status_details(rpc_status.from_call(error))


def status_details(status) -> dict:
    """:func:`details` of a google.rpc.Status (a failed call's, or a long-running operation's error)."""
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


def rpc_error(call, *args, **kwargs) -> tuple[grpc.StatusCode, dict]:
    """The status code and :func:`details` of a call that must fail."""
    import pytest

    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    return caught.value.code(), details(caught.value)


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (read from /proc, Linux)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


def busiest_child(pid: int, seconds: float = 1.5) -> int:
    """The child process that used the most CPU over ``seconds``: the trial worker during a trial call."""
    before = {child: _cpu_ticks(child) for child in children(pid)}
    time.sleep(seconds)
    used = {}
    for child, ticks in before.items():
        with contextlib.suppress(OSError):
            used[child] = _cpu_ticks(child) - ticks
    return max(used, key=used.get)


def reflect(channel: grpc.Channel, service: str, requests: list, metadata=None, timeout: float = 10) -> list:
    """Ask a server reflection service (``grpc.reflection.v1`` or ``v1alpha``: the messages are the same on
    the wire, so the v1alpha classes build both) and return its answers."""
    from grpc_reflection.v1alpha import reflection_pb2

    call = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(call(iter(requests), timeout=timeout, metadata=metadata))

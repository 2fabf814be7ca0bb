"""A Python client of the LossAdvisor gRPC service (what ``advisor-cli recommend --server`` uses).

Example::

    from advisor.client import AdvisorClient
    with AdvisorClient("127.0.0.1:50051") as client:
        result = client.recommend({"heads": [{"type": "binary", "class_histogram": [900, 100]}]})
        result.best().spec
        client.recommend("data.csv", target="y")  # or an Arrow IPC / Feather file, or a DataFrame
        client.recommend("cells.npz")  # images and masks: an .npz, (images, masks) arrays, folders, a manifest
        client.recommend(("noisy/", "clean/"))  # audio clips, or (inputs, targets) arrays with sample_rate=
        name = client.start_recommend("data.csv", target="y")  # a long-running operation, returns at once
        client.wait_operation(name).recommendation
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import json_format
from google.rpc import status_pb2
from grpc_status import rpc_status

from advisor.errors import AdvisorError, FieldViolation
from advisor.recommendation import Recommendation
from advisor.service import npz
from advisor.service.convert import (
    DATASET_LIMIT_BYTES,
    duration,
    enum_number,
    enum_value,
    recommendation_from_proto,
    task_to_proto,
)
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


# File suffixes sent as Arrow IPC (arrow_ipc); any other file goes as CSV text unless it starts with ARROW1.
ARROW_SUFFIXES = (".arrow", ".arrows", ".feather", ".ipc")
ARROW_MAGIC = b"ARROW1"
# Formats the service does not read, by suffix and by leading bytes, with what to do instead.
_REFUSED_SUFFIXES = {
    ".parquet": "a Parquet file: read it with pandas.read_parquet and pass the DataFrame",
    ".pq": "a Parquet file: read it with pandas.read_parquet and pass the DataFrame",
    ".xlsx": "an Excel workbook: read it with pandas.read_excel and pass the DataFrame",
    ".xls": "an Excel workbook: read it with pandas.read_excel and pass the DataFrame",
    ".json": "JSON: read it with pandas.read_json and pass the DataFrame (or pass a task description dict)",
    ".gz": "compressed: decompress it first (the service reads plain CSV bytes)",
    ".bz2": "compressed: decompress it first (the service reads plain CSV bytes)",
    ".xz": "compressed: decompress it first (the service reads plain CSV bytes)",
    ".zst": "compressed: decompress it first (the service reads plain CSV bytes)",
    ".zip": "a zip archive: extract the CSV first",
}
_REFUSED_MAGIC = (
    (b"PAR1", "a Parquet file: read it with pandas.read_parquet and pass the DataFrame"),
    (b"PK\x03\x04", "a zip archive or an Excel workbook: extract the CSV, or read it with pandas.read_excel and "
     "pass the DataFrame"),
    (b"\x1f\x8b", "gzip-compressed: decompress it first (the service reads plain CSV bytes)"),
)  # fmt: skip
_ALLOWED = (
    "a CSV file (any other suffix is read as CSV text), an Arrow IPC or Feather v2 file "
    f"({', '.join(ARROW_SUFFIXES)}), a pandas DataFrame, a task description, or for segmentation and audio an "
    ".npz file, (images, masks) or (inputs, targets) arrays, or their folders or manifest CSV"
)


class DataError(AdvisorError):
    """Data the client cannot send: a missing file, a format the service does not read, too many bytes."""


class ServiceError(AdvisorError):
    """The service refused a call; ``code`` is the gRPC status, ``violations`` the BadRequest details."""

    def __init__(self, code: grpc.StatusCode, violations: list[FieldViolation]) -> None:
        super().__init__(violations)
        self.code = code

    def __reduce__(self) -> tuple[type, tuple[grpc.StatusCode, list[FieldViolation]]]:
        return (type(self), (self.code, self.violations))


def _bad_request(status: status_pb2.Status | None) -> list[FieldViolation]:
    """The BadRequest field violations of a rich status."""
    violations = []
    if status is not None:
        from google.rpc import error_details_pb2

        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return violations


def _service_error(error: grpc.RpcError) -> ServiceError:
    violations = _bad_request(rpc_status.from_call(error))
    return ServiceError(
        error.code(), violations or [FieldViolation("", f"{error.code().name}: {error.details()}")]
    )


def _status_error(status: status_pb2.Status) -> ServiceError:
    """An operation's error (a google.rpc.Status) as the ServiceError the unary call would have raised."""
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), grpc.StatusCode.UNKNOWN)
    return ServiceError(code, _bad_request(status) or [FieldViolation("", f"{code.name}: {status.message}")])


# The channel's message limit (the server's default --max-message-mb), and what a request adds to its dataset.
MESSAGE_BYTES = 16 * 1024 * 1024
REQUEST_MARGIN_BYTES = 1024 * 1024
# A wait_operation call asks the server to wait at most this long per WaitOperation (the server caps it too).
WAIT_SLICE_S = 30.0
# Deadline of a WaitOperation beyond the wait it asks for.
WAIT_MARGIN_S = 10.0


@dataclass(frozen=True)
class RecommendOperation:
    """Where a StartRecommend operation stands."""

    name: str
    state: str  # queued, running, succeeded, failed or cancelled
    done: bool
    progress: pb.Progress | None  # the latest trial progress (None before the first trial epoch)
    # Succeeded; or cancelled once trials had started: what they found (heads stopped_by "cancelled").
    recommendation: Recommendation | None
    error: ServiceError | None  # failed (as the unary call would have), or cancelled before it started


def _operation(operation: lro.Operation) -> RecommendOperation:
    metadata = pb.RecommendMetadata()
    operation.metadata.Unpack(metadata)
    recommendation = error = None
    if operation.HasField("response"):
        response = pb.RecommendResponse()
        operation.response.Unpack(response)
        recommendation = recommendation_from_proto(response)
    elif operation.HasField("error"):
        error = _status_error(operation.error)
    return RecommendOperation(
        name=operation.name, state=enum_value(pb.RecommendMetadata.State, metadata.state) or "unspecified",
        done=operation.done, progress=metadata.progress if metadata.HasField("progress") else None,
        recommendation=recommendation, error=error,
    )  # fmt: skip


def _check_size(size: int, what: str, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise DataError(
            FieldViolation(
                "data",
                f"{what} is {size / 2**20:.1f} MiB ({size:,} bytes); a request carries at most {limit:,} bytes "
                f"({limit / 2**20:g} MiB, the server's --dataset-limit-mb): sample rows, or run advisor.recommend "
                "in-process",
            )
        )


def _file_content(path: Path, limit: int | None) -> tuple[str, bytes]:
    """``("csv" | "arrow_ipc", bytes)`` of a data file; :class:`DataError` naming ``data`` when it cannot go."""
    if not path.is_file():
        raise DataError(FieldViolation("data", f"no such file: {path}" if not path.exists() else
                                       f"{path} is not a file; {_ALLOWED}"))  # fmt: skip
    suffix = path.suffix.lower()
    if suffix in _REFUSED_SUFFIXES:
        raise DataError(FieldViolation("data", f"{path.name} is {_REFUSED_SUFFIXES[suffix]}; the service takes "
                                       f"{_ALLOWED}"))  # fmt: skip
    _check_size(path.stat().st_size, path.name, limit)
    content = path.read_bytes()
    if suffix in ARROW_SUFFIXES or content.startswith(ARROW_MAGIC):
        return "arrow_ipc", content
    for magic, kind in _REFUSED_MAGIC:
        if content.startswith(magic):
            raise DataError(FieldViolation("data", f"{path.name} is {kind}; the service takes {_ALLOWED}"))
    return "csv", content


def _npz_file(path: Path, limit: int | None) -> bytes:
    """An .npz file's bytes as they are: the service reads its keys (and refuses any but its two sets)."""
    if not path.is_file():
        raise DataError(FieldViolation("data", f"no such file: {path}"))
    _check_size(path.stat().st_size, path.name, limit)
    return path.read_bytes()


def _check_expanded(size: int, what: str, limit: int | None) -> None:
    """Refuse arrays the server would refuse uncompressed, before they are read into memory."""
    if limit is not None and size > npz.EXPANSION * limit:
        raise DataError(FieldViolation(
            "data", f"{what} take at least {size:,} bytes as arrays; the server accepts at most "
            f"{npz.EXPANSION * limit:,} ({npz.EXPANSION} times its --dataset-limit-mb): use fewer or smaller ones, "
            "or run advisor.recommend in-process",
        ))  # fmt: skip


def _array_dataset(
    data: Any, target: Any, task: str | None, sample_rate: int | None, max_rows: int, limit: int | None
) -> tuple[bytes, int | None] | None:
    """Segmentation or audio data as npz bytes and the clips' sample rate; None for anything else (a table).

    Arrays go as they are (the service samples them as ``advisor.recommend`` would). Folders, manifests and
    .npy pairs are recognised and read by the profiler's own readers, with the sample ``advisor.recommend``
    draws (its default ``random_state`` 0), so the service profiles the pairs the in-process call would.
    """
    from advisor.profiling.audio import is_audio_source
    from advisor.profiling.common import ProfileError, check_options
    from advisor.profiling.images import is_segmentation_source

    try:
        check_options(task, max_rows)  # before max_rows sizes a sample
        if is_audio_source(data, target, task, sample_rate):
            arrays, sample_rate = _audio_arrays(data, sample_rate, max_rows, limit)
        elif is_segmentation_source(data, target, task):
            arrays = _segmentation_arrays(data, max_rows, limit)
        else:
            return None
    except ProfileError as exc:  # the message the in-process call gives, naming the same field
        raise DataError(exc.violations) from None
    return npz.pack(arrays), sample_rate


def _is_paths(data: Any) -> bool:
    """Files to read (a path, or a pair with a path in it: the reader refuses a path beside an array)."""
    return not isinstance(data, tuple | list) or any(isinstance(part, str | Path) for part in data)


def _segmentation_arrays(data: Any, max_rows: int, limit: int | None) -> dict[str, Any]:
    import numpy as np

    from advisor.profiling.images import MAX_IMAGES, open_pairs

    if not _is_paths(data):
        return dict(zip(npz.KEYS["segmentation"], data, strict=True))
    pairs = open_pairs(data, min(max_rows, MAX_IMAGES), np.random.default_rng(0))
    each = [pairs.size(int(i)) for i in pairs.indices]  # from the file headers: no pixel is read yet
    # A lower bound of what the arrays take: one float32 channel per pixel.
    _check_expanded(sum(h * w * 4 for h, w in each), "the images", limit)
    sizes = set(each)
    if len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:5])
        raise DataError(FieldViolation(
            "data", f"the images have {len(sizes)} sizes ({shown}{' ...' if len(sizes) > 5 else ''}, height x "
            "width); the service takes arrays, of one size: resize them to one size, or run advisor.recommend "
            "in-process",
        ))  # fmt: skip
    images, masks = zip(*(pairs.load(int(i)) for i in pairs.indices), strict=True)
    return {"images": np.stack(images), "masks": np.stack(masks)}


def _audio_arrays(
    data: Any, sample_rate: int | None, max_rows: int, limit: int | None
) -> tuple[dict[str, Any], int]:
    import numpy as np

    from advisor.profiling.audio import MAX_CLIPS, checked_infos, open_audio

    if not _is_paths(data):
        if sample_rate is None:
            raise DataError(FieldViolation("sample_rate", "arrays do not say their sample rate: pass "
                                           "sample_rate=, in Hz"))  # fmt: skip
        return dict(zip(npz.KEYS["audio"], data, strict=True)), sample_rate
    pairs = open_audio(data, min(max_rows, MAX_CLIPS), np.random.default_rng(0), sample_rate)
    infos = checked_infos(pairs)  # the profiler's checks: one rate, each target its input's length
    _check_expanded(sum(2 * 4 * info.channels * info.frames for info in infos), "the clips", limit)
    shapes = {(info.channels, info.frames) for info in infos}
    if len(shapes) > 1:
        shown = ", ".join(f"{c} x {f:,}" for c, f in sorted(shapes)[:5])
        raise DataError(FieldViolation(
            "data", f"the clips have {len(shapes)} shapes ({shown}{' ...' if len(shapes) > 5 else ''}, channels x "
            "samples); the service takes arrays, of one shape: trim or pad them to one length, or run "
            "advisor.recommend in-process",
        ))  # fmt: skip
    loaded = [pairs.load(int(i), 0, info.frames) for i, info in zip(pairs.indices, infos, strict=True)]
    inputs, targets = zip(*loaded, strict=True)
    return {"inputs": np.stack(inputs), "targets": np.stack(targets)}, infos[0].rate


def _content(
    data: Any, target: Any, task: str | None, sample_rate: int | None, max_rows: int, limit: int | None
) -> tuple[str, bytes, int | None]:
    """The Dataset content field to set, its bytes, and the sample rate to send with them."""
    if hasattr(data, "to_csv"):  # a DataFrame: no pandas import here for the other inputs
        content = data.to_csv(index=False).encode("utf-8")
        _check_size(len(content), "the DataFrame as CSV", limit)
        return "csv", content, sample_rate
    is_path = isinstance(data, str | Path)
    suffix = Path(data).suffix.lower() if is_path else ""
    if suffix == ".npz":
        return "npz", _npz_file(Path(data), limit), sample_rate
    if (is_path and suffix not in ARROW_SUFFIXES) or (isinstance(data, tuple | list) and len(data) == 2):
        packed = _array_dataset(data, target, task, sample_rate, max_rows, limit)
        if packed is not None:
            _check_size(len(packed[0]), "the arrays as .npz", limit)
            return "npz", *packed
    if is_path:
        return *_file_content(Path(data), limit), sample_rate
    raise DataError(FieldViolation("data", f"got {type(data).__name__}; {_ALLOWED}"))


def _options(options: dict[str, Any]) -> pb.Options:
    """Options as ``recommend()`` takes them; the Duration and enum fields are filled beside the deprecated
    seconds and strings, so older servers (which know only those) and newer ones read the same request."""
    message = json_format.ParseDict(options, pb.Options())
    if message.HasField("budget_s") and (budget := duration(message.budget_s)) is not None:
        message.budget.CopyFrom(budget)
    message.eval_metric = enum_number(pb.Metric, message.metric)
    return message


def build_request(
    data_or_task: Any, *, target: str | list[str] | None = None, task: str | None = None,
    sample_rate: int | None = None, label_separator: str | None = None,
    dataset_limit_bytes: int | None = DATASET_LIMIT_BYTES, **options: Any,
) -> pb.RecommendRequest:  # fmt: skip
    """A RecommendRequest from a task description (dict, JSON, TaskDescription), a data file path (``str`` or
    ``pathlib.Path``: CSV, or Arrow IPC / Feather v2 by suffix ``.arrow``, ``.feather``, ``.ipc`` or by the
    ``ARROW1`` magic bytes), a pandas DataFrame (sent as CSV bytes, which the service reads with the same
    reader as files), or segmentation and audio data (sent as ``Dataset.npz``): an ``.npz`` file (as it is),
    arrays ``(images, masks)`` or ``(inputs, targets)`` with ``sample_rate``, or what ``advisor.recommend``
    reads from files: folders ``(images, masks)`` or ``(inputs, targets)``, a pair of .npy files, a manifest
    CSV (these are read here, sampled as in-process, and packed). ``label_separator`` travels as
    ``Dataset.label_separator`` (the service checks it).

    Raises :class:`DataError` (a ``ValueError``) naming ``data`` for a missing file, a format the service does
    not read (Parquet, Excel, compressed files), images or clips that differ in size (arrays have one), or more
    than ``dataset_limit_bytes`` (the server's default; None: no check here, the server still checks).
    """
    request = pb.RecommendRequest(options=_options(options))
    is_text = isinstance(data_or_task, str)
    if (
        isinstance(data_or_task, Mapping)
        or (is_text and data_or_task.lstrip().startswith("{"))
        or hasattr(data_or_task, "heads")
    ):
        if sample_rate is not None:  # as advisor.recommend refuses it
            raise DataError(FieldViolation("sample_rate", "goes with audio data; a description states "
                                           "sample_rate in its audio head"))  # fmt: skip
        if label_separator is not None:  # likewise
            raise DataError(FieldViolation("label_separator", "splits a label column of data; a description "
                                           "states a multilabel head's labels itself"))  # fmt: skip
        request.task.CopyFrom(task_to_proto(parse_task(data_or_task)))
        return request
    from advisor.core import DEFAULT_MAX_ROWS

    targets = [target] if isinstance(target, str) else list(target or [])
    max_rows = options.get("max_rows", DEFAULT_MAX_ROWS)
    kind, content, sample_rate = _content(
        data_or_task, target, task, sample_rate, max_rows, dataset_limit_bytes
    )
    dataset = pb.Dataset(
        target_columns=targets, task_type=task or "", head_type=enum_number(pb.HeadType, task)
    )
    setattr(dataset, kind, content)
    if sample_rate is not None:
        dataset.sample_rate = sample_rate
    if label_separator is not None:
        if not isinstance(label_separator, str):  # the service checks its value; the proto takes text only
            raise DataError(FieldViolation(
                "label_separator", f"got {label_separator!r}; a separator is text such as '|'"
            ))  # fmt: skip
        dataset.label_separator = label_separator
    request.dataset.CopyFrom(dataset)
    return request


class AdvisorClient:
    """A channel to the service with typed calls; errors become :class:`ServiceError`."""

    def __init__(
        self, target: str, *, token: str | None = None, root_certificates: bytes | None = None,
        timeout: float | None = None, dataset_limit_bytes: int | None = DATASET_LIMIT_BYTES,
    ) -> None:  # fmt: skip
        # A request carries the dataset and a little more: a larger dataset limit (a server started with a
        # larger --dataset-limit-mb and --max-message-mb) raises the send limit; None leaves it to the server.
        send = (
            -1
            if dataset_limit_bytes is None
            else max(MESSAGE_BYTES, dataset_limit_bytes + REQUEST_MARGIN_BYTES)
        )
        options = [("grpc.max_receive_message_length", MESSAGE_BYTES), ("grpc.max_send_message_length", send),
                   ("grpc.enable_retries", 1), ("grpc.service_config", SERVICE_CONFIG)]  # fmt: skip
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates)
            self.channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.stub = advisor_pb2_grpc.LossAdvisorStub(self.channel)
        self.operations = operations_pb2_grpc.OperationsStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        # Refuse a larger dataset before sending it (the server's default limit; None leaves it to the server).
        self.dataset_limit_bytes = dataset_limit_bytes

    def __enter__(self) -> AdvisorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method: Callable, request: Any, *, timeout: float | None = None) -> Any:
        try:
            return method(request, timeout=timeout or self.timeout, metadata=self.metadata)
        except grpc.RpcError as error:
            raise _service_error(error) from None

    def recommend(self, data_or_task: Any, **options: Any) -> Recommendation:
        """As :func:`advisor.recommend`, served remotely: a task description, a CSV or Arrow IPC / Feather file
        path (``str`` or ``pathlib.Path``), a DataFrame, or images and masks or audio clips (an .npz file,
        arrays, folders, a manifest; ``sample_rate=`` for audio arrays): see :func:`build_request`."""
        request = build_request(data_or_task, dataset_limit_bytes=self.dataset_limit_bytes, **options)
        return recommendation_from_proto(self._call(self.stub.Recommend, request))

    def recommend_stream(
        self, data_or_task: Any, *, on_progress: Callable[[pb.Progress], None] | None = None, **options: Any
    ) -> Recommendation:
        """As :meth:`recommend`, calling ``on_progress`` for every progress event."""
        request = build_request(data_or_task, dataset_limit_bytes=self.dataset_limit_bytes, **options)
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

    def start_recommend(self, data_or_task: Any, **options: Any) -> str:
        """As :meth:`recommend`, as a long-running operation on the server: returns its name at once (invalid
        input raises :class:`ServiceError` here); follow it with :meth:`get_operation` or
        :meth:`wait_operation`."""
        request = build_request(data_or_task, dataset_limit_bytes=self.dataset_limit_bytes, **options)
        return self._call(self.stub.StartRecommend, request).name

    def get_operation(self, name: str) -> RecommendOperation:
        """Where the operation ``name`` stands; :class:`ServiceError` NOT_FOUND once deleted or expired."""
        return _operation(self._call(self.operations.GetOperation, lro.GetOperationRequest(name=name)))

    def wait_operation(self, name: str, timeout: float | None = None) -> RecommendOperation:
        """The operation once done, or as it stands after ``timeout`` seconds (None: wait until done)."""
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        while True:
            asked = time.monotonic()
            left = min(max(deadline - asked, 0.0), WAIT_SLICE_S)
            request = lro.WaitOperationRequest(name=name, timeout=duration(left))
            found = _operation(
                self._call(self.operations.WaitOperation, request, timeout=left + WAIT_MARGIN_S)
            )
            if found.done or time.monotonic() >= deadline:
                return found
            # An early answer (the server is draining): at most one WaitOperation a second, never a busy loop.
            time.sleep(max(min(asked + 1.0, deadline) - time.monotonic(), 0.0))

    def list_operations(self, *, done: bool | None = None, limit: int = 100) -> list[RecommendOperation]:
        """Up to ``limit`` operations the server keeps, oldest first; ``done`` True or False filters by state."""
        found: list[RecommendOperation] = []
        token = ""
        while len(found) < limit:
            request = lro.ListOperationsRequest(
                filter="" if done is None else f"done={str(done).lower()}",
                page_size=min(limit - len(found), 100), page_token=token,
            )  # fmt: skip
            response = self._call(self.operations.ListOperations, request)
            found += [_operation(operation) for operation in response.operations]
            token = response.next_page_token
            if not token:
                break
        return found

    def delete_operation(self, name: str) -> None:
        """Forget a finished operation (FAILED_PRECONDITION while it runs)."""
        self._call(self.operations.DeleteOperation, lro.DeleteOperationRequest(name=name))

    def cancel_operation(self, name: str) -> None:
        """Ask the operation to stop: a queued one ends cancelled, a running one keeps what its trials found."""
        self._call(self.operations.CancelOperation, lro.CancelOperationRequest(name=name))

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

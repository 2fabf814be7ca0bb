"""What runs in the service's worker processes (spawned, never forked): one recommendation per call.

Results and input errors come back as plain data (JSON text, or field violations), never as pickled
exceptions, and progress goes through a queue the servicer drains.
"""

from __future__ import annotations

import io
from typing import Any

from advisor.errors import AdvisorError, FieldViolation, WorkerLostError
from advisor.trials.executors import throttled

# How often the trainer's cancel check asks the manager process (each ask is an IPC round trip).
CANCEL_POLL_S = 0.05
# Where this worker's calls run their trials (``advisor-cli serve --executor``), set by :func:`initialize`.
_EXECUTOR: dict[str, Any] = {}


def initialize(executor: str = "local", ray_address: str | None = None) -> None:
    """Import the heavy modules once per worker, so calls do not pay for torch and scikit-learn, and keep the
    server's executor for this worker's calls."""
    import advisor.core
    import advisor.profiling  # noqa: F401

    _EXECUTOR.update(executor=executor, ray_address=ray_address)


def warm() -> bool:
    """A no-op task that makes the pool start its processes at server start."""
    return True


def _source(dataset: dict[str, Any]) -> Any:
    """CSV bytes as a file object (profiling reads it as it reads a CSV file); Arrow IPC as a DataFrame; an npz
    as the arrays (images, masks) or (inputs, targets)."""
    if "csv" in dataset:
        return io.BytesIO(dataset["csv"])
    if "npz" in dataset:
        from advisor.service import npz

        return npz.load(dataset["npz"], dataset["arrays"])
    import pyarrow as pa
    import pyarrow.ipc

    data = dataset["arrow_ipc"]
    for reader in (pyarrow.ipc.open_stream, pyarrow.ipc.open_file):
        try:
            return reader(pa.BufferReader(data)).read_all().to_pandas()
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError):
            continue
    raise AdvisorError(FieldViolation("dataset.arrow_ipc", "not an Arrow IPC stream or file"))


def run(payload: dict[str, Any], cancel: Any, progress: Any) -> dict[str, Any]:
    """Run ``recommend()`` for a call; returns ``{"result": json}``, ``{"violations": [...], "kind": ...}``, or
    ``{"lost": message}`` when a Ray worker running its trials died."""
    from advisor.core import recommend

    def report(event: Any) -> None:
        p = event.progress
        progress.put({"head": event.head, "epoch": p.epoch, "epochs": p.epochs, "alive": p.alive,
                      "members": p.members, "best_so_far": p.best_so_far, "elapsed_s": p.elapsed_s})  # fmt: skip

    try:
        dataset = payload.get("dataset")
        if dataset is not None:
            source: Any = _source(dataset)
            extra = {"target": dataset.get("target") or None, "task": dataset.get("task_type") or None,
                     "sample_rate": dataset.get("sample_rate"),
                     "label_separator": dataset.get("label_separator")}  # fmt: skip
        else:
            source, extra = payload["task"], {}
        # options["cache"] is the server's cache file (or False): recommend() opens it here, in this process,
        # one connection per look-up or store, so no connection crosses a process boundary.
        result = recommend(
            source, **extra, **payload["options"], **_EXECUTOR, progress=report,
            cancel=throttled(cancel.is_set, CANCEL_POLL_S),
        )  # fmt: skip
        return {"result": result.model_dump_json()}
    except WorkerLostError as exc:  # a Ray worker died: the servicer answers UNAVAILABLE, as for its own
        return {"lost": str(exc)}
    except AdvisorError as exc:
        return {"kind": type(exc).__name__, "violations": request_violations(exc, payload)}


def request_violations(exc: AdvisorError, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """A core error's violations as ``(request field, description)``: ``budget_s`` becomes ``options.budget``
    when the request set the Duration (``payload["aliases"]``), and so on."""
    prefix, dataset = _FIELD_PREFIX.get(type(exc).__name__, ""), payload.get("dataset") or {}
    aliases = payload.get("aliases", {})
    found = []
    for violation in exc.violations:
        field = _field(prefix, violation.field, dataset)
        found.append((aliases.get(field, field), violation.description))
    return found


# Core errors name fields of recommend(); over gRPC they live under these request fields.
_FIELD_PREFIX = {"ProfileError": "dataset", "OptionsError": "options", "TaskError": "task"}
# The profiler's fields of arrays (images or inputs; masks; target clips): in an npz, all of them are its arrays.
_ARRAY_FIELDS = ("data", "masks", "target_audio")


def _field(prefix: str, field: str, dataset: dict[str, Any]) -> str:
    """The request field of a core error's field; ``data`` is the dataset content the request sent."""
    if "npz" in dataset and field in _ARRAY_FIELDS:
        return "dataset.npz"
    if field == "data" and dataset:
        return "dataset.csv" if "csv" in dataset else "dataset.arrow_ipc"
    if field.startswith(("dataset", "task.", "options.")) or not prefix:
        return field or prefix
    return f"{prefix}.{field}" if field else prefix

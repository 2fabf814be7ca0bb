"""The LossAdvisor servicer: parse, validate, admit, delegate to a worker process, convert back.

Handlers take raw request bytes so that garbage bytes become INVALID_ARGUMENT (a deserializer that raises
would surface as UNKNOWN with a traceback). StartRecommend validates as Recommend does and hands the work to
a background operation (advisor.service.operations), which queues for the same worker slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue as queues
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import grpc
from google.longrunning import operations_proto_pb2 as lro

from advisor.core import (
    DEFAULT_BUDGET_S,
    DEFAULT_EPOCHS,
    DEFAULT_MAX_ROWS,
    check_options,
    check_training,
    check_trial_heads,
    recommend,
)
from advisor.errors import AdvisorError, FieldViolation
from advisor.losses import catalog, normalize_spec
from advisor.recommendation import Recommendation
from advisor.rules.loader import RuleLoadError
from advisor.service import npz, status, worker
from advisor.service.convert import (
    DATASET_LIMIT_BYTES,
    dataset_head_type,
    dataset_label_separator,
    loss_entry_to_proto,
    option_field,
    options_from_proto,
    progress_to_proto,
    response_to_proto,
    stated_traits,
    task_from_proto,
    violations_to_proto,
)
from advisor.service.operations import DEFAULT_QUEUE, OperationsServicer, OperationStore
from advisor.task import Head
from lossadvisor.v1 import advisor_pb2 as pb

SERVICE = "lossadvisor.v1.LossAdvisor"
LOG = logging.getLogger("advisor.service")
# A trial call needs at least this much of its deadline (worker hand-off, profiling, one epoch, the reply).
MIN_TRIAL_DEADLINE_S = 3.0
# Deadline kept back from the trial budget for everything around the trials.
DEADLINE_MARGIN_S = 2.0
RETRY_AFTER_S = 2.0
# Rules-only calls and replies over more classes than this run on a thread; smaller ones inline on the loop.
HEAVY_CLASSES = 1_000
# How long a cancelled call's worker may take to stop before it is killed and replaced.
STOP_GRACE_S = 1.0
# ErrorInfo reasons of the input errors a worker reports (a dataset that cannot be read or profiled, ...).
_REASONS = {
    "ProfileError": "INVALID_DATASET",
    "AdvisorError": "INVALID_DATASET",
    "OptionsError": "INVALID_OPTIONS",
    "TaskError": "INVALID_TASK",
}


@dataclass(frozen=True)
class Limits:
    """Request limits the servicer enforces (documented in the README and the .proto)."""

    dataset_bytes: int = DATASET_LIMIT_BYTES
    admission: int = 1
    rules_admission: int = 4  # large rules-only calls at once, each on a thread off the event loop
    queue: int = DEFAULT_QUEUE  # operations waiting for a worker; StartRecommend sheds beyond


class LossAdvisorServicer:
    """Small handlers: each converts, validates, and delegates to the core or a worker process."""

    def __init__(
        self, new_pool: Callable[[], Executor], manager: Any, limits: Limits, *, cache: str | bool = False,
        operations: OperationStore | None = None,
    ) -> None:  # fmt: skip
        self.new_pool, self.manager, self.limits = new_pool, manager, limits
        self.cache = cache  # the result cache file the workers open (advisor.cache), or False for none
        self.pool = new_pool()
        self.draining = False  # set on SIGTERM: new calls are refused, running ones finish
        self.in_flight = 0
        self.slots = asyncio.Semaphore(limits.admission)
        self.rule_slots = asyncio.Semaphore(limits.rules_admission)
        self.shed = 0
        # Long-running operations (StartRecommend): they wait for the same slots instead of being shed.
        self.operations = OperationsServicer(
            operations or OperationStore(None), slots=self.slots, work=self._operation_work,
            new_cancel=manager.Event, draining=lambda: self.draining,
        )  # fmt: skip

    # ------------------------------------------------------------------------------------------ handlers

    async def Recommend(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        with self._counted():
            return await self._recommend(raw, context)

    async def _recommend(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        payload = await self._payload(raw, context)
        if not payload["trials"]:
            result = await self._rules_only(payload, context)
        else:
            async for event in self._trials(payload, context):
                result = event
        return await _to_proto(result)

    async def RecommendStream(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RecommendEvent]:
        with self._counted():
            async for event in self._recommend_stream(raw, context):
                yield event

    async def _recommend_stream(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RecommendEvent]:
        payload = await self._payload(raw, context)
        if not payload["trials"]:
            yield pb.RecommendEvent(result=await _to_proto(await self._rules_only(payload, context)))
            return
        async for event in self._trials(payload, context):
            if isinstance(event, Recommendation):
                yield pb.RecommendEvent(result=await _to_proto(event))
            else:
                yield pb.RecommendEvent(progress=progress_to_proto(event))

    async def StartRecommend(self, raw: bytes, context: grpc.aio.ServicerContext) -> lro.Operation:
        with self._counted():
            payload = await self._payload(raw, context)
            if self.operations.queued >= self.limits.queue:
                await self._shed(context, f"all {self.limits.admission} trial workers and {self.limits.queue} "
                                 "queued operations")  # fmt: skip
            return await self.operations.start(payload, context)

    async def ListLosses(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.ListLossesResponse:
        await status.parse(raw, pb.ListLossesRequest, context)
        return pb.ListLossesResponse(losses=[loss_entry_to_proto(info) for info in catalog()])

    async def ValidateSpec(self, raw: bytes, context: grpc.aio.ServicerContext) -> pb.ValidateSpecResponse:
        request = await status.parse(raw, pb.ValidateSpecRequest, context)
        try:
            spec = normalize_spec(request.spec_json)
        except AdvisorError as exc:
            return pb.ValidateSpecResponse(valid=False, errors=violations_to_proto(exc.violations))
        return pb.ValidateSpecResponse(valid=True, normalized_spec_json=spec.to_json())

    # ------------------------------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def stop_workers(self) -> None:
        """At shutdown: cancel queued work and kill running workers (their calls have been cancelled)."""
        _kill_processes(self.pool)
        self.pool.shutdown(wait=True, cancel_futures=True)

    async def _payload(self, raw: bytes, context: grpc.aio.ServicerContext) -> dict[str, Any]:
        """Everything a worker needs, validated here so that bad input never takes a worker slot."""
        if self.draining:
            await status.abort(
                context, grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry on another instance",
                "DRAINING", retry_after_s=RETRY_AFTER_S,
            )  # fmt: skip
        request = await status.parse(raw, pb.RecommendRequest, context)
        try:
            options = options_from_proto(request.options)
        except AdvisorError as exc:
            await status.invalid(context, exc.violations, "INVALID_OPTIONS")
        payload: dict[str, Any] = {"options": options, "trials": options.get("trials", True)}
        options["cache"] = self.cache if options.get("cache", True) else False  # opened by the worker
        # The request fields that set the options, for errors that name recommend()'s (budget_s: options.budget).
        aliases = {f"options.{name}": f"options.{option_field(request.options, name)}" for name in options}
        payload["aliases"] = aliases
        try:
            check_options(
                options.get("budget_s", DEFAULT_BUDGET_S), options.get("repeats"),
                options.get("epochs", DEFAULT_EPOCHS), options.get("max_rows", DEFAULT_MAX_ROWS),
                options.get("device", "auto"),
            )  # fmt: skip
            check_training(options.get("training"))
        except AdvisorError as exc:
            fields = [f"options.{v.field}" for v in exc.violations]
            violations = [FieldViolation(aliases.get(field, field), v.description)
                          for field, v in zip(fields, exc.violations, strict=True)]  # fmt: skip
            await status.invalid(context, violations, "INVALID_OPTIONS")
        if request.HasField("dataset"):
            payload["dataset"] = await self._dataset(request.dataset, context)
            traits = stated_traits(request.task)
            if traits:
                options["traits"] = traits
        elif request.HasField("task"):
            try:
                task = task_from_proto(request.task)
                if payload["trials"]:
                    check_trial_heads(task, field="task")
            except AdvisorError as exc:
                await status.invalid(context, exc.violations, "INVALID_TASK")
            payload["task"] = task.model_dump(mode="json")
            payload["large"] = _large(task.heads)
        else:
            await status.invalid(context, [FieldViolation("task", "give a task description or a dataset")],
                                 "INVALID_TASK")  # fmt: skip
        return payload

    async def _dataset(self, dataset: pb.Dataset, context: grpc.aio.ServicerContext) -> dict[str, Any]:
        kind = dataset.WhichOneof("content")
        if kind is None:
            await status.invalid(
                context, [FieldViolation("dataset", "set csv, arrow_ipc or npz")], "INVALID_DATASET"
            )
        content = getattr(dataset, kind)
        if len(content) > self.limits.dataset_bytes:
            violation = FieldViolation(
                f"dataset.{kind}",
                f"{len(content):,} bytes; at most {self.limits.dataset_bytes:,} are accepted",
            )
            await status.invalid(context, [violation], "DATASET_TOO_LARGE")
        try:
            task_type = dataset_head_type(dataset)
            label_separator = dataset_label_separator(dataset, task_type)
        except AdvisorError as exc:
            await status.invalid(context, exc.violations, "INVALID_DATASET")
        targets = list(dataset.target_columns)
        found = {
            kind: content,
            "target": targets[0] if len(targets) == 1 else targets,
            "task_type": task_type,
            "label_separator": label_separator,
        }
        sample_rate = dataset.sample_rate if dataset.HasField("sample_rate") else None
        if kind == "npz":
            found["arrays"] = await self._npz(content, sample_rate, context)
            found["sample_rate"] = sample_rate
        elif sample_rate is not None:
            violation = FieldViolation(npz.RATE_FIELD, f"applies to an npz of audio clips (inputs and targets), "
                                       f"not to {kind}: a table states no sample rate")  # fmt: skip
            await status.invalid(context, [violation], "INVALID_DATASET")
        return found

    async def _npz(self, content: bytes, sample_rate: int | None, context: grpc.aio.ServicerContext) -> str:
        """The kind of arrays an npz holds ("segmentation" or "audio"), checked from its headers alone: the
        keys, dtypes and shapes (the profiler's rules) and the uncompressed size."""
        try:
            headers = npz.headers(content)
        except AdvisorError as exc:
            await status.invalid(context, exc.violations, "INVALID_DATASET")
        expanded, allowed = npz.expanded_bytes(headers), npz.EXPANSION * self.limits.dataset_bytes
        if expanded > allowed:
            violation = FieldViolation(npz.FIELD, f"the arrays take {expanded:,} bytes uncompressed; at most "
                                       f"{allowed:,} ({npz.EXPANSION} times the dataset limit) are accepted")  # fmt: skip
            await status.invalid(context, [violation], "DATASET_TOO_LARGE")
        try:
            return npz.kind_of(headers, sample_rate)
        except AdvisorError as exc:
            violations = worker.request_violations(exc, {"dataset": {"npz": content}})
            await status.invalid(context, [FieldViolation(*v) for v in violations], "INVALID_DATASET")

    def _kill(self, pool: Executor) -> None:
        """Kill the pool's worker processes (a stuck call) and start a fresh pool."""
        _kill_processes(pool)
        LOG.warning(
            "a trial worker did not stop within %.0f s of its call's end: killed and replaced", STOP_GRACE_S
        )
        self._replace(pool)

    def _replace(self, broken: Executor) -> None:
        """A pool whose worker died cannot run anything again: start a fresh one (once, however many calls
        saw it break) and warm it so the next call does not pay the start-up."""
        if self.pool is not broken:
            return
        broken.shutdown(wait=False, cancel_futures=True)
        self.pool = self.new_pool()
        asyncio.get_running_loop().run_in_executor(self.pool, worker.warm)

    async def _rules_only(self, payload: dict[str, Any], context: grpc.aio.ServicerContext) -> Recommendation:
        if "dataset" in payload:  # profiling reads the data: that is worker work
            result = None
            async for event in self._trials(payload, context):
                result = event
            return result
        call = functools.partial(recommend, payload["task"], **payload["options"])
        try:
            if not payload["large"]:
                return call()  # well under a millisecond: inline (a thread's GIL hand-offs cost more)
            if self.rule_slots.locked():
                await self._shed(
                    context, f"all {self.limits.rules_admission} slots for large rules-only calls"
                )
            # On a thread: a large description never stalls health checks and other calls.
            async with self.rule_slots:
                return await asyncio.to_thread(call)
        except RuleLoadError as exc:
            await _rules_broken(exc.violations).abort(context)
        except AdvisorError as exc:
            violations = [FieldViolation(*v) for v in worker.request_violations(exc, payload)]
            await status.invalid(context, violations, _REASONS.get(type(exc).__name__, "INVALID_ARGUMENT"))

    async def _shed(self, context: grpc.aio.ServicerContext, what: str) -> None:
        """Refuse a call while ``what`` are busy: RESOURCE_EXHAUSTED with RetryInfo and a retry pushback."""
        self.shed += 1
        await status.abort(
            context, grpc.StatusCode.RESOURCE_EXHAUSTED, f"{what} are busy; retry shortly", "OVERLOADED",
            retry_after_s=RETRY_AFTER_S,
        )  # fmt: skip

    def _budget(self, payload: dict[str, Any], context: grpc.aio.ServicerContext) -> float | None:
        """The trial budget the deadline allows, or None when the deadline is too short for any trial."""
        budget = payload["options"].get("budget_s", DEFAULT_BUDGET_S)
        remaining = context.time_remaining()
        if remaining is None:
            return budget
        if remaining < MIN_TRIAL_DEADLINE_S:
            return None
        return min(budget, remaining - DEADLINE_MARGIN_S)

    async def _trials(self, payload: dict[str, Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """Run a call in a worker: progress dicts as they come, then the Recommendation. The call's deadline
        caps the trial budget, and a call that finds every worker busy is shed."""
        budget = self._budget(payload, context)
        if budget is None:
            await status.abort(
                context, grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the deadline leaves {context.time_remaining():.1f} s; trials need at least {MIN_TRIAL_DEADLINE_S} s "
                "(or set options.trials=false)", "DEADLINE_TOO_SHORT",
            )  # fmt: skip
        if self.slots.locked():
            await self._shed(context, f"all {self.limits.admission} trial workers")
        try:
            async with self.slots:
                async for event in self._work(payload, budget, self.manager.Event()):
                    yield event
        except status.Failure as failure:
            await failure.abort(context)

    async def _operation_work(
        self, payload: dict[str, Any], cancel: Any
    ) -> AsyncIterator[pb.Progress | pb.RecommendResponse]:
        """An operation's run (its caller holds a slot): no deadline, so the options' budget is the cap."""
        budget = payload["options"].get("budget_s", DEFAULT_BUDGET_S)
        async for event in self._work(payload, budget, cancel):
            yield await _to_proto(event) if isinstance(event, Recommendation) else progress_to_proto(event)

    async def _work(self, payload: dict[str, Any], budget: float, cancel: Any) -> AsyncIterator[Any]:
        """Run a validated payload on a worker while the caller holds a slot: progress dicts as they come, then
        the Recommendation; :class:`status.Failure` for bad input and a lost worker. Setting ``cancel`` ends the
        trials early with what they found; closing the iteration (client cancel, deadline, shutdown) stops the
        worker."""
        progress = self.manager.Queue()
        job = {**payload, "options": {**payload["options"], "budget_s": budget}}
        job.pop("trials")
        pool = self.pool
        try:
            future = asyncio.get_running_loop().run_in_executor(pool, worker.run, job, cancel, progress)
            while not future.done():
                for event in await asyncio.to_thread(_drain, progress):
                    yield event
                await asyncio.wait({future}, timeout=0.1)
            outcome = future.result()
            for event in _drain(progress, wait=False):
                yield event
        except BrokenProcessPool:
            self._replace(pool)
            raise status.Failure(
                grpc.StatusCode.UNAVAILABLE,
                "the trial worker stopped during this call (killed, or out of memory); a fresh one is starting: "
                "retry", "WORKER_LOST", retry_after_s=RETRY_AFTER_S,
            ) from None  # fmt: skip
        except BaseException:
            # Client cancel or deadline: stop the worker, and keep its slot until it has really stopped. A
            # step that does not check the cancel flag (profiling a very wide CSV) has STOP_GRACE_S to end;
            # then its worker is killed and replaced, so the slot never stays blocked past the deadline.
            cancel.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(future), STOP_GRACE_S)
            if not future.done():
                future.add_done_callback(lambda f: f.cancelled() or f.exception())  # nobody awaits it now
                self._kill(pool)
            raise
        if "lost" in outcome:  # a Ray worker running its trials died
            raise status.Failure(
                grpc.StatusCode.UNAVAILABLE, outcome["lost"], "WORKER_LOST", retry_after_s=RETRY_AFTER_S
            )
        if "violations" in outcome:
            violations = [FieldViolation(field, description) for field, description in outcome["violations"]]
            if outcome["kind"] == RuleLoadError.__name__:
                raise _rules_broken(violations)
            raise status.invalid_argument(violations, _REASONS.get(outcome["kind"], "INVALID_ARGUMENT"))
        yield Recommendation.model_validate_json(outcome["result"])


def _kill_processes(pool: Executor) -> None:
    for process in list(getattr(pool, "_processes", {}).values()):  # ProcessPoolExecutor keeps them here
        with contextlib.suppress(OSError):
            process.kill()


def _large(heads: list[Head]) -> bool:
    """Whether rules and replies for these heads are costly: the cost grows with the number of classes."""
    return sum(head.num_classes or 0 for head in heads) > HEAVY_CLASSES


async def _to_proto(result: Recommendation) -> pb.RecommendResponse:
    """The reply; a large one is built off the event loop (10,000-class weight lists take 0.2 s to convert)."""
    if not _large(result.task.heads):
        return response_to_proto(result)
    return await asyncio.to_thread(response_to_proto, result)


def _rules_broken(violations: list[FieldViolation]) -> status.Failure:
    """Rule files that stopped loading after the start are the operator's fault, not the client's."""
    LOG.error("the rule files do not load: %s", "; ".join(str(v) for v in violations))
    return status.Failure(
        grpc.StatusCode.INTERNAL,
        "the server's rule files do not load; its operator has to fix them (the server log says where)",
        "RULES_BROKEN",
    )


def _drain(queue: Any, *, wait: bool = True) -> list[dict[str, Any]]:
    """Everything queued now (waiting up to 0.1 s for the first item when ``wait``)."""
    events = []
    try:
        events.append(queue.get(timeout=0.1) if wait else queue.get_nowait())
        while True:
            events.append(queue.get_nowait())
    except queues.Empty:
        pass
    return events

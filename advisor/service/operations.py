"""Long-running operations (Google AIP-151): StartRecommend's background runs, the SQLite store that keeps
them, and the ``google.longrunning.Operations`` service that follows them.

An operation is named ``operations/`` and 32 hex digits (a uuid4). It waits in a bounded queue for a trial
worker (the admission semaphore Recommend uses, so queued operations go before new Recommend calls), runs as a
Recommend call would, and ends SUCCEEDED (the response), FAILED (the error the unary call would have given) or
CANCELLED (the partial response when trials had started, else error CANCELLED). Its metadata is a
``lossadvisor.v1.RecommendMetadata``.

:class:`OperationStore` keeps one row per operation: name, state, create/update/expire time (nanoseconds),
the metadata bytes, and the response or the error bytes. Like the result cache (``advisor.cache``) it uses
WAL mode and a busy timeout with one connection per operation, and moves a damaged file aside to
``NAME.corrupt`` (with a warning) and starts afresh; other failures (a read-only folder, a lock held past the
timeout) raise :class:`StoreError`, which a call answers with UNAVAILABLE. The file is created by the first
operation, so a server that never starts one leaves none. Finished rows are kept ``ttl_s`` seconds, never
served after that and purged lazily (at start and whenever an operation starts). At start, rows still queued
or running (the server stopped or died under them) become FAILED with error ABORTED. ``path=None`` keeps the
rows in memory (one connection shared under a lock).

Store calls run on threads (``asyncio.to_thread``), never on the event loop; a running operation writes its
progress at most every :data:`PROGRESS_WRITE_S` and is served from memory, so readers see its newest state.
One server per store file: a second server starting on the file reports the first one's live operations as
ABORTED.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import empty_pb2
from google.rpc import status_pb2

from advisor.cache import OFF_VALUES, connect, default_path, file_inode, move_aside
from advisor.errors import FieldViolation
from advisor.service import status
from lossadvisor.v1 import advisor_pb2 as pb

SERVICE = lro.DESCRIPTOR.services_by_name["Operations"].full_name  # google.longrunning.Operations
LOG = logging.getLogger("advisor.service")
_M = pb.RecommendMetadata
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = _M.QUEUED, _M.RUNNING, _M.SUCCEEDED, _M.FAILED, _M.CANCELLED
FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
DEFAULT_TTL_S = 24 * 3600.0
DEFAULT_QUEUE = 64
# A running operation's progress reaches the store at most this often (readers get it from memory at once).
PROGRESS_WRITE_S = 1.0
# WaitOperation waits at most this long per call (and never past the call's deadline, less a margin).
MAX_WAIT_S = 60.0
WAIT_DEADLINE_MARGIN_S = 0.5
# How often a WaitOperation checks whether the server began draining (it then answers at once).
WAIT_POLL_S = 0.5
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000
RESTARTED = "the server restarted before this operation finished; start it again"
_NAME = re.compile(r"operations/[0-9a-f]{32}")
_FILTER = re.compile(r"\s*done\s*=\s*(true|false)\s*", re.IGNORECASE)
_T = TypeVar("_T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS operations (name TEXT PRIMARY KEY, state INTEGER NOT NULL, "
    "done INTEGER NOT NULL, create_ns INTEGER NOT NULL, update_ns INTEGER NOT NULL, expire_ns INTEGER, "
    "metadata BLOB NOT NULL, response BLOB, error BLOB)",
    "CREATE INDEX IF NOT EXISTS operations_listed ON operations (create_ns, name)",
    "CREATE INDEX IF NOT EXISTS operations_expire ON operations (expire_ns)",
)
_UNEXPIRED = "(expire_ns IS NULL OR expire_ns > ?)"  # not expired (rows may outlive their time until purged)


class StoreError(Exception):
    """The operation store cannot be read or written (a read-only folder, a lock held past the timeout, a full
    disk); the call that needed it fails with UNAVAILABLE."""


@dataclass
class Record:
    """One operation: its metadata, and once done its response or its error."""

    name: str
    metadata: pb.RecommendMetadata
    response: pb.RecommendResponse | None = None
    error: status_pb2.Status | None = None

    @property
    def done(self) -> bool:
        return self.metadata.state in FINAL

    def operation(self) -> lro.Operation:
        """The google.longrunning.Operation (a snapshot: Any packs copy the messages)."""
        operation = lro.Operation(name=self.name, done=self.done)
        operation.metadata.Pack(self.metadata)
        if self.response is not None:
            operation.response.Pack(self.response)
        elif self.error is not None:
            operation.error.CopyFrom(self.error)
        return operation


class OperationStore:
    """Operation rows in one SQLite file, or in memory for ``path=None`` (see the module docstring)."""

    def __init__(self, path: str | Path | None, *, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.path = None if path is None else Path(path).expanduser()
        self.ttl_ns = int(ttl_s * 1e9)
        self._lock = threading.Lock()
        self._memory: sqlite3.Connection | None = None
        if self.path is None:  # one connection (an in-memory database lives as long as its connection)
            self._memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            for statement in _SCHEMA:
                self._memory.execute(statement)

    @classmethod
    def open(
        cls, operations: bool | str | Path, port: int, *, ttl_s: float = DEFAULT_TTL_S
    ) -> OperationStore:
        """The store ``ServerConfig.operations`` names for a server on ``port``: ``False`` in memory; ``True``
        ``operations-PORT.sqlite3`` beside the result cache's default file (per port, so that servers on one
        host never share one), but in memory for port 0 (a free port: a restarted server gets another, so its
        clients could not find it there again); else that file, or memory for ``off`` (or 0, false, no, none)."""
        if isinstance(operations, str) and operations.strip().lower() in OFF_VALUES:
            operations = False
        if operations is False or (operations is True and port == 0):
            return cls(None, ttl_s=ttl_s)
        if operations is True:
            operations = default_path().with_name(f"operations-{port}.sqlite3")
        return cls(operations, ttl_s=ttl_s)

    def expire_ns(self, done_ns: int) -> int:
        """When an operation done at ``done_ns`` is forgotten."""
        return done_ns + self.ttl_ns

    # ------------------------------------------------------------------------------------------ operations

    def put(self, record: Record) -> None:
        """Insert or replace the row of ``record``; expired rows are purged on the way."""
        self._run(self._put, record, write=True)

    def get(self, name: str) -> Record | None:
        """The unexpired operation ``name``, or None."""
        return self._run(self._get, name, missing=None)

    def page(self, *, done: bool | None, after: tuple[int, str] | None, limit: int) -> list[Record]:
        """Up to ``limit`` unexpired operations by creation time (then name) after ``after``; ``done`` filters."""
        return self._run(self._page, done, after, limit, missing=[])

    def delete(self, name: str) -> bool:
        """Delete the unexpired operation ``name``; whether there was one."""
        return self._run(self._delete, name, write=True, missing=False)

    def recover(self) -> int:
        """At server start: every operation still queued or running becomes FAILED with error ABORTED (its
        server stopped under it), and expired rows are purged. Returns how many were aborted."""
        return self._run(self._recover, missing=0)

    # ------------------------------------------------------------------------------------------ SQLite

    def _put(self, db: sqlite3.Connection, record: Record) -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM operations WHERE expire_ns <= ?", (time.time_ns(),))
        _write_row(db, record)
        db.execute("COMMIT")

    def _get(self, db: sqlite3.Connection, name: str) -> Record | None:
        row = db.execute(
            f"SELECT name, metadata, response, error FROM operations WHERE name = ? AND {_UNEXPIRED}",
            (name, time.time_ns()),
        ).fetchone()
        return None if row is None else _record(*row)

    def _page(
        self, db: sqlite3.Connection, done: bool | None, after: tuple[int, str] | None, limit: int
    ) -> list[Record]:
        clauses, values = [_UNEXPIRED], [time.time_ns()]
        if done is not None:
            clauses.append("done = ?")
            values.append(int(done))
        if after is not None:
            clauses.append("(create_ns, name) > (?, ?)")
            values += after
        rows = db.execute(
            f"SELECT name, metadata, response, error FROM operations WHERE {' AND '.join(clauses)} "
            "ORDER BY create_ns, name LIMIT ?",
            (*values, limit),
        ).fetchall()
        return [_record(*row) for row in rows]

    def _delete(self, db: sqlite3.Connection, name: str) -> bool:
        return (
            db.execute(
                f"DELETE FROM operations WHERE name = ? AND {_UNEXPIRED}", (name, time.time_ns())
            ).rowcount
            > 0
        )

    def _recover(self, db: sqlite3.Connection) -> int:
        now = time.time_ns()
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM operations WHERE expire_ns <= ?", (now,))
        rows = db.execute("SELECT name, metadata FROM operations WHERE done = 0").fetchall()
        error = status.Failure(grpc.StatusCode.ABORTED, RESTARTED, "SERVER_RESTARTED").status()
        for name, metadata in rows:
            record = Record(name, pb.RecommendMetadata.FromString(metadata), error=error)
            finish(record, FAILED, now, self.expire_ns(now))
            _write_row(db, record)
        db.execute("COMMIT")
        return len(rows)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self._memory is not None:
            with self._lock:
                yield self._memory
            return
        with connect(self.path, _SCHEMA) as db:
            yield db

    def _run(self, operation: Callable[..., _T], *args: Any, write: bool = False, missing: Any = None) -> _T:
        """``operation(connection, *args)``. A read of a file not created yet gives ``missing``; a damaged file
        is moved aside and the operation retried once on a fresh one; other failures raise StoreError."""
        if not write and self.path is not None and not self.path.exists():
            return missing
        for attempt in range(2):
            inode = None if self.path is None else file_inode(self.path)
            try:
                with self._connect() as db:
                    return operation(db, *args)
            except sqlite3.OperationalError as exc:  # locked past the timeout, read-only, disk full
                raise StoreError(f"operation store {self.path or ':memory:'}: {exc}") from exc
            except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
                if attempt or self.path is None:
                    raise StoreError(f"operation store {self.path or ':memory:'}: {exc}") from exc
                move_aside(self.path, inode, exc, "operation store")
            except OSError as exc:
                raise StoreError(f"operation store {self.path}: {exc}") from exc
        raise AssertionError("not reached")  # the loop returns or raises


def _write_row(db: sqlite3.Connection, record: Record) -> None:
    meta = record.metadata
    expire = meta.expire_time.ToNanoseconds() if meta.HasField("expire_time") else None
    db.execute(
        "INSERT OR REPLACE INTO operations (name, state, done, create_ns, update_ns, expire_ns, metadata, "
        "response, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (record.name, meta.state, record.done, meta.create_time.ToNanoseconds(), meta.update_time.ToNanoseconds(),
         expire, meta.SerializeToString(),
         None if record.response is None else record.response.SerializeToString(),
         None if record.error is None else record.error.SerializeToString()),
    )  # fmt: skip


def _record(name: str, metadata: bytes, response: bytes | None, error: bytes | None) -> Record:
    return Record(
        name, pb.RecommendMetadata.FromString(metadata),
        None if response is None else pb.RecommendResponse.FromString(response),
        None if error is None else status_pb2.Status.FromString(error),
    )  # fmt: skip


def finish(record: Record, state: int, now_ns: int, expire_ns: int) -> None:
    """Mark ``record`` done in ``state`` at ``now_ns``, forgotten at ``expire_ns``."""
    record.metadata.state = state
    record.metadata.update_time.FromNanoseconds(now_ns)
    record.metadata.expire_time.FromNanoseconds(expire_ns)


# ---------------------------------------------------------------------------------------------- the service

# What runs an operation on a worker (the caller holds a worker slot): progress, then the response; raises
# status.Failure for what the unary call would have failed with. Setting the cancel flag ends the trials early.
Work = Callable[[dict[str, Any], Any], AsyncIterator["pb.Progress | pb.RecommendResponse"]]


@dataclass
class _Live:
    """An operation this server is running or has queued (and one whose final write failed)."""

    record: Record
    payload: dict[str, Any]
    task: asyncio.Task | None = None
    cancel: Any = None  # the worker's cancel flag once it runs (a manager Event)
    cancel_requested: bool = False
    waiting: bool = False  # its task has begun waiting for a slot (one cancelled before it ran runs nothing)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    written_at: float = 0.0  # monotonic time of the last store write
    store_failed: bool = False  # warned once


class OperationsServicer:
    """``google.longrunning.Operations`` over the store, and the background runs StartRecommend starts."""

    def __init__(
        self, store: OperationStore, *, slots: asyncio.Semaphore, work: Work, new_cancel: Callable[[], Any],
        draining: Callable[[], bool],
    ) -> None:  # fmt: skip
        self.store, self.slots, self.work = store, slots, work
        self.new_cancel, self.draining = new_cancel, draining
        self.live: dict[str, _Live] = {}
        self.queued = 0  # operations waiting for a worker slot

    async def start(self, payload: dict[str, Any], context: grpc.aio.ServicerContext) -> lro.Operation:
        """Queue a validated payload as a new operation; returns it (done false) once its row is stored."""
        now = time.time_ns()
        record = Record(f"operations/{uuid.uuid4().hex}", pb.RecommendMetadata(state=QUEUED))
        record.metadata.create_time.FromNanoseconds(now)
        record.metadata.update_time.FromNanoseconds(now)
        self.queued += 1  # before any await: the caller's queue check and this count stay together
        try:
            await asyncio.to_thread(self.store.put, record)
        except StoreError as exc:
            self.queued -= 1
            await _store_unavailable(context, exc)
        # Registered once stored (nobody knows the name before this call returns), with its task at once.
        live = _Live(record, payload, written_at=time.monotonic())
        live.task = asyncio.create_task(self._run(live), name=record.name)
        self.live[record.name] = live
        return record.operation()

    async def stop(self) -> None:
        """At shutdown: stop every queued and running operation without recording an end (the next start
        reports them ABORTED, as after a crash)."""
        tasks = [live.task for live in self.live.values() if live.task is not None and not live.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------------------------------ a run

    async def _run(self, live: _Live) -> None:
        record, started = live.record, False
        try:
            if live.cancel_requested:  # cancelled before this task first ran
                raise asyncio.CancelledError
            live.waiting = True
            async with self.slots:  # queued until a worker is free
                started = True
                self.queued -= 1
                live.cancel = self.new_cancel()  # a round trip to the manager process, as Recommend's
                record.metadata.state = RUNNING
                record.metadata.update_time.FromNanoseconds(time.time_ns())
                await self._write(live)
                response = None
                async for event in self.work(live.payload, live.cancel):
                    if isinstance(event, pb.Progress):
                        record.metadata.progress.CopyFrom(event)
                        record.metadata.update_time.FromNanoseconds(time.time_ns())
                        if time.monotonic() - live.written_at >= PROGRESS_WRITE_S:
                            await self._write(live)
                    else:
                        response = event
            record.response = response
            self._finish(live, CANCELLED if _cut_by_cancel(response) else SUCCEEDED)
        except status.Failure as failure:
            record.error = failure.status()
            self._finish(live, FAILED)
        except asyncio.CancelledError:
            if started or not live.cancel_requested:
                raise  # the server is stopping (a running operation's cancel goes through its worker's flag)
            cancelled = status.Failure(grpc.StatusCode.CANCELLED, "cancelled before it started", "CANCELLED")
            record.error = cancelled.status()
            self._finish(live, CANCELLED)
        except Exception as exc:  # a bug: the operation fails rather than hang as RUNNING
            LOG.exception("operation %s failed", record.name)
            internal = status.Failure(
                grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})", "INTERNAL"
            )
            record.error = internal.status()
            self._finish(live, FAILED)
        finally:
            if not started:
                self.queued -= 1
        if await self._write(live):
            del self.live[record.name]
        # else: served from memory until the server stops (the warning said why)
        live.finished.set()

    def _finish(self, live: _Live, state: int) -> None:
        now = time.time_ns()
        finish(live.record, state, now, self.store.expire_ns(now))

    async def _write(self, live: _Live) -> bool:
        """Store the operation's row; a failure is logged (once per operation) and the run goes on."""
        try:
            await asyncio.to_thread(self.store.put, live.record)
        except StoreError as exc:
            if not live.store_failed:
                LOG.warning(
                    "%s: not stored (%s); served from memory until the server stops", live.record.name, exc
                )
            live.store_failed = True
            return False
        live.written_at = time.monotonic()
        return True

    # ------------------------------------------------------------------------------------------ handlers

    async def GetOperation(self, raw: bytes, context: grpc.aio.ServicerContext) -> lro.Operation:
        request = await status.parse(raw, lro.GetOperationRequest, context)
        return (await self._record(request.name, context)).operation()

    async def ListOperations(
        self, raw: bytes, context: grpc.aio.ServicerContext
    ) -> lro.ListOperationsResponse:
        request = await status.parse(raw, lro.ListOperationsRequest, context)
        problems, done, after = [], None, None
        if request.name not in ("", "operations"):
            problems.append(
                FieldViolation("name", f"got {request.name!r}; the collection is 'operations' or empty")
            )
        if request.filter.strip():
            matched = _FILTER.fullmatch(request.filter)
            if matched is None:
                problems.append(
                    FieldViolation(
                        "filter", f"got {request.filter!r}; supported: empty, done=true, done=false"
                    )
                )
            else:
                done = matched.group(1).lower() == "true"
        if request.page_size < 0:
            problems.append(
                FieldViolation("page_size", f"got {request.page_size}; 0 (for {DEFAULT_PAGE_SIZE}) or more")
            )
        if request.page_token:
            after = _after(request.page_token, request.filter)
            if after is None:
                problems.append(
                    FieldViolation(
                        "page_token", "not a next_page_token of a ListOperations answer with this filter"
                    )
                )
        if problems:
            await status.invalid(context, problems, "INVALID_LIST_REQUEST")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        records = await self._stored(context, self.store.page, done=done, after=after, limit=size + 1)
        response = lro.ListOperationsResponse(
            operations=[self._newest(r).operation() for r in records[:size]]
        )
        if len(records) > size:
            last = records[size - 1]
            response.next_page_token = _token(
                last.metadata.create_time.ToNanoseconds(), last.name, request.filter
            )
        return response

    async def CancelOperation(self, raw: bytes, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        """Best effort: a queued operation ends CANCELLED at once; a running one's trials stop at their next
        check and it ends CANCELLED with what they found; a done one stays as it is."""
        request = await status.parse(raw, lro.CancelOperationRequest, context)
        record = await self._record(request.name, context)
        live = self.live.get(record.name)
        if live is not None and not record.done:
            live.cancel_requested = True
            if live.cancel is not None:
                await asyncio.to_thread(live.cancel.set)  # a round trip to the manager process
            elif live.waiting:
                live.task.cancel()  # still queued: it never takes a worker
            # else: its task has not run yet, and ends cancelled when it does
        return empty_pb2.Empty()

    async def DeleteOperation(self, raw: bytes, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
        request = await status.parse(raw, lro.DeleteOperationRequest, context)
        record = await self._record(request.name, context)
        if not record.done:
            await status.abort(
                context, grpc.StatusCode.FAILED_PRECONDITION,
                f"{record.name} is not done; cancel it (CancelOperation) and delete it once it is",
                "OPERATION_NOT_DONE",
            )  # fmt: skip
        self.live.pop(record.name, None)
        await self._stored(context, self.store.delete, record.name)
        return empty_pb2.Empty()

    async def WaitOperation(self, raw: bytes, context: grpc.aio.ServicerContext) -> lro.Operation:
        """The operation once done, or as it stands after ``timeout`` (at most MAX_WAIT_S and the call's
        deadline less a margin; unset: that cap), or when the server begins draining."""
        request = await status.parse(raw, lro.WaitOperationRequest, context)
        limit = MAX_WAIT_S
        if request.HasField("timeout"):
            if request.timeout.seconds < 0 or request.timeout.nanos < 0:
                violation = FieldViolation("timeout", "a negative duration; give 0 or more")
                await status.invalid(context, [violation], "INVALID_TIMEOUT")
            limit = min(limit, request.timeout.ToNanoseconds() / 1e9)
        remaining = context.time_remaining()
        if remaining is not None:
            limit = min(limit, remaining - WAIT_DEADLINE_MARGIN_S)
        record = await self._record(request.name, context)
        live = self.live.get(record.name)
        if live is not None:
            until = time.monotonic() + limit
            while (
                not live.finished.is_set() and not self.draining() and (left := until - time.monotonic()) > 0
            ):
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(live.finished.wait(), min(left, WAIT_POLL_S))
            record = await self._record(request.name, context)
        return record.operation()

    # ------------------------------------------------------------------------------------------ helpers

    def _newest(self, record: Record) -> Record:
        """The live state of a stored operation this server runs (the store has its progress of up to a second
        ago)."""
        live = self.live.get(record.name)
        return record if live is None else live.record

    async def _record(self, name: str, context: grpc.aio.ServicerContext) -> Record:
        """The operation ``name``: INVALID_ARGUMENT for a malformed name, NOT_FOUND for an unknown one."""
        if not _NAME.fullmatch(name):
            violation = FieldViolation(
                "name",
                f"got {name!r}; an operation name is 'operations/' and 32 hex digits (StartRecommend's)",
            )
            await status.invalid(context, [violation], "INVALID_NAME")
        live = self.live.get(name)
        if live is not None:
            return live.record
        record = await self._stored(context, self.store.get, name)
        if record is None:
            await status.abort(
                context, grpc.StatusCode.NOT_FOUND,
                f"no operation {name}: never started here, deleted, or past its retention time",
                "OPERATION_NOT_FOUND", violations=[FieldViolation("name", f"{name} is not found")],
            )  # fmt: skip
        return record

    async def _stored(
        self, context: grpc.aio.ServicerContext, call: Callable[..., _T], *args: Any, **kwargs: Any
    ) -> _T:
        """``call`` on a thread; a StoreError fails the call with UNAVAILABLE."""
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except StoreError as exc:
            await _store_unavailable(context, exc)


def _cut_by_cancel(response: pb.RecommendResponse | None) -> bool:
    """Whether the cancel stopped any head's trials (a cancel after the trials ended changes nothing)."""
    return response is not None and any(
        head.stop_reason == pb.STOP_REASON_CANCELLED for head in response.heads
    )


async def _store_unavailable(context: grpc.aio.ServicerContext, exc: StoreError) -> None:
    LOG.warning("%s", exc)
    await status.abort(
        context, grpc.StatusCode.UNAVAILABLE, "the server's operation store is unavailable; retry shortly",
        "OPERATIONS_UNAVAILABLE", retry_after_s=2.0,
    )  # fmt: skip


def _token(create_ns: int, name: str, filter_: str) -> str:
    """An opaque page token: where the page ended, and the filter it belongs to."""
    return base64.urlsafe_b64encode(json.dumps([create_ns, name, filter_]).encode()).decode()


def _after(token: str, filter_: str) -> tuple[int, str] | None:
    """Where a page token's page ended, or None for a token that is not ours or belongs to another filter."""
    try:
        create_ns, name, filtered = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, TypeError):
        return None
    if not (isinstance(create_ns, int) and isinstance(name, str) and filtered == filter_):
        return None
    return create_ns, name


def handlers(servicer: OperationsServicer) -> grpc.GenericRpcHandler:
    """Raw-bytes handlers of google.longrunning.Operations (the servicer parses requests itself)."""
    methods = ("GetOperation", "ListOperations", "CancelOperation", "DeleteOperation", "WaitOperation")
    return grpc.method_handlers_generic_handler(SERVICE, {
        name: grpc.unary_unary_rpc_method_handler(getattr(servicer, name), None, lambda m: m.SerializeToString())
        for name in methods
    })  # fmt: skip


def open_store(operations: bool | str | Path, port: int, ttl_s: float) -> OperationStore:
    """The server's store (:meth:`OperationStore.open`), with the operations a previous server left unfinished
    reported ABORTED. Runs once before the server serves, so its blocking file access stalls no call; a store
    that cannot be read logs a warning (operation calls then answer UNAVAILABLE, other calls are unaffected)."""
    store = OperationStore.open(operations, port, ttl_s=ttl_s)
    try:
        aborted = store.recover()
    except StoreError as exc:
        LOG.warning("%s; operations will fail with UNAVAILABLE until it works", exc)
        return store
    LOG.info("operations: %s (kept %.0f s once done)", store.path or "in memory", ttl_s)
    if aborted:
        LOG.warning("operations: %d queued or running when the server stopped are now ABORTED", aborted)
    return store

"""Long-running operations (AIP-151) against real server processes: StartRecommend, google.longrunning.Operations
(get, list, wait, cancel, delete), the bounded queue, the SQLite store across a restart, and the Python client;
the store's expiry, damaged-file rebuild and in-memory mode in process."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
import sys
import time
import uuid

import grpc
import pytest
from google.longrunning import operations_pb2_grpc
from google.longrunning import operations_proto_pb2 as lro
from google.protobuf import duration_pb2
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from advisor.client import AdvisorClient, ServiceError
from advisor.service.operations import DEFAULT_TTL_S, FINAL, RESTARTED, OperationStore, Record, finish
from lossadvisor.v1 import advisor_pb2 as pb
from tests.service_helpers import ServerProcess, rpc_error, status_details, wait_until

State = pb.RecommendMetadata
TASK = pb.TaskDescription(heads=[pb.Head(type="multiclass", class_histogram=[500, 150, 40])], n_features=8)
QUICK = pb.Options(epochs=2, repeats=2, max_rows=300, cache=False)
RULES = pb.Options(trials=False)
LONG = pb.Options(epochs=1000, repeats=2, max_rows=300, budget_s=300, cache=False)  # runs until cancelled
UNKNOWN = "operations/" + "0" * 32


def _start(store, *, ttl_s: float = 3600, queue: int = 2) -> ServerProcess:
    return ServerProcess("--workers", "1", "--no-cache", "--operations", str(store), "--operations-ttl", str(ttl_s),
                         "--operations-queue", str(queue))  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = _start(tmp_path_factory.mktemp("operations") / "operations.sqlite3")
    yield process
    assert process.stop() == 0


def _ops(server: ServerProcess) -> operations_pb2_grpc.OperationsStub:
    return operations_pb2_grpc.OperationsStub(server.channel)


def _request(options: pb.Options = QUICK) -> pb.RecommendRequest:
    return pb.RecommendRequest(task=TASK, options=options)


def _metadata(operation: lro.Operation) -> pb.RecommendMetadata:
    metadata = pb.RecommendMetadata()
    assert operation.metadata.Unpack(metadata)
    return metadata


def _response(operation: lro.Operation) -> pb.RecommendResponse:
    response = pb.RecommendResponse()
    assert operation.response.Unpack(response)
    return response


def _get(server: ServerProcess, name: str) -> lro.Operation:
    return _ops(server).GetOperation(lro.GetOperationRequest(name=name), timeout=10)


def _wait(server: ServerProcess, name: str) -> lro.Operation:
    """The operation once done (WaitOperation answers at the latest after its cap; ask again until done)."""
    for _ in range(10):
        operation = _ops(server).WaitOperation(lro.WaitOperationRequest(name=name), timeout=70)
        if operation.done:
            return operation
    raise AssertionError(f"{name} is not done")


def _running(server: ServerProcess, name: str) -> bool:
    return _metadata(_get(server, name)).state == State.RUNNING


def _gone(server: ServerProcess, name: str) -> bool:
    try:
        _get(server, name)
    except grpc.RpcError as error:
        return error.code() == grpc.StatusCode.NOT_FOUND
    return False


def _same(one: lro.Operation, other: lro.Operation) -> bool:
    """The same operation and result (packed bytes may differ: map fields serialise in any order)."""
    result = one.WhichOneof("result")
    return (
        (one.name, one.done, result) == (other.name, other.done, other.WhichOneof("result"))
        and _metadata(one) == _metadata(other)
        and (result != "response" or _response(one) == _response(other))
        and one.error == other.error
    )


def _ranking(response: pb.RecommendResponse) -> list[list[str]]:
    return [[candidate.spec_json for candidate in head.candidates] for head in response.heads]


def test_start_returns_at_once_and_the_operation_ends_with_recommend_s_answer(server):
    started = server.stub.StartRecommend(_request(), timeout=10)
    assert re.fullmatch(r"operations/[0-9a-f]{32}", started.name) and not started.done
    first = _metadata(started)
    assert first.state in (State.QUEUED, State.RUNNING) and first.create_time.seconds > 0
    done = _wait(server, started.name)
    metadata = _metadata(done)
    assert metadata.state == State.SUCCEEDED and done.WhichOneof("result") == "response"
    assert metadata.create_time == first.create_time
    kept = metadata.expire_time.ToNanoseconds() - metadata.update_time.ToNanoseconds()
    assert kept == 3600 * 10**9  # the server's operations_ttl_s
    unary = server.stub.Recommend(_request(), timeout=120)
    assert _ranking(_response(done)) == _ranking(unary) and _response(done).heads[0].epochs_completed == 2
    assert _same(_get(server, started.name), done)  # still served once done
    health = health_pb2_grpc.HealthStub(server.channel)
    check = health.Check(health_pb2.HealthCheckRequest(service="google.longrunning.Operations"), timeout=5)
    assert check.status == health_pb2.HealthCheckResponse.SERVING


def test_a_running_operation_shows_progress_and_a_cancel_keeps_what_the_trials_found(server):
    name = server.stub.StartRecommend(_request(LONG), timeout=10).name
    assert wait_until(lambda: _metadata(_get(server, name)).progress.epoch >= 1, timeout=60)
    running = _get(server, name)
    assert not running.done and _metadata(running).state == State.RUNNING
    assert _metadata(running).progress.head == "target" and _metadata(running).progress.epochs == 1000
    # A short WaitOperation answers with the operation as it stands.
    waited = _ops(server).WaitOperation(
        lro.WaitOperationRequest(name=name, timeout=duration_pb2.Duration(nanos=200_000_000)), timeout=10
    )
    assert not waited.done
    _ops(server).CancelOperation(lro.CancelOperationRequest(name=name), timeout=10)
    done = _wait(server, name)
    assert _metadata(done).state == State.CANCELLED and done.WhichOneof("result") == "response"
    head = _response(done).heads[0]
    assert (
        head.stop_reason == pb.STOP_REASON_CANCELLED and head.candidates and 1 <= head.epochs_completed < 1000
    )
    _ops(server).CancelOperation(lro.CancelOperationRequest(name=name), timeout=10)  # done: nothing changes
    assert _same(_get(server, name), done)


def test_a_bad_request_is_refused_at_start_and_a_bad_dataset_fails_the_operation_as_recommend_does(server):
    bad = pb.RecommendRequest(task=pb.TaskDescription(heads=[pb.Head(class_histogram=[5, 3])]), options=RULES)
    code, found = rpc_error(server.stub.StartRecommend, bad, timeout=10)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "task.heads.0.head_type" in found["fields"]
    assert found["reason"] == "INVALID_TASK"
    unprofiled = pb.RecommendRequest(dataset=pb.Dataset(csv=b"a,b\n1,2\n3,4\n", target_columns=["nope"]),
                                     options=RULES)  # fmt: skip
    failed = _wait(server, server.stub.StartRecommend(unprofiled, timeout=10).name)
    assert _metadata(failed).state == State.FAILED and failed.error.code == code_pb2.INVALID_ARGUMENT
    assert not failed.HasField("response")
    unary_code, unary = rpc_error(server.stub.Recommend, unprofiled, timeout=30)
    assert unary_code == grpc.StatusCode.INVALID_ARGUMENT and "dataset.target" in unary["fields"]
    assert status_details(failed.error) == unary


@pytest.mark.parametrize("method", ["GetOperation", "CancelOperation", "DeleteOperation", "WaitOperation"])
def test_unknown_names_are_not_found_and_malformed_ones_invalid(server, method):
    call = getattr(_ops(server), method)
    request = getattr(lro, f"{method}Request")
    code, found = rpc_error(call, request(name=UNKNOWN), timeout=10)
    assert code == grpc.StatusCode.NOT_FOUND and "name" in found["fields"]
    for name in ("", "operations/xyz", "jobs/" + "0" * 32, UNKNOWN.upper()):
        code, found = rpc_error(call, request(name=name), timeout=10)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "name" in found["fields"], name


def test_list_pages_through_every_operation_and_filters_by_done(server):
    names = {server.stub.StartRecommend(_request(RULES), timeout=10).name for _ in range(3)}
    for name in names:
        _wait(server, name)
    seen, token, pages = [], "", 0
    while True:
        page = _ops(server).ListOperations(
            lro.ListOperationsRequest(page_size=2, filter="done=true", page_token=token), timeout=10
        )
        assert len(page.operations) <= 2 and all(op.done for op in page.operations)
        seen += [op.name for op in page.operations]
        pages, token = pages + 1, page.next_page_token
        if not token:
            break
    assert names <= set(seen) and len(seen) == len(set(seen)) and pages >= 2
    everything = _ops(server).ListOperations(lro.ListOperationsRequest(), timeout=10)
    assert set(seen) == {op.name for op in everything.operations if op.done}
    undone = _ops(server).ListOperations(lro.ListOperationsRequest(filter="done = false"), timeout=10)
    assert not names & {op.name for op in undone.operations}
    for request, field in ((lro.ListOperationsRequest(filter="state=RUNNING"), "filter"),
                           (lro.ListOperationsRequest(page_token="not-a-token"), "page_token"),
                           (lro.ListOperationsRequest(page_size=-1), "page_size")):  # fmt: skip
        code, found = rpc_error(_ops(server).ListOperations, request, timeout=10)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and field in found["fields"]
    # A token belongs to its filter.
    first = _ops(server).ListOperations(
        lro.ListOperationsRequest(page_size=1, filter="done=true"), timeout=10
    )
    code, found = rpc_error(
        _ops(server).ListOperations, lro.ListOperationsRequest(page_token=first.next_page_token), timeout=10
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in found["fields"]


def test_delete_removes_a_finished_operation_and_refuses_a_running_one(server):
    finished = _wait(server, server.stub.StartRecommend(_request(RULES), timeout=10).name)
    _ops(server).DeleteOperation(lro.DeleteOperationRequest(name=finished.name), timeout=10)
    assert _gone(server, finished.name)
    name = server.stub.StartRecommend(_request(LONG), timeout=10).name
    try:
        code, found = rpc_error(
            _ops(server).DeleteOperation, lro.DeleteOperationRequest(name=name), timeout=10
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION and found["reason"] == "OPERATION_NOT_DONE"
        assert not _get(server, name).done
    finally:
        _ops(server).CancelOperation(lro.CancelOperationRequest(name=name), timeout=10)
        _wait(server, name)


def test_operations_queue_for_the_worker_and_a_full_queue_is_shed(server):
    running = server.stub.StartRecommend(_request(LONG), timeout=10).name
    queued = []
    try:
        assert wait_until(lambda: _running(server, running), timeout=60)
        queued = [
            server.stub.StartRecommend(_request(LONG), timeout=10).name for _ in range(2)
        ]  # the queue: 2
        assert [_metadata(_get(server, name)).state for name in queued] == [State.QUEUED] * 2
        code, found = rpc_error(server.stub.StartRecommend, _request(), timeout=10)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and found["reason"] == "OVERLOADED"
        assert found["retry_s"] > 0
        # Queued operations go first: a Recommend call is shed too, the worker being spoken for.
        code, _ = rpc_error(server.stub.Recommend, _request(), timeout=30)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        for name in (*queued, running):
            _ops(server).CancelOperation(lro.CancelOperationRequest(name=name), timeout=10)
    for name in queued:  # cancelled before they started: nothing was computed
        done = _wait(server, name)
        assert _metadata(done).state == State.CANCELLED and done.error.code == code_pb2.CANCELLED
        assert not done.HasField("response")
    assert _metadata(_wait(server, running)).state == State.CANCELLED


def test_the_python_client_starts_waits_and_reads_an_operation(server):
    with AdvisorClient(server.address, timeout=30) as client:
        name = client.start_recommend({"heads": [{"type": "binary", "class_histogram": [900, 100]}],
                                       "n_features": 8}, epochs=2, repeats=2, max_rows=300, cache=False)  # fmt: skip
        done = client.wait_operation(name, timeout=120)
        assert (done.name, done.state, done.done, done.error) == (name, "succeeded", True, None)
        assert done.recommendation.best().spec.loss and done.progress.epochs == 2
        assert client.get_operation(name) == done
        failed = client.wait_operation(client.start_recommend("client_examples/data/churn.csv", target="nope",
                                                              trials=False), timeout=60)  # fmt: skip
        assert failed.state == "failed" and failed.recommendation is None
        assert failed.error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert failed.error.violations[0].field == "dataset.target"
        with pytest.raises(ServiceError) as caught:
            client.get_operation(UNKNOWN)
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(ServiceError) as caught:
            client.start_recommend({"heads": [{"type": "binary", "class_histogram": [5, 3]}]}, epochs=0)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in caught.value.violations] == ["options.epochs"]


def test_a_restarted_server_serves_finished_operations_and_aborts_unfinished_ones(server):
    finished = _wait(server, server.stub.StartRecommend(_request(RULES), timeout=10).name)
    running = server.stub.StartRecommend(_request(LONG), timeout=10).name
    assert wait_until(lambda: _running(server, running), timeout=60)
    queued = server.stub.StartRecommend(_request(LONG), timeout=10).name
    assert server.restart() == 0  # SIGTERM, then a new server process on the same store file
    assert _same(_get(server, finished.name), finished)
    for name in (running, queued):
        aborted = _get(server, name)
        assert aborted.done and _metadata(aborted).state == State.FAILED
        assert (aborted.error.code, aborted.error.message) == (code_pb2.ABORTED, RESTARTED)
    listed = _ops(server).ListOperations(lro.ListOperationsRequest(filter="done=false"), timeout=10)
    assert not listed.operations
    assert (
        _metadata(_wait(server, server.stub.StartRecommend(_request(RULES), timeout=10).name)).state
        == State.SUCCEEDED
    )


GARBAGE = b"this is not a SQLite database" * 100


def _record(state: int, store: OperationStore) -> Record:
    """An operation in ``state``, finished now when that is a final state."""
    record = Record(f"operations/{uuid.uuid4().hex}", pb.RecommendMetadata(state=state))
    now = time.time_ns()
    record.metadata.create_time.FromNanoseconds(now)
    if state in FINAL:
        record.response = pb.RecommendResponse(notes=["done"])
        finish(record, state, now, store.expire_ns(now))
    return record


def test_a_damaged_store_file_is_moved_aside_and_rebuilt_with_a_warning(tmp_path, caplog):
    path = tmp_path / "operations.sqlite3"
    path.write_bytes(GARBAGE)
    store = OperationStore(path)
    with caplog.at_level(logging.WARNING, logger="advisor"):
        assert store.recover() == 0
    assert path.with_name("operations.sqlite3.corrupt").read_bytes() == GARBAGE
    assert "operation store" in caplog.text and "is damaged" in caplog.text
    record = _record(State.SUCCEEDED, store)
    store.put(record)
    assert store.get(record.name) == record and OperationStore(path).get(record.name) == record


def test_finished_operations_expire_after_the_retention_time_and_are_purged(tmp_path):
    path = tmp_path / "operations.sqlite3"
    kept, forgetful = OperationStore(path), OperationStore(path, ttl_s=0)  # 0: expired the moment it is done
    expired, live, stays = (
        _record(State.CANCELLED, forgetful),
        _record(State.RUNNING, forgetful),
        _record(State.FAILED, kept),
    )
    for record in (expired, live, stays):
        kept.put(record)
    assert kept.get(expired.name) is None and kept.get(live.name) == live and kept.get(stays.name) == stays
    assert [r.name for r in kept.page(done=None, after=None, limit=10)] == [live.name, stays.name]
    assert not kept.delete(expired.name)
    with sqlite3.connect(path) as db:  # expired but not purged yet: purged lazily, by the next write
        assert db.execute("SELECT count(*) FROM operations").fetchone() == (2,)
    kept.put(live)
    with sqlite3.connect(path) as db:
        assert {name for (name,) in db.execute("SELECT name FROM operations")} == {live.name, stays.name}
    assert stays.metadata.expire_time.ToNanoseconds() - stays.metadata.update_time.ToNanoseconds() == int(
        DEFAULT_TTL_S * 1e9
    )


def test_where_the_store_lives_and_the_in_memory_store_s_restart_recovery(tmp_path):
    assert OperationStore.open(True, 50051).path.name == "operations-50051.sqlite3"
    assert OperationStore.open(tmp_path / "ops.db", 0).path == tmp_path / "ops.db"
    for memory_only in (
        OperationStore.open("off", 50051),
        OperationStore.open(False, 50051),
        OperationStore.open(True, 0),
    ):
        assert memory_only.path is None  # port 0: a restarted server gets another port, so memory
    memory = OperationStore(None)
    record = _record(State.QUEUED, memory)
    memory.put(record)
    assert memory.get(record.name) == record and memory.recover() == 1
    aborted = memory.get(record.name)
    assert aborted.done and aborted.metadata.state == State.FAILED and aborted.error.message == RESTARTED


def test_start_recommend_declares_its_response_and_metadata_types():
    method = pb.DESCRIPTOR.services_by_name["LossAdvisor"].methods_by_name["StartRecommend"]
    info = method.GetOptions().Extensions[lro.operation_info]
    assert method.output_type.full_name == "google.longrunning.Operation"
    assert pb.DESCRIPTOR.message_types_by_name[info.response_type] is pb.RecommendResponse.DESCRIPTOR
    assert pb.DESCRIPTOR.message_types_by_name[info.metadata_type] is pb.RecommendMetadata.DESCRIPTOR


def test_the_cli_detaches_then_waits_lists_and_deletes(server, tmp_path):
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"heads": [{"type": "multiclass", "class_histogram": [500, 150, 40]}]}))
    cli = [sys.executable, "-m", "advisor"]
    where = ["--server", server.address]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=180)

    started = run("recommend", "--task-json", str(task), "--epochs", "2", "--repeats", "2", "--no-cache",
                  "--detach", *where)  # fmt: skip
    assert started.returncode == 0, started.stderr
    name = started.stdout.strip()
    assert name.startswith("operations/") and len(name) == len("operations/") + 32
    waited = run("operation", "wait", name, *where, "--json")
    assert waited.returncode == 0, waited.stderr
    found = json.loads(waited.stdout)
    assert found["state"] == "succeeded" and found["done"]
    assert found["recommendation"]["heads"][0]["evidence_source"] == "synthetic"
    shown = run("operation", "get", name, *where)
    assert shown.stdout.splitlines()[0] == f"{name}: succeeded" and "Train with" in shown.stdout
    listed = run("operation", "list", "--done", *where)
    assert f"{name}: succeeded" in listed.stdout.splitlines()
    assert run("operation", "delete", name, *where).stdout.strip() == f"{name}: deleted"
    missing = run("operation", "get", name, *where)
    assert (
        missing.returncode != 0 and name in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    )
    refused = run("recommend", "--task-json", str(task), "--detach")
    assert refused.returncode == 2 and "detach" in refused.stderr

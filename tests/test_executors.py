"""The trial executor seam (local and Ray) and recommend_many, on a local Ray cluster of 2 CPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from advisor import recommend_many
from advisor._extras import MissingExtraError
from advisor.core import OptionsError, recommend
from advisor.errors import WorkerLostError
from advisor.task import TaskError
from advisor.trials.executors import ExecutorError, HeadJob, LocalExecutor, RayExecutor
from advisor.trials.trainer import Progress

ray = pytest.importorskip("ray")

TWO_HEADS = {
    "heads": [
        {"name": "churn", "type": "binary", "class_histogram": [300, 60]},
        {"name": "spend", "type": "regression", "target": {"mean": 3.0, "variance": 4.0, "minimum": 0.0}},
    ]
}
SMALL = {"epochs": 3, "repeats": 2, "max_rows": 300, "cache": False}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@dataclass
class Crash:
    """Unpickling it kills the process that unpickles it: a worker dying in the middle of its work."""

    def __reduce__(self):
        return (os._exit, (1,))


def _evidence(result):
    return {h.head: [(c.name, c.evidence.per_repeat) for c in h.candidates] for h in result.heads}


def test_ray_gives_the_local_evidence_and_ranking_with_progress_per_head(cluster):
    local = recommend(TWO_HEADS, **SMALL)
    seen = []
    on_ray = recommend(TWO_HEADS, **SMALL, executor="ray", progress=seen.append)
    assert _evidence(on_ray) == _evidence(local)  # same splits, seeds and steps: the same numbers
    assert [h.verdict for h in on_ray.heads] == [h.verdict for h in local.heads]
    assert {event.head for event in seen} == {"churn", "spend"}
    assert all(isinstance(event.progress, Progress) for event in seen)
    assert all(h.evidence_source == "synthetic" and h.stopped_by == "epochs" for h in on_ray.heads)


def test_cancel_on_ray_keeps_what_was_computed(cluster):
    seen = []
    result = recommend(
        TWO_HEADS, epochs=200, repeats=2, max_rows=300, cache=False, executor="ray", progress=seen.append,
        cancel=lambda: len(seen) >= 2,
    )  # fmt: skip
    cancelled = [h for h in result.heads if h.stopped_by == "cancelled"]
    assert cancelled, [h.stopped_by for h in result.heads]
    for head in cancelled:
        assert 1 <= head.epochs_completed < 200
        assert any(v is not None for c in head.candidates for v in c.evidence.per_repeat)
    assert any("cancelled" in note for note in result.notes)


def test_a_dead_ray_worker_fails_the_call_cleanly_and_the_next_call_runs(cluster):
    local = recommend(TWO_HEADS, **SMALL)
    jobs = [HeadJob("churn", [Crash()], None, None)]  # the task's worker dies unpickling its job
    with pytest.raises(WorkerLostError, match="Ray worker"):
        RayExecutor().evaluate(jobs, 10.0)
    assert _evidence(recommend(TWO_HEADS, **SMALL, executor="ray")) == _evidence(local)


def test_recommend_many_on_ray_and_on_the_local_pool_keep_order_errors_and_other_results(cluster):
    jobs = [
        {"data": TWO_HEADS, **SMALL},
        {"data": {"heads": [{"name": "y", "type": "binary", "class_histogram": [-1, 3]}]}, **SMALL},
        {"data": TWO_HEADS, **SMALL, "random_state": 1},
    ]
    alone = [recommend(TWO_HEADS, **SMALL), recommend(TWO_HEADS, **SMALL, random_state=1)]
    finished = []
    for executor in ("ray", "local"):
        results = recommend_many(
            jobs, executor=executor, workers=None, on_result=lambda i, r: finished.append(i)
        )
        assert _evidence(results[0]) == _evidence(alone[0])
        assert _evidence(results[2]) == _evidence(alone[1])
        assert isinstance(results[1], TaskError)
        assert results[1].violations and results[1].violations[0].field.startswith("heads.0")
    assert sorted(finished) == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("executor", ["ray", "local"])
def test_recommend_many_reports_a_dead_worker_for_its_job_and_runs_the_rest(cluster, executor):
    jobs = [{"data": TWO_HEADS, **SMALL}, {"data": Crash(), **SMALL}, {"data": TWO_HEADS, **SMALL}]
    results = recommend_many(jobs, executor=executor, workers=1)
    assert isinstance(results[1], WorkerLostError)
    assert _evidence(results[0]) == _evidence(results[2])


def test_bad_executor_options_name_the_field():
    with pytest.raises(ExecutorError, match="executor: got 'spark'; one of local, ray"):
        recommend(TWO_HEADS, executor="spark")
    with pytest.raises(ExecutorError, match="ray_address"):
        recommend(TWO_HEADS, ray_address="auto")
    with pytest.raises(OptionsError) as caught:
        recommend_many([{"data": TWO_HEADS, "epochz": 3}, {"target": "y"}], workers=0)
    fields = {v.field for v in caught.value.violations}
    assert fields == {"workers", "jobs.0.epochz", "jobs.1.data"}


def test_asking_for_ray_without_it_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"loss-advisor\[ray\]"):
        recommend(TWO_HEADS, **SMALL, executor="ray")


def test_local_executor_leaves_heads_after_a_cancelled_one_unrun():
    from advisor.rules import candidates_from, load_rules
    from advisor.task import parse_task
    from advisor.trials.data import synthetic_data
    from advisor.trials.evidence import TrialOptions

    task = parse_task(TWO_HEADS)
    found = candidates_from(load_rules(), task)
    options = TrialOptions(repeats=2, epochs=50)
    jobs = [HeadJob(h.name, [c for c in found if c.head == h.name], synthetic_data(h, task, max_rows=300),
                    options) for h in task.heads]  # fmt: skip
    results = LocalExecutor().evaluate(jobs, 30.0, cancel=lambda: True)
    assert results[0] is not None and results[0].stopped_by == "cancelled"
    assert results[1] is None


def test_cli_runs_trials_on_ray_and_refuses_an_unknown_executor(tmp_path):
    task = tmp_path / "task.json"
    task.write_text(json.dumps(TWO_HEADS))
    base = [sys.executable, "-m", "advisor", "recommend", "--task-json", str(task), "--no-cache"]
    bad = subprocess.run([*base, "--executor", "spark"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: executor: got 'spark'; one of local, ray"]
    run = subprocess.run(
        [*base, "--executor", "ray", "--epochs", "2", "--repeats", "2", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert [h["head"] for h in result["heads"]] == ["churn", "spend"]
    assert all(h["evidence_source"] == "synthetic" for h in result["heads"])


def test_the_service_runs_trials_on_ray(cluster):
    from advisor.service.convert import recommendation_from_proto
    from lossadvisor.v1 import advisor_pb2 as pb
    from tests.service_helpers import ServerProcess

    server = ServerProcess("--executor", "ray", "--no-cache")
    try:
        task = pb.TaskDescription(heads=[pb.Head(name="churn", type="binary", class_histogram=[300, 60])])
        options = pb.Options(epochs=3, repeats=2, max_rows=300)
        # Ray's start-up on a loaded 2-core machine took over 120 s once.
        reply = server.stub.Recommend(pb.RecommendRequest(task=task, options=options), timeout=300)
    finally:
        assert server.stop() == 0
    local = recommend({"heads": [TWO_HEADS["heads"][0]]}, **SMALL)
    assert _evidence(recommendation_from_proto(reply)) == _evidence(local)

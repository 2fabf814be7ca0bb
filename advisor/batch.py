"""``recommend_many()``: many independent ``recommend()`` calls at once, on a local process pool or on Ray.

For AutoML systems that ask about thousands of datasets: each job is one ``recommend()`` call (its keyword
arguments plus ``data``), and the result list holds, in job order, each job's Recommendation or the error it
raised, so one bad dataset never costs the others their results. A job's trials run on one CPU (one torch
thread), so N jobs fill N CPUs without oversubscribing them.
"""

from __future__ import annotations

import inspect
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from advisor.core import OptionsError, recommend
from advisor.errors import AdvisorError, FieldViolation, WorkerLostError
from advisor.recommendation import Recommendation
from advisor.trials.executors import EXECUTORS, connect
from advisor.trials.trainer import available_cpus, configure_cpu_runtime

JobResult = Recommendation | AdvisorError | WorkerLostError
# recommend()'s arguments a job may not set: the batch decides where and how trials run.
_BATCH_OWNED = ("data_or_task", "progress", "cancel", "executor", "ray_address")
JOB_FIELDS = ("data", *(name for name in inspect.signature(recommend).parameters if name not in _BATCH_OWNED))


def recommend_many(
    jobs: Sequence[Mapping[str, Any]],
    *,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    on_result: Callable[[int, JobResult], None] | None = None,
) -> list[JobResult]:
    """Run ``recommend()`` for every job; returns each job's Recommendation, or its error, in job order.

    Parameters
    ----------
    jobs : sequence of mappings
        Each ``{"data": <what recommend() takes first>, **recommend() keyword arguments}``, e.g.
        ``{"data": "a.csv", "target": "y", "epochs": 20}``. Progress, cancellation and the executor are the
        batch's to decide. With Ray, a path must be readable where the task runs.
    executor : {"local", "ray"}
        ``local``: a pool of spawned processes on this machine; ``ray``: one Ray task per job (one CPU each).
    workers : int, optional
        Processes of the local pool (default: the CPUs this process may use). Ray sizes itself by the cluster.
    ray_address : str, optional
        The Ray cluster to join when this process is not connected yet (see :class:`RayExecutor`).
    on_result : callable, optional
        Called with ``(job index, result)`` as each job finishes, in completion order.

    Returns
    -------
    list
        Per job: a Recommendation, the :class:`AdvisorError` its input raised, or :class:`WorkerLostError` when
        the process running it died (retry those).

    Raises
    ------
    OptionsError
        An unknown job field, a job without ``data``, or bad batch options (checked before anything runs).

    Notes
    -----
    The local pool's workers are spawned, and a spawned process imports the main module: a script that calls
    this at top level needs the ``if __name__ == "__main__":`` guard (without it every job comes back as
    WorkerLostError).
    """
    _check(jobs, executor, workers)
    if executor == "ray":
        return _on_ray(jobs, ray_address, on_result)
    if ray_address is not None:
        raise OptionsError(
            FieldViolation("ray_address", "is set but executor is 'local'; use executor='ray'")
        )
    return _on_pool(jobs, workers or available_cpus(), on_result)


def _check(jobs: Sequence[Mapping[str, Any]], executor: str, workers: int | None) -> None:
    problems = []
    if executor not in EXECUTORS:
        problems.append(FieldViolation("executor", f"got {executor!r}; one of {', '.join(EXECUTORS)}"))
    if workers is not None and not (
        isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1
    ):
        problems.append(FieldViolation("workers", f"got {workers!r}; a positive integer, or None (the CPUs)"))
    for index, job in enumerate(jobs):
        if not isinstance(job, Mapping):
            problems.append(FieldViolation(f"jobs.{index}", f"got {type(job).__name__}; a mapping"))
            continue
        if "data" not in job:
            problems.append(
                FieldViolation(f"jobs.{index}.data", "missing: a CSV path, DataFrame, (X, y) or task")
            )
        problems += [
            FieldViolation(f"jobs.{index}.{name}", f"not a job field; fields are {', '.join(JOB_FIELDS)}")
            for name in job
            if name not in JOB_FIELDS
        ]
    if problems:
        raise OptionsError(problems)


def _run_job(job: Mapping[str, Any]) -> Recommendation | AdvisorError:
    """One job, in whatever process runs it; an input error is returned, not raised, so it travels as data."""
    options = {name: value for name, value in job.items() if name != "data"}
    try:
        return recommend(job["data"], **options)
    except AdvisorError as exc:
        return exc


def _single_thread() -> None:
    configure_cpu_runtime(1)


def _on_pool(
    jobs: Sequence[Mapping[str, Any]], workers: int, on_result: Callable[[int, JobResult], None] | None
) -> list[JobResult]:
    """At most ``workers`` jobs in flight. A dead worker breaks the whole pool: the jobs it held get
    WorkerLostError, and a fresh pool takes the jobs not yet started."""
    results: list[JobResult | None] = [None] * len(jobs)
    waiting = list(range(len(jobs)))
    context = multiprocessing.get_context("spawn")  # never fork a process that has initialised torch
    while waiting:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_single_thread) as pool:
            running: dict[Future, int] = {}
            broken = False
            while (waiting and not broken) or running:
                while waiting and not broken and len(running) < workers:
                    index = waiting.pop(0)
                    running[pool.submit(_run_job, jobs[index])] = index
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    index = running.pop(future)
                    try:
                        result: JobResult = future.result()
                    except BrokenProcessPool:
                        broken = True
                        result = WorkerLostError(
                            f"a worker process died while job {index} ran; retry the job"
                        )
                    results[index] = result
                    if on_result is not None:
                        on_result(index, result)
    return results  # type: ignore[return-value]  # every slot is filled


def _on_ray(
    jobs: Sequence[Mapping[str, Any]], address: str | None, on_result: Callable[[int, JobResult], None] | None
) -> list[JobResult]:
    ray = connect(address)
    task = ray.remote(_ray_job).options(num_cpus=1, max_retries=0)
    refs = {task.remote(job): index for index, job in enumerate(jobs)}
    results: list[JobResult | None] = [None] * len(jobs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            index = refs[ref]
            try:
                result: JobResult = ray.get(ref)
            except (
                ray.exceptions.RayTaskError
            ) as exc:  # a bug, not an input error: raise it as it would locally
                for other in pending:
                    ray.cancel(other, force=True)
                raise exc.as_instanceof_cause() from None
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                    ray.exceptions.ObjectLostError) as exc:  # fmt: skip
                result = WorkerLostError(
                    f"the Ray worker running job {index} died ({type(exc).__name__}); retry"
                )
            results[index] = result
            if on_result is not None:
                on_result(index, result)
    return results  # type: ignore[return-value]


def _ray_job(job: Mapping[str, Any]) -> Recommendation | AdvisorError:
    _single_thread()
    return _run_job(job)

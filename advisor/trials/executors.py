"""Where trial work runs: in this process (``local``) or as tasks on a Ray cluster (``ray``).

One head's trials (its rounds of repeats and its racing) are one unit of work. :func:`evaluate_head` on the
same inputs computes the same evidence wherever it runs, so an executor decides where and how many units run
at once, never what they compute. ``local`` runs a call's heads one after another, each with an equal share
of the budget left; ``ray`` runs them at once as Ray tasks under one shared deadline, with progress and
cancellation carried by a small actor (:mod:`advisor.trials.ray_channel`).

Shape of the seam: an executor is an object with one method, ``evaluate(jobs, budget_s, progress=, cancel=)``.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, Protocol

from advisor._extras import MissingExtraError, requires_extra
from advisor.errors import AdvisorError, FieldViolation, WorkerLostError
from advisor.rules import Candidate
from advisor.trials.data import TrialData
from advisor.trials.evidence import HeadEvidence, TrialOptions, evaluate_head
from advisor.trials.trainer import Progress, configure_cpu_runtime

ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "ray")
# How often a Ray task asks the channel actor whether its call was cancelled (each ask is a round trip).
CANCEL_POLL_S = 0.25
# How often the driver forwards progress and polls the caller's cancel check while Ray tasks run.
DRIVER_POLL_S = 0.2


class ExecutorError(AdvisorError):
    """An executor option outside what is allowed (an unknown name, a Ray address without Ray)."""


@dataclass(frozen=True)
class HeadJob:
    """One head's trial work: its candidates, its data and how to train."""

    head: str
    candidates: Sequence[Candidate]
    data: TrialData
    options: TrialOptions


HeadProgress = Callable[[str, Progress], None]


class TrialExecutor(Protocol):
    """Runs heads' trials. Returns each job's evidence in job order, or None for a job that never started
    because the call was cancelled first."""

    name: str

    def evaluate(
        self, jobs: Sequence[HeadJob], budget_s: float, *, progress: HeadProgress | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> list[HeadEvidence | None]: ...  # fmt: skip


def throttled(is_set: Callable[[], bool], every_s: float) -> Callable[[], bool]:
    """A cancel check that asks ``is_set`` (a costly round trip) at most every ``every_s``; once it said True,
    it stays True without asking again."""
    last = [0.0, False]

    def check() -> bool:
        now = time.monotonic()
        if not last[1] and now - last[0] >= every_s:
            last[0], last[1] = now, bool(is_set())
        return bool(last[1])

    return check


def _head_progress(progress: HeadProgress | None, head: str) -> Callable[[Progress], None] | None:
    return None if progress is None else (lambda p: progress(head, p))


@dataclass(frozen=True)
class LocalExecutor:
    """In this process, one head after another; each head gets an equal share of the budget still left, and a
    cancelled head leaves the heads after it unrun."""

    name: str = "local"

    def evaluate(
        self, jobs: Sequence[HeadJob], budget_s: float, *, progress: HeadProgress | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> list[HeadEvidence | None]:  # fmt: skip
        started = time.perf_counter()
        results: list[HeadEvidence | None] = []
        stopped = False
        for index, job in enumerate(jobs):
            if stopped:
                results.append(None)
                continue
            left = max(budget_s - (time.perf_counter() - started), 1.0)
            options = replace(job.options, budget_s=left / (len(jobs) - index))
            head_progress = _head_progress(progress, job.head)
            measured = evaluate_head(job.candidates, job.data, options, progress=head_progress, cancel=cancel)
            results.append(measured)
            stopped = measured.stopped_by == "cancelled"
        return results


@dataclass(frozen=True)
class RayExecutor:
    """Each head as a Ray task (``cpus_per_head`` CPUs, torch on as many threads), all started at once under one
    deadline: a head that waits for a free CPU has less of the budget left, as it would have locally.

    ``address`` is passed to ``ray.init`` when this process is not connected yet: None starts a local Ray
    instance, or joins the cluster the ``RAY_ADDRESS`` environment variable names; ``"auto"`` joins the cluster
    running on this machine; ``"ray://host:10001"`` a remote one (whose nodes need ``loss-advisor`` installed).
    A task whose worker dies fails the call with :class:`WorkerLostError` (tasks are not retried: a retry
    would repeat minutes of training, and the caller knows better whether to pay for it).
    """

    address: str | None = None
    cpus_per_head: int = 1
    name: str = "ray"

    def evaluate(
        self, jobs: Sequence[HeadJob], budget_s: float, *, progress: HeadProgress | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> list[HeadEvidence | None]:  # fmt: skip
        ray = connect(self.address)
        from advisor.trials.ray_channel import Channel

        channel = ray.remote(Channel).options(num_cpus=0).remote()
        deadline = time.time() + budget_s
        task = ray.remote(_evaluate_on_ray).options(num_cpus=self.cpus_per_head, max_retries=0)
        refs = [
            task.remote(index, job, deadline, channel, self.cpus_per_head) for index, job in enumerate(jobs)
        ]
        pending, cancelled = list(refs), False
        try:
            while pending:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=DRIVER_POLL_S)
                _forward(ray, channel, jobs, progress)
                if not cancelled and cancel is not None and cancel():
                    cancelled = True
                    channel.cancel.remote()
            _forward(ray, channel, jobs, progress)
            return list(ray.get(refs))
        except ray.exceptions.RayTaskError as exc:  # the task raised: the same error as it would locally
            raise exc.as_instanceof_cause() from None
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError,
                ray.exceptions.RayActorError) as exc:  # fmt: skip
            raise WorkerLostError(
                f"a Ray worker running this call's trials died ({type(exc).__name__}); retry the call"
            ) from exc
        finally:
            for ref in pending:  # the call failed or was interrupted: free the CPUs its other heads hold
                ray.cancel(ref, force=True)
            ray.kill(channel)


def _forward(ray: Any, channel: Any, jobs: Sequence[HeadJob], progress: HeadProgress | None) -> None:
    """The progress events the head tasks have sent since the last call, to the caller's callback."""
    if progress is not None:
        for index, event in ray.get(channel.drain.remote()):
            progress(jobs[index].head, Progress(**event))


def _evaluate_on_ray(
    index: int, job: HeadJob, deadline: float, channel: Any, threads: int
) -> HeadEvidence | None:
    """What a Ray task runs: one head's trials, progress sent to the channel, cancellation read from it."""
    import ray

    configure_cpu_runtime(threads)
    cancel = throttled(lambda: ray.get(channel.cancelled.remote()), CANCEL_POLL_S)
    if cancel():  # cancelled while this head waited for a CPU: it never starts, as locally
        return None
    options = replace(job.options, budget_s=max(deadline - time.time(), 1.0))

    def report(event: Progress) -> None:
        channel.report.remote(index, asdict(event))  # plain data: the actor never imports the trainer

    return evaluate_head(job.candidates, job.data, options, progress=report, cancel=cancel)


def connect(address: str | None) -> Any:
    """The ``ray`` module, connected (``ray.init``) when this process is not yet; the error for a missing Ray
    names the extra to install."""
    with requires_extra("ray", "the Ray executor (executor='ray')"):
        import ray
    if not ray.is_initialized():
        import logging

        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    return ray


def _ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except ValueError:  # a None entry in sys.modules: blocked as if absent
        return False


def executor_for(executor: str | TrialExecutor, ray_address: str | None = None) -> TrialExecutor:
    """The executor a name (``local`` or ``ray``) stands for, or the executor object itself."""
    if not isinstance(executor, str):
        return executor
    if executor == "ray":
        if not _ray_installed():  # said now, before any work, not after the data is read
            raise MissingExtraError("the Ray executor (executor='ray')", "ray", "ray")
        return RayExecutor(address=ray_address)
    if executor != "local":
        raise ExecutorError(FieldViolation("executor", f"got {executor!r}; one of {', '.join(EXECUTORS)}"))
    if ray_address is not None:
        raise ExecutorError(
            FieldViolation("ray_address", "is set but executor is 'local'; use executor='ray'")
        )
    return LocalExecutor()

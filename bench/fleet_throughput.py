"""Fleet throughput (issue 14): N independent ``recommend()`` jobs one after another, on the local process
pool, and on Ray (``advisor.recommend_many``), measured in one run on this machine.

The jobs are the bundled churn CSV under different seeds (each job profiles the CSV and trains its own
trials; the result cache is off, so nothing is shared between jobs). Ray's start-up (``ray.init`` of a local
instance) is timed on its own and left out of the Ray batch time; the target is that Ray is not slower than the
local pool by more than that start-up. The script also prints the measured per-job cost that the 1,000
datasets an hour sizing in RESULTS.md starts from.

Run from the repository root: ``python -m bench.fleet_throughput`` (``--jobs``, ``--epochs``).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import advisor
from advisor.trials.trainer import available_cpus

DATA = Path(__file__).resolve().parents[1] / "client_examples/data/churn.csv"


def _timed(label: str, run: Any) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    results = run()
    elapsed = time.perf_counter() - started
    failed = [r for r in results if not isinstance(r, advisor.Recommendation)]
    assert not failed, failed
    print(f"{label}: {elapsed:.1f} s, {len(results) / elapsed * 3600:,.0f} jobs an hour")
    return elapsed, results


def _evidence(result: advisor.Recommendation) -> list[Any]:
    return [[(c.name, c.evidence.per_repeat) for c in h.candidates] for h in result.heads]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8, help="Independent jobs.")
    parser.add_argument("--epochs", type=int, default=20, help="Epoch budget of each job.")
    args = parser.parse_args()
    jobs = [
        {"data": str(DATA), "target": "churned", "epochs": args.epochs, "random_state": seed, "cache": False}
        for seed in range(args.jobs)
    ]
    cpus = available_cpus()
    print(f"{args.jobs} jobs: recommend() on {DATA.name} (epochs={args.epochs}, seeds 0..{args.jobs - 1}); "
          f"{cpus} CPUs")  # fmt: skip
    sequential, alone = _timed(
        "one after another (this process)",
        lambda: [
            advisor.recommend(job["data"], **{k: v for k, v in job.items() if k != "data"}) for job in jobs
        ],
    )
    pool, pooled = _timed(f"local pool, {cpus} workers", lambda: advisor.recommend_many(jobs, workers=cpus))
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    startup = time.perf_counter() - started
    print(f"Ray start-up (a local instance of {cpus} CPUs): {startup:.1f} s")
    on_ray, rayed = _timed("Ray, one task per job", lambda: advisor.recommend_many(jobs, executor="ray"))
    ray.shutdown()
    same = all(
        _evidence(a) == _evidence(b) == _evidence(c) for a, b, c in zip(alone, pooled, rayed, strict=True)
    )
    print(f"identical evidence for every job on all three: {same}")
    print(f"local pool / one after another: {sequential / pool:.2f}x faster")
    print(f"Ray / local pool: {on_ray / pool:.2f}x the time; Ray minus pool {on_ray - pool:+.1f} s against a "
          f"start-up of {startup:.1f} s: {'met' if on_ray - pool <= startup else 'MISSED'}")  # fmt: skip
    print(f"per-job cost: {sequential / args.jobs:.1f} s of one CPU (one torch thread)")


if __name__ == "__main__":
    main()

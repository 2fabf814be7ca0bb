"""Long-running operations (issue 14): how long StartRecommend and GetOperation take, against the work.

A real server (``advisor-cli serve --port 0 --workers 1``, operations in memory, no result cache) gets
``--starts`` StartRecommend calls with trials, one after another. Each returns an operation name at once and
queues behind the one worker, so the start latency is the service's own cost (parse, validate, enqueue), not the
trials'. Then GetOperation is timed on a queued operation, the first operation is waited for (its trial time is
the work a start stands for), and the rest are cancelled. It prints medians and the slowest call, and the ratio
of one operation's work to its start latency.

Run from the repository root: ``python -m bench.operations_speed`` (``--starts``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from advisor.client import AdvisorClient

TASK = {"heads": [{"type": "multiclass", "class_histogram": [500, 150, 40]}], "n_features": 8}
OPTIONS = {"epochs": 20, "repeats": 4, "max_rows": 2000, "cache": False}


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms, slowest {max(values) * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=30, help="StartRecommend calls (the queue holds 64).")
    args = parser.parse_args()
    command = [sys.executable, "-m", "advisor", "serve", "--port", "0", "--workers", "1", "--no-cache"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        address = server.stdout.readline().split()[-1]
        with AdvisorClient(address, timeout=60) as client:
            client.start_recommend(TASK, **OPTIONS, trials=False)  # connect and warm the handler path
            starts, names = [], []
            for _ in range(args.starts):
                started = time.perf_counter()
                names.append(client.start_recommend(TASK, **OPTIONS))
                starts.append(time.perf_counter() - started)
            gets = []
            for _ in range(50):
                started = time.perf_counter()
                client.get_operation(names[-1])
                gets.append(time.perf_counter() - started)
            started = time.perf_counter()
            first = client.wait_operation(names[0])
            waited = time.perf_counter() - started
            for name in names[1:]:
                client.cancel_operation(name)
        assert first.state == "succeeded", first
        work = sum(head.trial_seconds or 0.0 for head in first.recommendation.heads)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"StartRecommend with trials, {args.starts} calls queued behind 1 worker: {_ms(starts)}")
    print(f"GetOperation on a queued operation, 50 calls: {_ms(gets)}")
    print(f"the first operation's trials: {work:.1f} s (done {waited:.1f} s after the last start)")
    print(
        f"one operation's trial work / its start latency (median): {work / statistics.median(starts):,.0f}x"
    )


if __name__ == "__main__":
    main()

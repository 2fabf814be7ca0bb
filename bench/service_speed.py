"""The gRPC service under load from an independent client (the Node load generator, bench/service_load.js).

1. Rules-only Recommend against health Check (a trivial handler on the same server stack), same run: ratio of
   throughput (aim >= 50%) and p50/p99 latency.
2. The same two loads while a trial call keeps the worker busy: rules-only calls and health checks must keep
   their latency.
3. A bounded soak (60 s of rules-only load): the server's resident memory sampled every 5 s must stay flat.

Needs `npm ci --prefix client_examples/node`. Run from the repository root: ``python -m bench.service_speed``.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from lossadvisor.v1 import advisor_pb2 as pb
from tests.service_helpers import ServerProcess

os.environ["LOSS_ADVISOR_CACHE"] = "off"  # servers started here measure work, never cached answers

LOAD = Path(__file__).with_name("service_load.js")


def load(address: str, method: str, seconds: float, concurrency: int = 8) -> dict:
    output = subprocess.run(["node", str(LOAD), address, method, str(concurrency), str(seconds)],
                            capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(output.stdout)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def show(label: str, result: dict) -> None:
    print(
        f"  {label:36s} {result['rps']:8.1f} calls/s  p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms"
        f"  errors {result['errors']}"
    )


def main() -> None:
    server = ServerProcess("--workers", "1")
    try:
        address = server.address
        load(address, "recommend", 2)  # warm up
        print("1. idle server")
        health, rules = load(address, "health", 10), load(address, "recommend", 10)
        show("health Check (trivial handler)", health)
        show("rules-only Recommend", rules)
        print(
            f"  rules-only throughput = {rules['rps'] / health['rps']:.0%} of the trivial handler (aim >= 50%)"
        )

        print("2. with a trial call keeping the worker busy")
        options = pb.Options(epochs=1000, repeats=3, max_rows=20_000, budget_s=30)
        task = pb.TaskDescription(heads=[pb.Head(type="multiclass", class_histogram=[5000, 1500, 400])])
        busy = threading.Thread(target=server.stub.Recommend, args=(pb.RecommendRequest(task=task, options=options),),
                                kwargs={"timeout": 120})  # fmt: skip
        busy.start()
        time.sleep(3)
        show("health Check during trials", load(address, "health", 8))
        show("rules-only Recommend during trials", load(address, "recommend", 8))
        busy.join()

        print("3. soak: 60 s of rules-only load, server RSS every 5 s")
        samples, outcome = [rss_mib(server.process.pid)], []
        soak = threading.Thread(target=lambda: outcome.append(load(address, "recommend", 60, concurrency=4)))
        soak.start()
        while soak.is_alive():
            time.sleep(5)
            samples.append(rss_mib(server.process.pid))
        show("soak", outcome[0])
        print("  RSS MiB: " + " ".join(f"{v:.0f}" for v in samples))
        print(
            f"  growth over the soak: {samples[-1] - samples[1]:+.1f} MiB (first sample under load to last)"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
